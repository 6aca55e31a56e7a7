//! The one internal form every policy kind is converted into: Calico's own model, as Felix sees it
//! after the API server and the syncer have rewritten selectors (namespace scoping, `pcns.`/`pcsa.`).

use std::path::PathBuf;

use ipnet::IpNet;

use crate::model::{HitAction, PolicyKind, Protocol};

/// Index into `PolicySet::selectors`; selectors are deduplicated so their verdicts can be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SelectorId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Allow,
    Deny,
    Pass,
    Log,
}

impl RuleAction {
    pub fn parse(text: &str) -> Option<RuleAction> {
        match text {
            "Allow" | "allow" => Some(RuleAction::Allow),
            "Deny" | "deny" => Some(RuleAction::Deny),
            "Pass" | "pass" => Some(RuleAction::Pass),
            "Log" | "log" => Some(RuleAction::Log),
            _ => None,
        }
    }

    /// The hit action, for actions that end a tier.
    pub fn hit_action(self) -> Option<HitAction> {
        match self {
            RuleAction::Allow => Some(HitAction::Allow),
            RuleAction::Deny => Some(HitAction::Deny),
            RuleAction::Pass => Some(HitAction::Pass),
            RuleAction::Log => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Allow => "Allow",
            RuleAction::Deny => "Deny",
            RuleAction::Pass => "Pass",
            RuleAction::Log => "Log",
        }
    }
}

/// A destination or source port criterion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortMatch {
    Range(u16, u16),
    Named(String),
}

impl std::fmt::Display for PortMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortMatch::Range(a, b) if a == b => write!(f, "{a}"),
            PortMatch::Range(a, b) => write!(f, "{a}:{b}"),
            PortMatch::Named(name) => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    pub icmp_type: Option<u8>,
    pub code: Option<u8>,
}

/// The criteria a rule puts on one end of the flow (`source` or `destination`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityMatch {
    pub nets: Vec<IpNet>,
    pub not_nets: Vec<IpNet>,
    /// The effective selector after namespace scoping and service-account folding.
    pub selector: Option<SelectorId>,
    pub not_selector: Option<SelectorId>,
    pub ports: Vec<PortMatch>,
    pub not_ports: Vec<PortMatch>,
    /// `services: {name, namespace}`: matched against the flow's destination service.
    pub service: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: RuleAction,
    pub ip_version: Option<u8>,
    pub protocol: Option<Protocol>,
    pub not_protocol: Option<Protocol>,
    pub icmp: Option<IcmpMatch>,
    pub not_icmp: Option<IcmpMatch>,
    pub source: EntityMatch,
    pub destination: EntityMatch,
    /// Application-layer (`http`) criteria need L7 data no flow record carries.
    pub has_http_match: bool,
    /// The rule as written, for `explain` (YAML of the source rule; for converted kinds, of the
    /// Kubernetes rule it came from).
    pub text: String,
}

/// Where a policy came from, for messages and for `explain`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

/// The origin of an object read from the cluster (not from a file).
pub const FROM_CLUSTER: &str = "the cluster";

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Objects read from the cluster are loaded as one text: its line numbers mean nothing.
        if self.file.as_os_str() == FROM_CLUSTER {
            return f.write_str(FROM_CLUSTER);
        }
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    /// The name Goldmane reports (a Kubernetes policy's own name; a Calico policy's metadata name).
    pub name: String,
    pub namespace: Option<String>,
    pub tier: String,
    /// `None` sorts last within the tier (Felix: nil order = +Inf).
    pub order: Option<f64>,
    /// Which endpoints the policy applies to, after namespace scoping.
    pub selector: SelectorId,
    pub ingress_applies: bool,
    pub egress_applies: bool,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub origin: Origin,
}

impl Policy {
    pub fn is_staged(&self) -> bool {
        self.kind.is_staged()
    }

    pub fn applies(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.ingress_applies,
            Direction::Egress => self.egress_applies,
        }
    }

    pub fn rules(&self, direction: Direction) -> &[Rule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The one name flowtrace gives it everywhere a person reads it (the table, the trace,
    /// `explain`, fixes): `namespace/name` or `name`, the name as Goldmane reports it (without a
    /// `<tier>.` prefix), so that a policy reads the same whether its verdict was recorded by
    /// Calico or computed. Its manifest's own `metadata.name` is `name`.
    pub fn display_name(&self) -> String {
        crate::model::qualified_name(self.namespace.as_deref().unwrap_or(""), self.hit_name())
    }

    /// The name Goldmane reports: 3.30/3.31 store tiered Calico policies as `<tier>.<name>` and
    /// report the bare name (`goldmane/proto/methods.go: HitFromString`).
    pub fn hit_name(&self) -> &str {
        match self.kind {
            PolicyKind::NetworkPolicy | PolicyKind::StagedKubernetesNetworkPolicy => &self.name,
            _ => self
                .name
                .strip_prefix(self.tier.as_str())
                .and_then(|n| n.strip_prefix('.'))
                .unwrap_or(&self.name),
        }
    }

    /// Felix's tie-break among equal orders: the key Calico 3.30/3.31 stores the policy under
    /// (`[ns/]<tier>.<name>`, `[ns/]<tier>.staged:<name>`, `ns/knp.default.<name>`,
    /// `ns/staged:knp.default.<name>`, `kanp.adminnetworkpolicy.<name>`, ...).
    pub fn sort_key(&self) -> String {
        let bare = self.hit_name();
        let name = match self.kind {
            PolicyKind::NetworkPolicy => format!("knp.default.{bare}"),
            PolicyKind::StagedKubernetesNetworkPolicy => format!("staged:knp.default.{bare}"),
            PolicyKind::AdminNetworkPolicy => format!("kanp.adminnetworkpolicy.{bare}"),
            PolicyKind::BaselineAdminNetworkPolicy => {
                format!("kbanp.baselineadminnetworkpolicy.{bare}")
            }
            PolicyKind::ClusterNetworkPolicy => bare.to_string(),
            kind if kind.is_staged() => format!("{}.staged:{bare}", self.tier),
            _ => format!("{}.{bare}", self.tier),
        };
        match &self.namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    pub order: f64,
    pub default_action: HitAction,
    /// False when policies name a tier that no manifest defines; Felix sorts such tiers last.
    pub defined: bool,
}

/// Tier order Calico gives `default` and any tier created without an order (3.30+).
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
