//! Policy hits as Goldmane reports them (`goldmane/proto/api.proto`: PolicyHit, PolicyKind, Action).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A rule or tier action as carried in a policy hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HitAction {
    Allow,
    Deny,
    Pass,
}

impl HitAction {
    pub fn parse(text: &str) -> Option<HitAction> {
        super::by_name_ignoring_case(
            text,
            &[
                ("allow", HitAction::Allow),
                ("accept", HitAction::Allow),
                ("deny", HitAction::Deny),
                ("pass", HitAction::Pass),
            ],
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HitAction::Allow => "Allow",
            HitAction::Deny => "Deny",
            HitAction::Pass => "Pass",
        }
    }
}

impl fmt::Display for HitAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of evaluating a flow: Calico's verdict, or `Unknown` when a rule needed something the
/// flow does not carry (the trace then says what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    Allow,
    Deny,
    Unknown,
}

impl Verdict {
    pub fn parse(text: &str) -> Option<Verdict> {
        super::by_name_ignoring_case(text, &[("allow", Verdict::Allow), ("deny", Verdict::Deny)])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "Allow",
            Verdict::Deny => "Deny",
            Verdict::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Goldmane's `PolicyKind` names. Both wire versions' kinds are kept: 3.30/3.31 report
/// AdminNetworkPolicy/BaselineAdminNetworkPolicy, 3.32+ ClusterNetworkPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    CalicoNetworkPolicy,
    GlobalNetworkPolicy,
    StagedNetworkPolicy,
    StagedGlobalNetworkPolicy,
    StagedKubernetesNetworkPolicy,
    NetworkPolicy,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
    ClusterNetworkPolicy,
    Profile,
    EndOfTier,
}

impl PolicyKind {
    pub fn parse(text: &str) -> Option<PolicyKind> {
        Some(match text {
            "CalicoNetworkPolicy" => PolicyKind::CalicoNetworkPolicy,
            "GlobalNetworkPolicy" => PolicyKind::GlobalNetworkPolicy,
            "StagedNetworkPolicy" => PolicyKind::StagedNetworkPolicy,
            "StagedGlobalNetworkPolicy" => PolicyKind::StagedGlobalNetworkPolicy,
            "StagedKubernetesNetworkPolicy" => PolicyKind::StagedKubernetesNetworkPolicy,
            "NetworkPolicy" => PolicyKind::NetworkPolicy,
            "AdminNetworkPolicy" => PolicyKind::AdminNetworkPolicy,
            "BaselineAdminNetworkPolicy" => PolicyKind::BaselineAdminNetworkPolicy,
            "ClusterNetworkPolicy" => PolicyKind::ClusterNetworkPolicy,
            "Profile" => PolicyKind::Profile,
            "EndOfTier" => PolicyKind::EndOfTier,
            _ => return None,
        })
    }

    /// The proto enum number, shared by both wire versions where the kind exists in both.
    pub fn from_number(number: i64) -> Option<PolicyKind> {
        Some(match number {
            1 => PolicyKind::CalicoNetworkPolicy,
            2 => PolicyKind::GlobalNetworkPolicy,
            3 => PolicyKind::StagedNetworkPolicy,
            4 => PolicyKind::StagedGlobalNetworkPolicy,
            5 => PolicyKind::StagedKubernetesNetworkPolicy,
            6 => PolicyKind::NetworkPolicy,
            7 => PolicyKind::AdminNetworkPolicy,
            8 => PolicyKind::BaselineAdminNetworkPolicy,
            9 => PolicyKind::Profile,
            10 => PolicyKind::EndOfTier,
            11 => PolicyKind::ClusterNetworkPolicy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::CalicoNetworkPolicy => "CalicoNetworkPolicy",
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            PolicyKind::StagedNetworkPolicy => "StagedNetworkPolicy",
            PolicyKind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            PolicyKind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            PolicyKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
            PolicyKind::Profile => "Profile",
            PolicyKind::EndOfTier => "EndOfTier",
        }
    }

    pub fn is_staged(self) -> bool {
        matches!(
            self,
            PolicyKind::StagedNetworkPolicy
                | PolicyKind::StagedGlobalNetworkPolicy
                | PolicyKind::StagedKubernetesNetworkPolicy
        )
    }

    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            PolicyKind::CalicoNetworkPolicy
                | PolicyKind::StagedNetworkPolicy
                | PolicyKind::NetworkPolicy
                | PolicyKind::StagedKubernetesNetworkPolicy
        )
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a policy trace, in Goldmane's shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyHit {
    pub kind: PolicyKind,
    pub name: String,
    pub namespace: String,
    pub tier: String,
    pub action: HitAction,
    pub policy_index: i64,
    pub rule_index: i64,
    pub trigger: Option<Box<PolicyHit>>,
}

impl PolicyHit {
    /// `namespace/name`, or the name of a global policy.
    pub fn qualified_name(&self) -> String {
        qualified_name(&self.namespace, &self.name)
    }

    /// The hit said briefly: `tier security: GlobalNetworkPolicy deny-egress rule 2 (Deny)`.
    pub fn describe(&self) -> String {
        match self.kind {
            PolicyKind::Profile => format!("profile {} ({})", self.name, self.action),
            PolicyKind::EndOfTier => {
                let trigger = self
                    .trigger
                    .as_deref()
                    .map(PolicyHit::qualified_name)
                    .unwrap_or_default();
                format!(
                    "tier {}: end of tier, default {} (after {trigger})",
                    self.tier, self.action
                )
            }
            _ => format!(
                "tier {}: {} {} rule {} ({})",
                self.tier,
                self.kind,
                self.qualified_name(),
                self.rule_index,
                self.action
            ),
        }
    }
}

/// `namespace/name`, or `name` when the namespace is empty (global objects).
pub fn qualified_name(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// The tier Calico gives namespace and service-account profiles.
pub const PROFILE_TIER: &str = "__PROFILE__";

/// Enforced and pending hits of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTrace {
    pub enforced: Vec<PolicyHit>,
    pub pending: Vec<PolicyHit>,
}
