//! Flow records as JSON Lines, in every format Calico writes, detected per line: Whisker's
//! `FlowResponse` (flat, labels joined by `" | "`), Goldmane `Flow` messages as JSON (nested `Key`,
//! labels as a list, snake_case or protojson camelCase), and Calico Enterprise flow logs
//! (`source_name_aggr`, `policies.enforced_policies` strings).

pub mod encode;
mod fields;
pub mod hit_string;
pub mod json;
mod known;
pub mod raw;

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::model::time::parse_rfc3339;
use crate::model::{
    decimal, Counters, Endpoint, EndpointType, Flow, HitAction, Labels, ObservedFlow, PolicyHit,
    PolicyKind, PolicyTrace, Protocol, Reporter, Service, Verdict,
};
use fields::{Field, Fields, Shape};
use hit_string::{normalise_reported_hit, parse_hit_string};
use json::string_value;
use known::{joined_key, RecentTimes, Remembered};
pub use raw::RawObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowFormat {
    Whisker,
    Goldmane,
    Enterprise,
}

impl fmt::Display for FlowFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowFormat::Whisker => "Whisker",
            FlowFormat::Goldmane => "Goldmane",
            FlowFormat::Enterprise => "Calico Enterprise",
        })
    }
}

/// A decoded record: the flow, the record as read (borrowed from the line, for output), and its format.
#[derive(Debug, Clone)]
pub struct FlowRecord<'a> {
    pub flow: Flow,
    pub raw: RawObject<'a>,
    pub format: FlowFormat,
    /// Unix seconds, 0 when absent.
    start_time: i64,
    end_time: i64,
    counters: Counters,
}

/// Decodes one JSON Lines record. The error names the field and what is wrong with it.
pub fn parse_flow_line(line: &str) -> Result<FlowRecord<'_>, String> {
    FlowDecoder::new().decode(line)
}

/// Decodes records, remembering what it has read before (`known`): label sets, endpoint names,
/// whole endpoints and the window's times, each by the text it was read from.
#[derive(Debug, Default)]
pub struct FlowDecoder {
    labels: Remembered<Labels>,
    names: Remembered<Arc<str>>,
    /// Endpoints without their address and port.
    endpoints: Remembered<Endpoint>,
    /// Where an endpoint's lookup key is joined (kept to save an allocation per endpoint).
    endpoint_key: String,
    times: RecentTimes,
    /// The member names of the last record, expected in the next.
    shape: Shape,
}

impl FlowDecoder {
    pub fn new() -> FlowDecoder {
        FlowDecoder::default()
    }

    pub fn decode<'a>(&mut self, line: &'a str) -> Result<FlowRecord<'a>, String> {
        // Records are rarely padded: skip the Unicode-aware trim when the line is bare.
        let trimmed = if line.starts_with('{') && line.ends_with('}') {
            line
        } else {
            line.trim()
        };
        if !trimmed.starts_with('{') {
            return match serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
                Err(e) => Err(format!("invalid JSON: {e}")),
                Ok(_) => Err("expected a JSON object".to_string()),
            };
        }
        let fields = Fields::of_record(trimmed, &mut self.shape)
            .map_err(|_| format!("invalid JSON: {}", json::syntax_error(trimmed)))?;
        let (flow, format) = decode(self, &fields)?;
        Ok(FlowRecord {
            flow,
            raw: RawObject::new(trimmed),
            format,
            start_time: self.time(&fields, Field::StartTime),
            end_time: self.time(&fields, Field::EndTime),
            counters: counters(&fields),
        })
    }

    fn labels(&mut self, object: &Fields, field: Field) -> Result<Option<Labels>, String> {
        let Some(value) = object.get(field) else {
            return Ok(None);
        };
        if let Some(known) = self.labels.get(value) {
            return Ok(Some(known));
        }
        let labels = labels_value(value).map_err(|e| format!("{}: {e}", field.name()))?;
        Ok(Some(self.labels.remember(value, labels)))
    }

    /// A time as RFC 3339 text or a number of seconds; 0 when absent or unreadable.
    fn time(&mut self, record: &Fields, field: Field) -> i64 {
        let Some(text) = record.get(field) else {
            return 0;
        };
        if let Some(seconds) = self.times.get(text) {
            return seconds;
        }
        let seconds = match string_value(text) {
            Some(text) => parse_rfc3339(&text).or_else(|| text.parse().ok()),
            None => text.parse::<f64>().ok().map(|t| t as i64),
        };
        self.times.remember(text, seconds.unwrap_or(0))
    }

    /// An endpoint name or namespace, shared with every earlier one of the same text.
    fn name(&mut self, text: &str) -> Arc<str> {
        self.names
            .get(text)
            .unwrap_or_else(|| self.names.remember(text, text.into()))
    }

    /// One end of a flow, without its address and port: its namespace and type are members of
    /// `object` (errors about them pass through `in_object`), its labels of `labels_from`. Without
    /// a type, an endpoint with a namespace is a workload, and one without an external network.
    /// A known endpoint, by the texts of these members, is a single lookup.
    fn endpoint(
        &mut self,
        object: &Fields,
        in_object: fn(String) -> String,
        labels_from: &Fields,
        side: &Side,
        name: &Name,
    ) -> Result<Endpoint, String> {
        let mut key = std::mem::take(&mut self.endpoint_key);
        let parts = [
            Some(name.raw),
            object.get(side.namespace),
            labels_from.get(side.labels),
            object.get(side.kind),
        ];
        joined_key(&mut key, &parts);
        let endpoint = match self.endpoints.get(&key) {
            Some(known) => Ok(known),
            None => self
                .read_endpoint(object, in_object, labels_from, side, name)
                .map(|endpoint| self.endpoints.remember(&key, endpoint)),
        };
        self.endpoint_key = key;
        endpoint
    }

    fn read_endpoint(
        &mut self,
        object: &Fields,
        in_object: fn(String) -> String,
        labels_from: &Fields,
        side: &Side,
        name: &Name,
    ) -> Result<Endpoint, String> {
        let namespace = namespace(object, side.namespace).map_err(in_object)?;
        let namespace = namespace.map(|ns| self.name(&ns));
        let labels = self.labels(labels_from, side.labels)?;
        let kind = enum_field(
            object,
            side.kind,
            EndpointType::parse,
            EndpointType::from_number,
        )
        .map_err(in_object)?;
        let kind = kind.unwrap_or(if namespace.is_some() {
            EndpointType::WorkloadEndpoint
        } else {
            EndpointType::Network
        });
        Ok(Endpoint {
            kind,
            name: self.name(&name.text),
            namespace,
            labels,
            ip: None,
            port: None,
        })
    }
}

impl<'a> FlowRecord<'a> {
    /// The time window the record covers, in Unix seconds: RFC 3339 text or a number, whichever
    /// the format writes; 0 when absent.
    pub fn window(&self) -> (i64, i64) {
        (self.start_time, self.end_time)
    }

    /// The record as an observation: the flow with its time window and its counters.
    pub fn into_observed(self) -> ObservedFlow {
        self.into_parts().0
    }

    /// The observation and the record as read.
    pub fn into_parts(self) -> (ObservedFlow, RawObject<'a>) {
        let observed = ObservedFlow {
            flow: self.flow,
            start_time: self.start_time,
            end_time: self.end_time,
            counters: self.counters,
        };
        (observed, self.raw)
    }
}

/// A record's traffic counters; a counter absent or unreadable is 0, and `reported` says whether
/// the record carried its packet counts.
fn counters(record: &Fields) -> Counters {
    let count = |field: Field| {
        integer(record, field)
            .ok()
            .flatten()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0)
    };
    Counters {
        packets_in: count(Field::PacketsIn),
        packets_out: count(Field::PacketsOut),
        bytes_in: count(Field::BytesIn),
        bytes_out: count(Field::BytesOut),
        connections_started: count(Field::NumConnectionsStarted).max(count(Field::NumFlowsStarted)),
        connections_completed: count(Field::NumConnectionsCompleted)
            .max(count(Field::NumFlowsCompleted)),
        connections_live: count(Field::NumConnectionsLive),
        reported: [Field::PacketsIn, Field::PacketsOut]
            .into_iter()
            .any(|field| matches!(integer(record, field), Ok(Some(_)))),
    }
}

/// A member that must be an object; `name` says which in the error.
fn object<'a>(value: &'a str, name: &str) -> Result<Fields<'a>, String> {
    Fields::of(value).map_err(|_| format!("{name}: expected an object, found {value}"))
}

fn decode(decoder: &mut FlowDecoder, raw: &Fields) -> Result<(Flow, FlowFormat), String> {
    // A Goldmane `FlowResult` wraps the flow with its id.
    if let Some(inner) = raw.get(Field::Flow).filter(|v| v.starts_with('{')) {
        return decode(decoder, &object(inner, "flow")?);
    }
    if let Some(key) = raw
        .get(Field::GoldmaneKey)
        .or_else(|| raw.get(Field::GoldmaneKeyLowercase))
    {
        return decode_goldmane(decoder, raw, &object(key, "Key")?)
            .map(|f| (f, FlowFormat::Goldmane));
    }
    let policies = match raw.get(Field::Policies) {
        Some(p) if p.starts_with('{') => Some(object(p, "policies")?),
        _ => None,
    };
    let enterprise = [Field::SourceNameAggr, Field::DestNameAggr, Field::Proto]
        .iter()
        .any(|&f| raw.contains(f))
        || policies.as_ref().is_some_and(|p| {
            [
                Field::EnforcedPolicies,
                Field::PendingPolicies,
                Field::AllPolicies,
            ]
            .iter()
            .any(|&f| p.contains(f))
        });
    if enterprise {
        decode_enterprise(decoder, raw, policies.as_ref()).map(|f| (f, FlowFormat::Enterprise))
    } else {
        decode_whisker(decoder, raw, policies.as_ref()).map(|f| (f, FlowFormat::Whisker))
    }
}

fn string<'a>(object: &Fields<'a>, field: Field) -> Result<Option<Cow<'a, str>>, String> {
    object
        .get(field)
        .map(|value| string_of(field, value))
        .transpose()
}

/// The text of a field's value, which must be a string.
fn string_of(field: Field, value: &str) -> Result<Cow<'_, str>, String> {
    string_value(value).ok_or_else(|| format!("{}: expected a string, found {value}", field.name()))
}

/// An integer written as a number or (protojson int64) as a string.
fn integer(object: &Fields, field: Field) -> Result<Option<i64>, String> {
    let Some(text) = object.get(field) else {
        return Ok(None);
    };
    let name = field.name();
    if let Some(s) = string_value(text) {
        if s.is_empty() {
            return Ok(None);
        }
        let trimmed = s.trim();
        return decimal(trimmed)
            .or_else(|| trimmed.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name}: {s:?} is not an integer"));
    }
    decimal(text)
        .or_else(|| text.parse().ok())
        .map(Some)
        .ok_or_else(|| format!("{name}: {text} is not an integer"))
}

fn port(object: &Fields, field: Field) -> Result<Option<u16>, String> {
    match integer(object, field)? {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .map(Some)
            .map_err(|_| format!("{}: {p} is outside 0-65535", field.name())),
    }
}

fn ip(object: &Fields, field: Field) -> Result<Option<IpAddr>, String> {
    match string(object, field)?.as_deref() {
        None | Some("") | Some("-") => Ok(None),
        Some(text) => dotted_quad(text)
            .map(IpAddr::V4)
            .or_else(|| text.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{}: {text:?} is not an IP address", field.name())),
    }
}

/// An IPv4 address in its usual form (four decimal parts, no leading zeros), read faster than
/// the standard parser reads any address; `None` for anything else, which that parser then reads.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut octets = [0u8; 4];
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let start = at;
        let mut value = 0u32;
        while let Some(&digit) = bytes
            .get(at)
            .filter(|b| b.is_ascii_digit() && at - start < 3)
        {
            value = value * 10 + (digit - b'0') as u32;
            at += 1;
        }
        let leading_zero = at - start > 1 && bytes[start] == b'0';
        if at == start || leading_zero || value > 255 {
            return None;
        }
        *octet = value as u8;
    }
    (at == bytes.len()).then_some(Ipv4Addr::from(octets))
}

/// Labels as any format writes them: `"a=b | c=d"`, `["a=b"]`, `{"a": "b"}`, `{"labels": [...]}`.
fn labels_value(text: &str) -> Result<Labels, String> {
    if let Some(joined) = string_value(text) {
        return Ok(Labels::from_kv_strings(joined.split(" | ")));
    }
    if text.starts_with('[') {
        let items: Vec<Cow<str>> = serde_json::from_str(text)
            .map_err(|_| format!("expected a list of \"key=value\" strings, found {text}"))?;
        return Ok(Labels::from_kv_strings(items.iter().map(|i| i.as_ref())));
    }
    if text.starts_with('{') {
        let map = Fields::of(text).map_err(|_| json::syntax_error(text))?;
        // Calico Enterprise wraps the list once: `{"labels": [...]}`. Only once: a wrapper in
        // a wrapper is no label set (and reading each level again would cost time squared).
        if let Some(inner) = map.get(Field::Labels).filter(|v| !v.starts_with('"')) {
            if inner.starts_with('{') {
                return Err("a labels object inside a labels object is not a label set".into());
            }
            return labels_value(inner);
        }
        let pairs: std::collections::BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|_| format!("expected string label values, found {text}"))?;
        return Ok(Labels::from_pairs(pairs.into_iter().collect()));
    }
    Err(format!("expected labels, found {text}"))
}

/// An enum written as its proto name or number.
fn enum_field<T>(
    object: &Fields,
    field: Field,
    by_name: fn(&str) -> Option<T>,
    by_number: fn(i64) -> Option<T>,
) -> Result<Option<T>, String> {
    let Some(value) = object.get(field) else {
        return Ok(None);
    };
    let name = field.name();
    match string_value(value) {
        Some(s) if s.is_empty() || s.ends_with("Unspecified") => Ok(None),
        Some(s) => by_name(&s)
            .map(Some)
            .ok_or_else(|| format!("{name}: unknown value {s:?}")),
        None => match value.parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) => by_number(n)
                .map(Some)
                .ok_or_else(|| format!("{name}: unknown value {n}")),
            Err(_) => Err(format!("{name}: expected a name or number, found {value}")),
        },
    }
}

fn reporter_by_number(n: i64) -> Option<Reporter> {
    match n {
        1 => Some(Reporter::Src),
        2 => Some(Reporter::Dst),
        _ => None,
    }
}

fn action_by_number(n: i64) -> Option<HitAction> {
    match n {
        1 => Some(HitAction::Allow),
        2 => Some(HitAction::Deny),
        3 => Some(HitAction::Pass),
        _ => None,
    }
}

fn protocol(object: &Fields, field: Field) -> Result<Protocol, String> {
    let name = field.name();
    let value = object
        .get(field)
        .ok_or_else(|| format!("{name}: missing"))?;
    match string_value(value) {
        Some(s) => Protocol::parse(&s).ok_or_else(|| format!("{name}: unknown protocol {s:?}")),
        None => value
            .parse::<u8>()
            .map(Protocol)
            .map_err(|_| format!("{name}: {value} is not a protocol")),
    }
}

fn verdict(object: &Fields, field: Field) -> Result<Option<Verdict>, String> {
    match enum_field(object, field, HitAction::parse, action_by_number)? {
        None => Ok(None),
        Some(HitAction::Allow) => Ok(Some(Verdict::Allow)),
        Some(HitAction::Deny) => Ok(Some(Verdict::Deny)),
        Some(HitAction::Pass) => Err(format!(
            "{}: a flow's action is Allow or Deny, not Pass",
            field.name()
        )),
    }
}

fn reporter(object: &Fields) -> Result<Reporter, String> {
    match enum_field(object, Field::Reporter, Reporter::parse, reporter_by_number) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err("reporter: missing (Src or Dst)".to_string()),
        Err(_) => Err(format!(
            "reporter: {} is not Src or Dst",
            object.get(Field::Reporter).unwrap_or_default()
        )),
    }
}

/// `-` and the empty string mean "no namespace" in Calico's flow formats.
fn namespace<'a>(object: &Fields<'a>, field: Field) -> Result<Option<Cow<'a, str>>, String> {
    Ok(string(object, field)?.filter(|ns| !ns.is_empty() && ns != "-"))
}

/// The members that describe one end of a flow.
struct Side {
    name: Field,
    name_aggr: Field,
    namespace: Field,
    labels: Field,
    kind: Field,
    ip: Field,
    /// Only the source's port is recorded.
    port: Option<Field>,
}

const SOURCE: Side = Side {
    name: Field::SourceName,
    name_aggr: Field::SourceNameAggr,
    namespace: Field::SourceNamespace,
    labels: Field::SourceLabels,
    kind: Field::SourceType,
    ip: Field::SourceIp,
    port: Some(Field::SourcePort),
};

const DEST: Side = Side {
    name: Field::DestName,
    name_aggr: Field::DestNameAggr,
    namespace: Field::DestNamespace,
    labels: Field::DestLabels,
    kind: Field::DestType,
    ip: Field::DestIp,
    port: None,
};

/// An endpoint's port (the source's only) and address, from `object`.
fn address(endpoint: &mut Endpoint, object: &Fields, side: &Side) -> Result<(), String> {
    endpoint.port = match side.port {
        Some(field) => port(object, field)?,
        None => None,
    };
    endpoint.ip = ip(object, side.ip)?;
    Ok(())
}

fn service(object: &Fields) -> Result<Option<Service>, String> {
    let name =
        string(object, Field::DestServiceName)?.filter(|n| !n.is_empty() && n != "-" && n != "*");
    let namespace = string(object, Field::DestServiceNamespace)?.unwrap_or_default();
    Ok(name.map(|name| Service {
        name: name.into_owned(),
        namespace: namespace.into_owned(),
    }))
}

fn policy_hit(value: &str) -> Result<PolicyHit, String> {
    hit_of(value, None)
}

/// A hit, or the trigger of one (`of_hit`: its hit's action). A trigger only names the policy
/// whose tier ended, so it may carry no action (Calico writes `ActionUnspecified`, `0` or none):
/// it then takes its hit's.
fn hit_of(value: &str, of_hit: Option<HitAction>) -> Result<PolicyHit, String> {
    let object = object(value, "policy hit")?;
    let kind = enum_field(
        &object,
        Field::Kind,
        PolicyKind::parse,
        PolicyKind::from_number,
    )?
    .ok_or("policy hit: kind is missing")?;
    let action = enum_field(&object, Field::Action, HitAction::parse, action_by_number)?
        .or(of_hit)
        .ok_or("policy hit: action is missing")?;
    let trigger = match object.get(Field::Trigger) {
        Some(t) => Some(Box::new(
            hit_of(t, Some(action)).map_err(|e| format!("trigger: {e}"))?,
        )),
        None => None,
    };
    let text =
        |field: Field| string(&object, field).map(|s| s.map(Cow::into_owned).unwrap_or_default());
    Ok(normalise_reported_hit(PolicyHit {
        kind,
        name: text(Field::Name)?,
        namespace: text(Field::Namespace)?,
        tier: text(Field::Tier)?,
        action,
        policy_index: integer(&object, Field::PolicyIndex)?.unwrap_or(0),
        rule_index: integer(&object, Field::RuleIndex)?.unwrap_or(0),
        trigger,
    }))
}

fn list<'a>(object: &Fields<'a>, field: Field) -> Result<Option<Vec<&'a str>>, String> {
    match object.get(field) {
        None => Ok(None),
        Some(value) => {
            let mut items = Vec::new();
            json::for_each_item(value, |item| items.push(item))
                .map_err(|_| format!("{}: expected a list, found {value}", field.name()))?;
            Ok(Some(items))
        }
    }
}

fn hit_list(object: &Fields, field: Field) -> Result<Vec<PolicyHit>, String> {
    let items = list(object, field)?.unwrap_or_default();
    let hits = items
        .iter()
        .enumerate()
        .map(|(i, h)| policy_hit(h).map_err(|e| format!("{}[{i}]: {e}", field.name())));
    hits.collect::<Result<Vec<_>, _>>().map(sorted)
}

fn sorted(mut hits: Vec<PolicyHit>) -> Vec<PolicyHit> {
    // Calico stores hits unordered; their index is the order.
    hits.sort_by_key(|h| h.policy_index);
    hits
}

/// An endpoint's name: its member's text as written (part of what identifies the endpoint) and
/// as read.
struct Name<'a> {
    raw: &'a str,
    text: Cow<'a, str>,
}

fn required_name<'a>(object: &Fields<'a>, field: Field) -> Result<Name<'a>, String> {
    let raw = object
        .get(field)
        .ok_or_else(|| format!("{}: missing", field.name()))?;
    Ok(Name {
        raw,
        text: string_of(field, raw)?,
    })
}

fn decode_whisker(
    decoder: &mut FlowDecoder,
    raw: &Fields,
    policies: Option<&Fields>,
) -> Result<Flow, String> {
    if let Some(p) = raw.get(Field::Policies).filter(|p| !p.starts_with('{')) {
        return Err(format!("policies: expected an object, found {p}"));
    }
    let reported_policies = match policies {
        Some(p) => Some(PolicyTrace {
            enforced: hit_list(p, Field::Enforced)?,
            pending: hit_list(p, Field::Pending)?,
        }),
        None => None,
    };
    let names = [
        required_name(raw, SOURCE.name)?,
        required_name(raw, DEST.name)?,
    ];
    flat_flow(decoder, raw, names, Field::Protocol, reported_policies)
}

/// A flow from a flat record (Whisker or Calico Enterprise): both name the same fields alike except
/// the endpoint names and the protocol.
fn flat_flow(
    decoder: &mut FlowDecoder,
    raw: &Fields,
    names: [Name; 2],
    protocol_field: Field,
    reported_policies: Option<PolicyTrace>,
) -> Result<Flow, String> {
    let [source, dest] = [(&SOURCE, &names[0]), (&DEST, &names[1])].map(|(side, name)| {
        let mut endpoint = decoder.endpoint(raw, |e| e, raw, side, name)?;
        address(&mut endpoint, raw, side)?;
        Ok::<_, String>(endpoint)
    });
    Ok(Flow {
        source: source?,
        dest: dest?,
        protocol: protocol(raw, protocol_field)?,
        dest_port: port(raw, Field::DestPort)?,
        dest_service: service(raw)?,
        reporter: reporter(raw)?,
        reported_action: verdict(raw, Field::Action)?,
        reported_policies,
    })
}

fn decode_goldmane(decoder: &mut FlowDecoder, raw: &Fields, key: &Fields) -> Result<Flow, String> {
    fn with_prefix(e: String) -> String {
        format!("Key.{e}")
    }
    let reported_policies = match key.get(Field::Policies) {
        Some(p) => {
            let p = object(p, "policies").map_err(with_prefix)?;
            Some(PolicyTrace {
                enforced: hit_list(&p, Field::EnforcedPolicies).map_err(with_prefix)?,
                pending: hit_list(&p, Field::PendingPolicies).map_err(with_prefix)?,
            })
        }
        None => None,
    };
    let mut endpoint_of = |side: &Side| -> Result<Endpoint, String> {
        let name = required_name(key, side.name).map_err(with_prefix)?;
        let mut endpoint = decoder.endpoint(key, with_prefix, raw, side, &name)?;
        address(&mut endpoint, key, side).map_err(with_prefix)?;
        // IPs and the source port are flowtrace's extensions; accept them beside the key too.
        if endpoint.ip.is_none() {
            endpoint.ip = ip(raw, side.ip)?;
        }
        if let Some(field) = side.port.filter(|_| endpoint.port.is_none()) {
            endpoint.port = port(raw, field)?;
        }
        Ok(endpoint)
    };
    Ok(Flow {
        source: endpoint_of(&SOURCE)?,
        dest: endpoint_of(&DEST)?,
        protocol: protocol(key, Field::Proto).map_err(with_prefix)?,
        dest_port: port(key, Field::DestPort).map_err(with_prefix)?,
        dest_service: service(key).map_err(with_prefix)?,
        reporter: reporter(key).map_err(with_prefix)?,
        reported_action: verdict(key, Field::Action).map_err(with_prefix)?,
        reported_policies,
    })
}

fn enterprise_hits(policies: &Fields, field: Field) -> Result<Option<Vec<PolicyHit>>, String> {
    let Some(items) = list(policies, field).map_err(|e| format!("policies.{e}"))? else {
        return Ok(None);
    };
    let name = field.name();
    let hits = items.iter().enumerate().map(|(i, item)| {
        let text = string_value(item)
            .ok_or_else(|| format!("policies.{name}[{i}]: expected a string, found {item}"))?;
        parse_hit_string(&text).map_err(|e| format!("policies.{name}[{i}]: {e}"))
    });
    hits.collect::<Result<Vec<_>, _>>()
        .map(|hits| Some(sorted(hits)))
}

fn decode_enterprise(
    decoder: &mut FlowDecoder,
    raw: &Fields,
    policies: Option<&Fields>,
) -> Result<Flow, String> {
    // An aggregated record has `-` for the name and the aggregated name beside it.
    let endpoint_name = |side: &Side| -> Result<Name, String> {
        if let Some(raw) = raw.get(side.name) {
            let text = string_of(side.name, raw)?;
            if !text.is_empty() && text != "-" {
                return Ok(Name { raw, text });
            }
        }
        required_name(raw, side.name_aggr)
    };
    let reported_policies = match policies {
        Some(p) => {
            let enforced = match enterprise_hits(p, Field::EnforcedPolicies)? {
                Some(hits) => hits,
                None => enterprise_hits(p, Field::AllPolicies)?.unwrap_or_default(),
            };
            Some(PolicyTrace {
                enforced,
                pending: enterprise_hits(p, Field::PendingPolicies)?.unwrap_or_default(),
            })
        }
        None => None,
    };
    let names = [endpoint_name(&SOURCE)?, endpoint_name(&DEST)?];
    flat_flow(decoder, raw, names, Field::Proto, reported_policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_newer_backends_add_are_read_past() {
        // Whisker on master adds `service`; Goldmane's proposal adds `source_ips`/`dest_ips`.
        let plain = r#"{"start_time":"2026-03-19T14:30:00Z","action":"Deny","source_name":"web-*","source_namespace":"frontend","source_labels":"app=web","dest_name":"api-*","dest_namespace":"backend","dest_labels":"app=api","protocol":"tcp","dest_port":8080,"reporter":"Dst"}"#;
        let newer = plain.replace(
            "\"reporter\":\"Dst\"",
            "\"reporter\":\"Dst\",\"service\":{\"name\":\"api\",\"namespace\":\"backend\",\"port\":8080},\"source_ips\":[\"10.0.0.1\"],\"dest_ips\":[\"10.0.0.2\",\"10.0.0.3\"]",
        );
        assert_ne!(plain, newer);
        assert_eq!(
            parse_flow_line(&newer).unwrap().flow,
            parse_flow_line(plain).unwrap().flow
        );
    }

    #[test]
    fn whisker_flow_response() {
        let line = r#"{"start_time":"2026-03-19T14:30:00Z","action":"Allow","source_name":"traffic-gen-*","source_namespace":"frontend","source_labels":"app=traffic-gen | role=client","dest_name":"api-*","dest_namespace":"backend","dest_labels":"app=api | role=backend","protocol":"tcp","dest_port":8080,"reporter":"Src","policies":{"enforced":[{"kind":"CalicoNetworkPolicy","name":"allow-frontend-to-backend","namespace":"frontend","tier":"platform","action":"Allow","policy_index":0,"rule_index":0,"trigger":null}],"pending":[]}}"#;
        let record = parse_flow_line(line).unwrap();
        assert_eq!(record.format, FlowFormat::Whisker);
        let flow = record.flow;
        assert_eq!(flow.source.kind, EndpointType::WorkloadEndpoint);
        assert_eq!(
            flow.source.labels.as_ref().unwrap().get("role"),
            Some("client")
        );
        assert_eq!(flow.dest_port, Some(8080));
        assert_eq!(flow.reporter, Reporter::Src);
        assert_eq!(flow.reported_action, Some(Verdict::Allow));
        let hits = flow.reported_policies.unwrap().enforced;
        assert_eq!(
            (hits[0].kind, hits[0].tier.as_str()),
            (PolicyKind::CalicoNetworkPolicy, "platform")
        );
    }

    #[test]
    fn goldmane_flow_in_both_json_spellings() {
        let snake = r#"{"Key":{"source_name":"web-*","source_namespace":"shop","source_type":"WorkloadEndpoint","dest_name":"pub","dest_namespace":"","dest_type":"Network","dest_port":"443","proto":"tcp","reporter":"Src","action":"Deny","policies":{"enforced_policies":[{"kind":"EndOfTier","tier":"security","action":"Deny","policy_index":0,"rule_index":-1,"trigger":{"kind":"GlobalNetworkPolicy","name":"kanp.adminnetworkpolicy.x","tier":"security","action":"Deny"}}]}},"source_labels":["app=web"],"dest_labels":[]}"#;
        let camel = r#"{"key":{"sourceName":"web-*","sourceNamespace":"shop","sourceType":1,"destName":"pub","destType":4,"destPort":443,"proto":"tcp","reporter":1,"action":2,"policies":{"enforcedPolicies":[{"kind":10,"tier":"security","action":2,"policyIndex":"0","ruleIndex":"-1","trigger":{"kind":2,"name":"kanp.adminnetworkpolicy.x","tier":"security","action":2}}]}},"sourceLabels":["app=web"],"destLabels":[]}"#;
        let a = parse_flow_line(snake).unwrap();
        let b = parse_flow_line(camel).unwrap();
        assert_eq!(a.format, FlowFormat::Goldmane);
        assert_eq!(a.flow, b.flow);
        assert_eq!(a.flow.dest.kind, EndpointType::Network);
        assert_eq!(a.flow.dest_port, Some(443));
        let trigger = a.flow.reported_policies.unwrap().enforced[0]
            .trigger
            .clone()
            .unwrap();
        assert_eq!(
            (trigger.kind, trigger.name.as_str()),
            (PolicyKind::AdminNetworkPolicy, "x"),
            "3.31 admin hits are normalised"
        );
    }

    #[test]
    fn nested_labels_objects_are_refused_at_once() {
        // 100,000 levels of {"labels": ...}: one bad line, read in linear time.
        let depth = 100_000;
        let labels = "{\"labels\":".repeat(depth) + "[]" + &"}".repeat(depth);
        let line = format!(
            r#"{{"source_name":"a","source_namespace":"x","source_labels":{labels},"dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80,"reporter":"Src"}}"#
        );
        // Before, each level was read again (and recursed into): a minute, or the stack.
        let error = parse_flow_line(&line).unwrap_err();
        assert!(error.contains("source_labels"), "{error}");
        // One wrapper, as Calico Enterprise writes it, is read.
        let once = r#"{"source_name":"a","source_namespace":"x","source_labels":{"labels":["app=web"]},"dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80,"reporter":"Src"}"#;
        let flow = parse_flow_line(once).unwrap().flow;
        assert_eq!(flow.source.labels.unwrap().get("app"), Some("web"));
    }

    #[test]
    fn enterprise_flow_log() {
        let line = r#"{"start_time":1597086849,"source_ip":null,"source_name":"-","source_name_aggr":"access-6b687c8dcb-*","source_namespace":"policy-demo","source_type":"wep","source_labels":{"labels":["app=access"]},"dest_ip":"192.168.213.223","dest_name":"-","dest_name_aggr":"nginx-86c57db685-*","dest_namespace":"policy-demo","dest_port":80,"dest_type":"wep","dest_labels":{"labels":["app=nginx"]},"proto":"tcp","action":"deny","reporter":"dst","policies":{"enforced_policies":["1|__PROFILE__|__PROFILE__.kns.policy-demo|allow|0","0|default|policy-demo/knp.default.web|pass|2"]}}"#;
        let record = parse_flow_line(line).unwrap();
        assert_eq!(record.format, FlowFormat::Enterprise);
        assert_eq!(&*record.flow.source.name, "access-6b687c8dcb-*");
        assert_eq!(
            record.flow.dest.ip,
            Some("192.168.213.223".parse().unwrap())
        );
        assert_eq!(record.flow.reported_action, Some(Verdict::Deny));
        let hits = record.flow.reported_policies.unwrap().enforced;
        assert_eq!(
            hits[0].kind,
            PolicyKind::NetworkPolicy,
            "hits are sorted by index"
        );
        assert_eq!(hits[1].kind, PolicyKind::Profile);
    }

    #[test]
    fn a_decoder_remembers_label_sets_by_their_text() {
        let line = |labels: &str| {
            format!(
                r#"{{"source_name":"a","source_namespace":"x","source_labels":{labels},"dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80,"reporter":"Dst"}}"#
            )
        };
        let mut decoder = FlowDecoder::new();
        let (one, two, other) = (
            line(r#""app=web | tier=1""#),
            line(r#""app=web | tier=1""#),
            line(r#"["app=db"]"#),
        );
        let first = decoder.decode(&one).unwrap().flow.source.labels.unwrap();
        let again = decoder.decode(&two).unwrap().flow.source.labels.unwrap();
        let different = decoder.decode(&other).unwrap().flow.source.labels.unwrap();
        assert_eq!(first, again);
        assert_eq!(first.get("tier"), Some("1"));
        assert_eq!(different.get("app"), Some("db"));
        assert_eq!(different.get("tier"), None);
        let empty = line(r#""""#);
        assert!(decoder
            .decode(&empty)
            .unwrap()
            .flow
            .source
            .labels
            .unwrap()
            .is_empty());
    }

    #[test]
    fn dotted_quads_read_as_the_standard_parser_reads_them() {
        for text in ["10.64.1.2", "0.0.0.0", "255.255.255.255", "1.20.3.40"] {
            assert_eq!(dotted_quad(text), text.parse().ok(), "{text}");
        }
    }

    proptest::proptest! {
        /// What the fast path reads, the standard parser reads alike; the rest is left to it.
        #[test]
        fn dotted_quads_never_disagree_with_the_standard_parser(text in "[0-9.]{0,17}|[0-9a-f:.]{0,12}") {
            if let Some(address) = dotted_quad(&text) {
                proptest::prop_assert_eq!(Some(address), text.parse().ok());
            }
        }
    }

    #[test]
    fn a_trigger_without_an_action_takes_its_hits() {
        for trigger_action in [r#""action":"ActionUnspecified","#, r#""action":0,"#, ""] {
            let line = format!(
                r#"{{"source_name":"web-*","source_namespace":"shop","source_labels":"app=web","dest_name":"pub","dest_type":"Network","protocol":"tcp","dest_port":443,"reporter":"Src","action":"Deny","policies":{{"enforced":[{{"kind":"EndOfTier","tier":"security","action":"Deny","policy_index":0,"rule_index":-1,"trigger":{{"kind":"GlobalNetworkPolicy","name":"security.egress",{trigger_action}"tier":"security"}}}}],"pending":[]}}}}"#
            );
            let flow = parse_flow_line(&line).unwrap_or_else(|e| panic!("{trigger_action}: {e}"));
            let hits = flow.flow.reported_policies.unwrap().enforced;
            let trigger = hits[0].trigger.as_deref().unwrap();
            assert_eq!(trigger.name, "security.egress");
            assert_eq!(trigger.action, HitAction::Deny);
        }
        // A hit's own action is still required, and a trigger's error says it is the trigger's.
        let bad = r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80,"reporter":"Src","policies":{"enforced":[{"kind":"EndOfTier","tier":"t","action":"Deny","trigger":{"kind":"Bogus"}}]}}"#;
        let error = parse_flow_line(bad).unwrap_err();
        assert!(error.contains("trigger: kind: unknown value"), "{error}");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse_flow_line("{not json")
            .unwrap_err()
            .starts_with("invalid JSON"));
        assert_eq!(
            parse_flow_line("[1]").unwrap_err(),
            "expected a JSON object"
        );
        let no_reporter = r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80}"#;
        assert_eq!(
            parse_flow_line(no_reporter).unwrap_err(),
            "reporter: missing (Src or Dst)"
        );
        let bad_port = r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":70000,"reporter":"Dst"}"#;
        assert_eq!(
            parse_flow_line(bad_port).unwrap_err(),
            "dest_port: 70000 is outside 0-65535"
        );
        let bad_ip = r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80,"reporter":"Dst","dest_ip":"10.0.0.300"}"#;
        assert_eq!(
            parse_flow_line(bad_ip).unwrap_err(),
            "dest_ip: \"10.0.0.300\" is not an IP address"
        );
    }
}
