//! Observed flows written as Whisker `FlowResponse` JSON, with flowtrace's extension fields
//! (endpoint types, IPs) so that every other command reads them back exactly.

use serde::Serialize;

use super::RawObject;
use crate::model::time::format_rfc3339;
use crate::model::{Endpoint, Labels, ObservedFlow, PolicyTrace};

#[derive(Serialize)]
struct FlowResponse<'a> {
    start_time: String,
    end_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    source_name: &'a str,
    source_namespace: &'a str,
    source_labels: String,
    source_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
    dest_name: &'a str,
    dest_namespace: &'a str,
    dest_labels: String,
    dest_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_service_namespace: Option<&'a str>,
    protocol: String,
    dest_port: u16,
    reporter: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<&'a PolicyTrace>,
    packets_in: u64,
    packets_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

fn joined(labels: &Option<Labels>) -> String {
    labels
        .as_ref()
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

fn namespace(endpoint: &Endpoint) -> &str {
    endpoint.namespace.as_deref().unwrap_or("")
}

/// One JSON line (without the newline).
pub fn whisker_json(observed: &ObservedFlow) -> String {
    let flow = &observed.flow;
    let response = FlowResponse {
        start_time: format_rfc3339(observed.start_time),
        end_time: format_rfc3339(observed.end_time),
        action: flow.reported_action.map(|a| a.as_str()),
        source_name: &flow.source.name,
        source_namespace: namespace(&flow.source),
        source_labels: joined(&flow.source.labels),
        source_type: flow.source.kind.as_str(),
        source_ip: flow.source.ip.map(|ip| ip.to_string()),
        dest_name: &flow.dest.name,
        dest_namespace: namespace(&flow.dest),
        dest_labels: joined(&flow.dest.labels),
        dest_type: flow.dest.kind.as_str(),
        dest_ip: flow.dest.ip.map(|ip| ip.to_string()),
        dest_service_name: flow.dest_service.as_ref().map(|s| s.name.as_str()),
        dest_service_namespace: flow.dest_service.as_ref().map(|s| s.namespace.as_str()),
        protocol: flow.protocol.name(),
        dest_port: flow.dest_port.unwrap_or(0),
        reporter: flow.reporter.as_str(),
        policies: flow.reported_policies.as_ref(),
        packets_in: observed.counters.packets_in,
        packets_out: observed.counters.packets_out,
        bytes_in: observed.counters.bytes_in,
        bytes_out: observed.counters.bytes_out,
    };
    serde_json::to_string(&response).expect("plain data serialises")
}

/// Calls `with` on the flow written as a record, for printers that copy a record's members (a
/// flow that came typed from a server has no record as read).
pub fn as_record<R>(observed: &ObservedFlow, with: impl FnOnce(&RawObject) -> R) -> R {
    let text = whisker_json(observed);
    with(&RawObject::new(&text))
}
