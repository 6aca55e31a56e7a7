//! The normalised flow every source and format is turned into.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use super::{Labels, PolicyTrace, Verdict};

/// Goldmane's `EndpointType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EndpointType {
    WorkloadEndpoint,
    HostEndpoint,
    NetworkSet,
    Network,
}

impl EndpointType {
    /// Accepts Goldmane's names and Calico Enterprise's short forms (`wep`, `hep`, `ns`, `net`).
    pub fn parse(text: &str) -> Option<EndpointType> {
        Some(match text {
            "WorkloadEndpoint" | "wep" => EndpointType::WorkloadEndpoint,
            "HostEndpoint" | "hep" => EndpointType::HostEndpoint,
            "NetworkSet" | "ns" => EndpointType::NetworkSet,
            "Network" | "net" => EndpointType::Network,
            _ => return None,
        })
    }

    pub fn from_number(number: i64) -> Option<EndpointType> {
        Some(match number {
            1 => EndpointType::WorkloadEndpoint,
            2 => EndpointType::HostEndpoint,
            3 => EndpointType::NetworkSet,
            4 => EndpointType::Network,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::WorkloadEndpoint => "WorkloadEndpoint",
            EndpointType::HostEndpoint => "HostEndpoint",
            EndpointType::NetworkSet => "NetworkSet",
            EndpointType::Network => "Network",
        }
    }
}

/// Which side of the flow reported it, hence which policies apply: `Src` is the source endpoint's
/// egress, `Dst` the destination endpoint's ingress, `Fwd` (Calico Enterprise) a host forwarding
/// the traffic, whose forward policies flowtrace does not evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reporter {
    Src,
    Dst,
    Fwd,
}

impl Reporter {
    pub fn parse(text: &str) -> Option<Reporter> {
        super::by_name_ignoring_case(
            text,
            &[
                ("src", Reporter::Src),
                ("dst", Reporter::Dst),
                ("fwd", Reporter::Fwd),
            ],
        )
    }

    /// Whose policies decided, as the table's SIDE column and the trace say it.
    pub fn side(self) -> &'static str {
        match self {
            Reporter::Src => "egress",
            Reporter::Dst => "ingress",
            Reporter::Fwd => "forward",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Src => "Src",
            Reporter::Dst => "Dst",
            Reporter::Fwd => "Fwd",
        }
    }
}

/// An IP protocol by number, with Calico's names for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ICMP: Protocol = Protocol(1);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
    pub const ICMPV6: Protocol = Protocol(58);
    pub const SCTP: Protocol = Protocol(132);
    pub const UDPLITE: Protocol = Protocol(136);

    const NAMES: [(&'static str, u8); 9] = [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("icmpv6", 58),
        ("icmp6", 58),
        ("sctp", 132),
        ("udplite", 136),
        ("ipip", 4),
        ("esp", 50),
    ];

    /// Accepts names in any case (`TCP`, `tcp`, `ICMPv6`, `icmp6`, `esp`) or a number 0–255.
    pub fn parse(text: &str) -> Option<Protocol> {
        let text = text.trim();
        if let Ok(number) = text.parse::<u8>() {
            return Some(Protocol(number));
        }
        super::by_name_ignoring_case(text, &Self::NAMES).map(Protocol)
    }

    /// Whether a rule on this protocol may carry ports (Calico's validator: TCP, UDP, SCTP, UDPLite).
    pub fn has_ports(self) -> bool {
        matches!(
            self,
            Protocol::TCP | Protocol::UDP | Protocol::SCTP | Protocol::UDPLITE
        )
    }

    pub fn is_icmp(self) -> bool {
        matches!(self, Protocol::ICMP | Protocol::ICMPV6)
    }

    /// Lowercase, as Goldmane writes `proto`.
    pub fn name(self) -> String {
        match self.0 {
            1 => "icmp".into(),
            4 => "ipip".into(),
            6 => "tcp".into(),
            17 => "udp".into(),
            50 => "esp".into(),
            58 => "icmp6".into(),
            132 => "sctp".into(),
            136 => "udplite".into(),
            n => n.to_string(),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Whether a name is one of the markers that stand for what is withheld from a user: they start
/// so, and hold a `: ` no Kubernetes name can.
pub fn is_withheld(name: &str) -> bool {
    name.starts_with("withheld") && name.contains(": ")
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub kind: EndpointType,
    /// Pod name, aggregated name (`nginx-86c57db685-*`), host endpoint, network set, or `pub`/`pvt`.
    /// Shared: a decoder hands out one copy of each name it has read (equal names then usually
    /// compare by pointer).
    pub name: Arc<str>,
    pub namespace: Option<Arc<str>>,
    /// `None` when the record carried no labels at all (then manifests may supply them).
    pub labels: Option<Labels>,
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Endpoint {
    /// How a table shows it: `display_name`, and for a network (`pub`, `pvt`) the address it
    /// stands for when known (`169.254.169.254 (pub)`): a network's name alone hides who it is.
    /// A marker for what is withheld is in parentheses, so a port after it does not read as part
    /// of it.
    pub fn shown(&self, ip: Option<IpAddr>) -> String {
        match (self.kind, ip) {
            (EndpointType::Network, Some(ip)) => format!("{ip} ({})", self.name),
            _ if self.is_withheld() => format!("({})", self.name),
            _ => self.display_name(),
        }
    }

    /// Whether this end stands for one withheld from the user (its name is a marker, and it
    /// keeps no namespace or labels).
    pub fn is_withheld(&self) -> bool {
        self.namespace.is_none() && is_withheld(&self.name)
    }

    /// `namespace/name`, or the bare name for non-namespaced endpoints.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// A flow as the evaluator sees it, whatever format it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub source: Endpoint,
    pub dest: Endpoint,
    pub protocol: Protocol,
    pub dest_port: Option<u16>,
    pub dest_service: Option<Service>,
    pub reporter: Reporter,
    /// What the dataplane recorded, when the record carried it.
    pub reported_action: Option<Verdict>,
    pub reported_policies: Option<PolicyTrace>,
}

/// The Kubernetes service a flow was addressed to (Goldmane `dest_service_*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    pub name: String,
    pub namespace: String,
}

impl Flow {
    /// The endpoint whose policies decide this flow (source egress or destination ingress). A
    /// forwarded flow is decided by the forwarding host, which the record does not name: its
    /// source stands here.
    pub fn local(&self) -> &Endpoint {
        match self.reporter {
            Reporter::Src | Reporter::Fwd => &self.source,
            Reporter::Dst => &self.dest,
        }
    }

    /// The other end, matched by rule peers.
    pub fn peer(&self) -> &Endpoint {
        match self.reporter {
            Reporter::Src | Reporter::Fwd => &self.dest,
            Reporter::Dst => &self.source,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} ({}, reported by {})",
            self.connection(),
            self.reporter.side(),
            self.reporter.as_str()
        )
    }

    /// Who talked to whom: `shop/web-* -> 169.254.169.254 (pub):80/tcp`, whichever side reported.
    pub fn connection(&self) -> String {
        let port = self.dest_port.map(|p| format!(":{p}")).unwrap_or_default();
        let shown = |endpoint: &Endpoint| endpoint.shown(endpoint.ip);
        format!(
            "{} -> {}{port}/{}",
            shown(&self.source),
            shown(&self.dest),
            self.protocol
        )
    }
}
