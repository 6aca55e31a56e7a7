//! Calico Goldmane (OSS ≥ 3.30) over gRPC: `Flows.Stream` (live, with backfill), `Flows.List`
//! (history, paged) and `Flows.FilterHints`, in both wire versions (3.30/3.31 and 3.32+), over
//! mutual TLS.
//!
//! [`run`] is the long-running source: it streams, batches, reconnects with capped exponential
//! backoff and jitter, resumes from the last aggregation window it saw and drops the windows
//! Goldmane re-sends (keyed by flow key and window start), so every window is delivered once.
//! Records that cannot be turned into an [`ObservedFlow`] are reported as
//! [`SourceEvent::Malformed`] and skipped.

pub mod proto;

use crate::model::time::unix_now;
use crate::source::batch::Batcher;
pub use crate::source::retry::SourceError;
use crate::source::retry::{hash128, reconnect_loop, Delivered, Reconnect, SessionEnd, Sessions};
pub use crate::source::retry::{Backoff, Pacing};
use std::error::Error as StdError;
use std::hash::Hash;
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use tokio::sync::{mpsc, watch};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint as GrpcEndpoint, Identity};
use tonic::{Code, Status};

use crate::errors::error_chain;
use crate::flows::hit_string::normalise_reported_hit;
use crate::model::{
    Counters, Endpoint, EndpointType, Flow, HitAction, Labels, ObservedFlow, PolicyHit, PolicyKind,
    PolicyTrace, Protocol, Reporter, Service, Verdict,
};
pub use crate::source::server_filter::{Match, ServerFilter};
use crate::source::{ConnectionState, SourceEvent};

use proto::{common, v3_30, v3_32};

pub use proto::common::SortBy;

/// Goldmane's aggregation window, in seconds (`AGGREGATION_WINDOW`).
pub use super::AGGREGATION_INTERVAL;

/// Which wire version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoldmaneVersion {
    /// Probe with `FilterHints(type = PolicyKind)`: 3.30/3.31 refuse the filter type.
    #[default]
    Auto,
    V3_30,
    V3_32,
}

impl GoldmaneVersion {
    /// The wire version asked for; `None` when it is to be probed.
    fn known(self) -> Option<WireVersion> {
        match self {
            GoldmaneVersion::Auto => None,
            GoldmaneVersion::V3_30 => Some(WireVersion::V3_30),
            GoldmaneVersion::V3_32 => Some(WireVersion::V3_32),
        }
    }
}

/// A wire version, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireVersion {
    /// Calico 3.30 and 3.31.
    V3_30,
    /// Calico 3.32 and later.
    V3_32,
}

impl WireVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            WireVersion::V3_30 => "3.30-3.31",
            WireVersion::V3_32 => "3.32+",
        }
    }
}

/// Mutual TLS settings. Goldmane requires a client certificate signed by the operator CA; `ca` is
/// the trust root for the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Client certificate; `None` connects without one (Goldmane refuses that).
    pub cert: Option<Pem>,
    pub key: Option<Pem>,
    pub ca: Pem,
    /// The name to verify the server certificate against (e.g. `goldmane` when port-forwarding);
    /// `None` uses the address's host.
    pub server_name: Option<String>,
}

/// PEM text: a file the user named, or text fetched from the cluster.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    /// `origin` names where it came from (e.g. `secret calico-system/node-certs key tls.key`).
    Text {
        origin: String,
        pem: Vec<u8>,
    },
}

impl Pem {
    pub fn read(&self, what: &str) -> Result<Vec<u8>, GoldmaneError> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| {
                GoldmaneError::fatal(format!("reading {what} {}: {e}", path.display()))
            }),
            Pem::Text { pem, .. } => Ok(pem.clone()),
        }
    }
}

impl From<PathBuf> for Pem {
    fn from(path: PathBuf) -> Pem {
        Pem::File(path)
    }
}

/// Names the PEM and never prints it: a client key must not reach a log.
impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(path) => write!(f, "File({})", path.display()),
            Pem::Text { origin, .. } => write!(f, "Text({origin})"),
        }
    }
}

/// A string match on the wire.
fn string_match(m: &Match) -> common::StringMatch {
    common::StringMatch {
        value: m.value.clone(),
        r#type: if m.fuzzy {
            common::MatchType::Fuzzy as i32
        } else {
            common::MatchType::Exact as i32
        },
    }
}

/// Matches flows whose enforced or pending trace has a matching hit; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFilter {
    pub kind: Option<PolicyKind>,
    pub tier: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub action: Option<HitAction>,
}

/// Flow filters. Each list is OR-ed, different lists are AND-ed, as Goldmane does. Everything but
/// `namespaces` is pushed to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoldmaneFilter {
    /// Flows with either end in one of these namespaces. Goldmane ANDs its source and destination
    /// filters, so "either end" cannot be pushed: it is applied here, after decoding.
    pub namespaces: Vec<String>,
    pub terms: ServerFilter,
    pub policies: Vec<PolicyFilter>,
}

/// A wire version's `Filter` from the terms the server can match: the members every version
/// has, then `policies` (whose type differs) and the version's own members.
macro_rules! wire_filter {
    ($version:ident, $terms:expr, $policies:expr $(, $member:ident: $value:expr)*) => {
        $version::Filter {
            source_names: matches(&$terms.source_names),
            source_namespaces: matches(&$terms.source_namespaces),
            dest_names: matches(&$terms.dest_names),
            dest_namespaces: matches(&$terms.dest_namespaces),
            protocols: matches(&$terms.protocols),
            dest_ports: ports(&$terms.dest_ports),
            actions: $terms
                .actions
                .iter()
                .filter_map(|&a| verdict_number(a))
                .collect(),
            policies: $policies,
            $($member: $value,)*
        }
    };
}

impl GoldmaneFilter {
    /// The 3.30/3.31 `Filter` (policy matches are exact strings).
    pub fn to_v3_30(&self) -> Result<Option<v3_30::Filter>, String> {
        let policies = self
            .policies
            .iter()
            .map(|p| {
                let (kind, tier, name) = match (p.kind, p.name.as_deref()) {
                    // 3.30/3.31 report admin policies as GlobalNetworkPolicy hits named
                    // `kanp.adminnetworkpolicy.<name>`: match the name, whatever the kind.
                    (Some(PolicyKind::AdminNetworkPolicy), name) => (
                        0,
                        Some("adminnetworkpolicy".to_string()),
                        name.map(|n| format!("kanp.adminnetworkpolicy.{n}")),
                    ),
                    (Some(PolicyKind::BaselineAdminNetworkPolicy), name) => (
                        0,
                        Some("baselineadminnetworkpolicy".to_string()),
                        name.map(|n| format!("kbanp.baselineadminnetworkpolicy.{n}")),
                    ),
                    (kind, name) => (
                        kind.map(|k| policy_kind_number(k, WireVersion::V3_30))
                            .transpose()?
                            .unwrap_or(0),
                        p.tier.clone(),
                        name.map(str::to_string),
                    ),
                };
                Ok(v3_30::PolicyMatch {
                    kind,
                    tier: p.tier.clone().or(tier).unwrap_or_default(),
                    namespace: p.namespace.clone().unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    action: p.action.map(hit_action_number).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let filter = wire_filter!(v3_30, self.terms, policies);
        Ok((filter != v3_30::Filter::default()).then_some(filter))
    }

    /// The 3.32+ `Filter`.
    pub fn to_v3_32(&self) -> Result<Option<v3_32::Filter>, String> {
        let exact = |s: &Option<String>| s.as_ref().map(|v| string_match(&Match::exact(v.clone())));
        let policies = self
            .policies
            .iter()
            .map(|p| {
                Ok(v3_32::PolicyMatch {
                    kind: p
                        .kind
                        .map(|k| policy_kind_number(k, WireVersion::V3_32))
                        .transpose()?
                        .unwrap_or(0),
                    tier: exact(&p.tier),
                    namespace: exact(&p.namespace),
                    name: exact(&p.name),
                    action: p.action.map(hit_action_number).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let filter = wire_filter!(
            v3_32,
            self.terms,
            policies,
            reporter: 0,
            pending_actions: Vec::new()
        );
        Ok((filter != v3_32::Filter::default()).then_some(filter))
    }

    /// The part of the filter that is applied locally.
    pub fn matches_locally(&self, flow: &Flow) -> bool {
        self.namespaces.is_empty()
            || [&flow.source.namespace, &flow.dest.namespace]
                .into_iter()
                .flatten()
                .any(|ns| self.namespaces.iter().any(|n| **n == **ns))
    }
}

fn matches(items: &[Match]) -> Vec<common::StringMatch> {
    items.iter().map(string_match).collect()
}

fn ports(items: &[u16]) -> Vec<common::PortMatch> {
    items
        .iter()
        .map(|&p| common::PortMatch { port: p.into() })
        .collect()
}

fn verdict_number(verdict: Verdict) -> Option<i32> {
    match verdict {
        Verdict::Allow => Some(common::Action::Allow as i32),
        Verdict::Deny => Some(common::Action::Deny as i32),
        Verdict::Unknown => None,
    }
}

fn hit_action_number(action: HitAction) -> i32 {
    match action {
        HitAction::Allow => common::Action::Allow as i32,
        HitAction::Deny => common::Action::Deny as i32,
        HitAction::Pass => common::Action::Pass as i32,
    }
}

/// A policy kind's number in a wire version; kinds the version lacks are an error.
fn policy_kind_number(kind: PolicyKind, version: WireVersion) -> Result<i32, String> {
    let missing = || {
        Err(format!(
            "policy kind {kind} does not exist in Goldmane {}",
            version.as_str()
        ))
    };
    Ok(match kind {
        PolicyKind::CalicoNetworkPolicy => 1,
        PolicyKind::GlobalNetworkPolicy => 2,
        PolicyKind::StagedNetworkPolicy => 3,
        PolicyKind::StagedGlobalNetworkPolicy => 4,
        PolicyKind::StagedKubernetesNetworkPolicy => 5,
        PolicyKind::NetworkPolicy => 6,
        PolicyKind::AdminNetworkPolicy if version == WireVersion::V3_30 => 7,
        PolicyKind::BaselineAdminNetworkPolicy if version == WireVersion::V3_30 => 8,
        PolicyKind::Profile => 9,
        PolicyKind::EndOfTier => 10,
        PolicyKind::ClusterNetworkPolicy if version == WireVersion::V3_32 => 11,
        _ => return missing(),
    })
}

/// A policy kind from its number in a wire version.
fn policy_kind(number: i32, version: WireVersion) -> Option<PolicyKind> {
    match (number, version) {
        (7 | 8, WireVersion::V3_32) | (11, WireVersion::V3_30) => None,
        (n, _) => PolicyKind::from_number(n.into()),
    }
}

/// How to reach Goldmane and what to ask it for.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldmaneConfig {
    /// `https://127.0.0.1:7443` (port-forwarded), or `http://…` for a server without TLS.
    pub address: String,
    pub tls: Option<TlsSettings>,
    /// Backfill: stream (and list) flows that started this long ago; `None` streams from now.
    pub since: Option<Duration>,
    pub filter: GoldmaneFilter,
    pub version: GoldmaneVersion,
    pub pacing: Pacing,
}

impl GoldmaneConfig {
    pub fn new(address: impl Into<String>) -> GoldmaneConfig {
        GoldmaneConfig {
            address: address.into(),
            tls: None,
            since: None,
            filter: GoldmaneFilter::default(),
            version: GoldmaneVersion::Auto,
            pacing: Pacing::default(),
        }
    }
}

/// A Goldmane error, and whether retrying can fix it.
pub type GoldmaneError = SourceError;

/// A connection or transport failure, classified.
fn transport_error(error: &(dyn StdError + 'static)) -> GoldmaneError {
    classify(error_chain(error), None)
}

/// A gRPC status, classified.
fn status_error(status: &Status) -> GoldmaneError {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = status.source() {
        text.push_str(": ");
        text.push_str(&error_chain(source));
    }
    classify(text, Some(status.code()))
}

fn classify(text: String, code: Option<Code>) -> GoldmaneError {
    let lower = text.to_ascii_lowercase();
    let tls = lower.contains("certificate")
        || lower.contains("fatal alert")
        || lower.contains("unknownissuer")
        || lower.contains("notvalidforname");
    let fatal_code = matches!(
        code,
        Some(Code::Unimplemented | Code::Unauthenticated | Code::PermissionDenied)
    );
    if tls {
        GoldmaneError::fatal(format!("TLS refused: {text}"))
    } else {
        GoldmaneError {
            message: text,
            fatal: fatal_code,
        }
    }
}

/// A connected client speaking one wire version.
#[derive(Debug, Clone)]
pub struct GoldmaneClient {
    channel: Channel,
    version: WireVersion,
    request_timeout: Duration,
}

/// One page of `Flows.List`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowPage {
    pub total_pages: i64,
    pub total_results: i64,
    pub flows: Vec<ObservedFlow>,
    /// Reasons for the records that could not be decoded.
    pub malformed: Vec<String>,
}

/// A `Flows.List` query. Times are Unix seconds; negative means relative to the server's now,
/// zero means oldest (`start_time_gte`) or now (`start_time_lt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub start_time_gte: i64,
    pub start_time_lt: i64,
    /// 0-based.
    pub page: i64,
    /// 0 returns everything.
    pub page_size: i64,
    pub sort_by: Option<SortBy>,
    /// A multiple of 15; 0 lets the server choose.
    pub aggregation_interval: i64,
}

impl ListQuery {
    /// Everything since `config.since` (or everything the server holds).
    pub fn from_config(config: &GoldmaneConfig) -> ListQuery {
        ListQuery {
            start_time_gte: config.since.map(relative_seconds).unwrap_or(0),
            ..ListQuery::default()
        }
    }
}

fn relative_seconds(since: Duration) -> i64 {
    -(i64::try_from(since.as_secs()).unwrap_or(i64::MAX).max(1))
}

/// What `Flows.FilterHints` can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HintType {
    DestName,
    SourceName,
    DestNamespace,
    SourceNamespace,
    PolicyTier,
    PolicyName,
    /// 3.32+ only.
    PolicyKind,
    /// 3.32+ only.
    PolicyNamespace,
}

impl HintType {
    fn number(self) -> i32 {
        match self {
            HintType::DestName => 1,
            HintType::SourceName => 2,
            HintType::DestNamespace => 3,
            HintType::SourceNamespace => 4,
            HintType::PolicyTier => 5,
            HintType::PolicyName => 6,
            HintType::PolicyKind => 7,
            HintType::PolicyNamespace => 8,
        }
    }
}

/// A `Flows.FilterHints` query (times and paging as in [`ListQuery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HintQuery {
    pub start_time_gte: i64,
    pub start_time_lt: i64,
    pub page: i64,
    pub page_size: i64,
}

/// One page of filter hints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintPage {
    pub total_pages: i64,
    pub total_results: i64,
    pub values: Vec<String>,
}

impl GoldmaneClient {
    /// Connects and settles the wire version (probing when `config.version` is `Auto`).
    pub async fn connect(config: &GoldmaneConfig) -> Result<GoldmaneClient, GoldmaneError> {
        GoldmaneClient::connect_speaking(config, config.version.known()).await
    }

    /// Connects, speaking `version`, or the version the server answers to when it is not known.
    async fn connect_speaking(
        config: &GoldmaneConfig,
        version: Option<WireVersion>,
    ) -> Result<GoldmaneClient, GoldmaneError> {
        let mut client = GoldmaneClient {
            channel: connect_channel(config).await?,
            version: version.unwrap_or(WireVersion::V3_32),
            request_timeout: config.pacing.request_timeout,
        };
        if version.is_none() {
            client.version = client.detect_version().await?;
        }
        Ok(client)
    }

    pub fn version(&self) -> WireVersion {
        self.version
    }

    /// `FilterHints(type = PolicyKind)`: 3.32 answers, 3.30/3.31 reply "unsupported filter type".
    async fn detect_version(&mut self) -> Result<WireVersion, GoldmaneError> {
        let probe = v3_32::FilterHintsRequest {
            r#type: v3_32::FilterType::PolicyKind as i32,
            page_size: 1,
            ..Default::default()
        };
        match self.flows_v3_32().filter_hints(self.timed(probe)).await {
            Ok(_) => Ok(WireVersion::V3_32),
            Err(status)
                if status
                    .message()
                    .to_ascii_lowercase()
                    .contains("unsupported filter type") =>
            {
                Ok(WireVersion::V3_30)
            }
            Err(status) => Err(status_error(&status)),
        }
    }

    fn flows_v3_30(&self) -> v3_30::flows_client::FlowsClient<Channel> {
        v3_30::flows_client::FlowsClient::new(self.channel.clone())
    }

    fn flows_v3_32(&self) -> v3_32::flows_client::FlowsClient<Channel> {
        v3_32::flows_client::FlowsClient::new(self.channel.clone())
    }

    /// A request that gives up after the configured timeout.
    fn timed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.request_timeout);
        request
    }

    /// One page of `Flows.List`, with `filter` pushed to the server (its local part applied here).
    pub async fn list(
        &mut self,
        query: &ListQuery,
        filter: &GoldmaneFilter,
    ) -> Result<FlowPage, GoldmaneError> {
        let sort_by: Vec<common::SortOption> = query
            .sort_by
            .map(|s| common::SortOption { sort_by: s as i32 })
            .into_iter()
            .collect();
        let result = match self.version {
            WireVersion::V3_30 => {
                let request = v3_30::FlowListRequest {
                    start_time_gte: query.start_time_gte,
                    start_time_lt: query.start_time_lt,
                    page: query.page,
                    page_size: query.page_size,
                    sort_by,
                    filter: filter.to_v3_30().map_err(GoldmaneError::fatal)?,
                    aggregation_interval: query.aggregation_interval,
                };
                self.flows_v3_30().list(self.timed(request)).await
            }
            WireVersion::V3_32 => {
                let request = v3_32::FlowListRequest {
                    start_time_gte: query.start_time_gte,
                    start_time_lt: query.start_time_lt,
                    page: query.page,
                    page_size: query.page_size,
                    sort_by,
                    filter: filter.to_v3_32().map_err(GoldmaneError::fatal)?,
                    aggregation_interval: query.aggregation_interval,
                };
                self.flows_v3_32().list(self.timed(request)).await
            }
        }
        .map_err(|s| status_error(&s))?
        .into_inner();
        let meta = result.meta.unwrap_or_default();
        let mut page = FlowPage {
            total_pages: meta.total_pages,
            total_results: meta.total_results,
            ..FlowPage::default()
        };
        for item in &result.flows {
            match flow_result(item, self.version) {
                Ok(observed) if filter.matches_locally(&observed.flow) => page.flows.push(observed),
                Ok(_) => {}
                Err(reason) => page.malformed.push(reason),
            }
        }
        Ok(page)
    }

    /// Every page of `Flows.List`, fetched `page_size` at a time (0: all in one call).
    pub async fn list_all(
        &mut self,
        query: &ListQuery,
        filter: &GoldmaneFilter,
        page_size: i64,
    ) -> Result<FlowPage, GoldmaneError> {
        let mut all = FlowPage::default();
        let mut query = ListQuery {
            page: 0,
            page_size,
            ..*query
        };
        loop {
            let page = self.list(&query, filter).await?;
            all.total_pages = page.total_pages;
            all.total_results = page.total_results;
            all.flows.extend(page.flows);
            all.malformed.extend(page.malformed);
            query.page += 1;
            if page_size <= 0 || query.page >= page.total_pages {
                return Ok(all);
            }
        }
    }

    /// `Flows.FilterHints` for `kind`, narrowed by `filter`.
    pub async fn filter_hints(
        &mut self,
        kind: HintType,
        query: &HintQuery,
        filter: &GoldmaneFilter,
    ) -> Result<HintPage, GoldmaneError> {
        let result = match self.version {
            WireVersion::V3_30 => {
                if matches!(kind, HintType::PolicyKind | HintType::PolicyNamespace) {
                    return Err(GoldmaneError::fatal(format!(
                        "filter hints for {kind:?} need Goldmane 3.32 or later"
                    )));
                }
                let request = v3_30::FilterHintsRequest {
                    r#type: kind.number(),
                    filter: filter.to_v3_30().map_err(GoldmaneError::fatal)?,
                    start_time_gte: query.start_time_gte,
                    start_time_lt: query.start_time_lt,
                    page: query.page,
                    page_size: query.page_size,
                };
                self.flows_v3_30().filter_hints(self.timed(request)).await
            }
            WireVersion::V3_32 => {
                let request = v3_32::FilterHintsRequest {
                    r#type: kind.number(),
                    filter: filter.to_v3_32().map_err(GoldmaneError::fatal)?,
                    start_time_gte: query.start_time_gte,
                    start_time_lt: query.start_time_lt,
                    page: query.page,
                    page_size: query.page_size,
                };
                self.flows_v3_32().filter_hints(self.timed(request)).await
            }
        }
        .map_err(|s| status_error(&s))?
        .into_inner();
        let meta = result.meta.unwrap_or_default();
        Ok(HintPage {
            total_pages: meta.total_pages,
            total_results: meta.total_results,
            values: result.hints.into_iter().map(|h| h.value).collect(),
        })
    }

    /// Opens `Flows.Stream` from `start_time_gte` (0: now; negative: relative; positive: absolute).
    pub async fn stream(
        &mut self,
        start_time_gte: i64,
        filter: &GoldmaneFilter,
    ) -> Result<tonic::Streaming<common::FlowResult>, GoldmaneError> {
        let response = match self.version {
            WireVersion::V3_30 => {
                let request = v3_30::FlowStreamRequest {
                    start_time_gte,
                    filter: filter.to_v3_30().map_err(GoldmaneError::fatal)?,
                    aggregation_interval: AGGREGATION_INTERVAL,
                };
                self.flows_v3_30().stream(request).await
            }
            WireVersion::V3_32 => {
                let request = v3_32::FlowStreamRequest {
                    start_time_gte,
                    filter: filter.to_v3_32().map_err(GoldmaneError::fatal)?,
                    aggregation_interval: AGGREGATION_INTERVAL,
                };
                self.flows_v3_32().stream(request).await
            }
        };
        response
            .map(tonic::Response::into_inner)
            .map_err(|s| status_error(&s))
    }
}

async fn connect_channel(config: &GoldmaneConfig) -> Result<Channel, GoldmaneError> {
    let mut endpoint = GrpcEndpoint::from_shared(config.address.clone())
        .map_err(|e| GoldmaneError::fatal(format!("address {:?}: {e}", config.address)))?
        .connect_timeout(config.pacing.connect_timeout)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    match &config.tls {
        Some(settings) => {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(settings.ca.read("CA certificate")?));
            match (&settings.cert, &settings.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(
                        cert.read("client certificate")?,
                        key.read("client key")?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(GoldmaneError::fatal(
                        "a client certificate needs both the certificate and its key",
                    ))
                }
            }
            if let Some(name) = &settings.server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| GoldmaneError::fatal(format!("TLS settings: {}", error_chain(&e))))?;
        }
        None if config.address.starts_with("https:") => {
            return Err(GoldmaneError::fatal(
                "an https address needs TLS settings (CA, client certificate and key)",
            ))
        }
        None => {}
    }
    endpoint.connect().await.map_err(|e| {
        let mut error = transport_error(&e);
        error.message = format!("connecting to {}: {}", config.address, error.message);
        error
    })
}

/// Connects and lists one page (see [`GoldmaneClient::list`]).
pub async fn list(config: &GoldmaneConfig, query: &ListQuery) -> Result<FlowPage, GoldmaneError> {
    GoldmaneClient::connect(config)
        .await?
        .list(query, &config.filter)
        .await
}

/// Connects and lists filter hints (see [`GoldmaneClient::filter_hints`]).
pub async fn filter_hints(
    config: &GoldmaneConfig,
    kind: HintType,
    query: &HintQuery,
) -> Result<HintPage, GoldmaneError> {
    GoldmaneClient::connect(config)
        .await?
        .filter_hints(kind, query, &config.filter)
        .await
}

// ---------------------------------------------------------------------------------------------
// Conversion

/// A `FlowResult` as an observation, or the reason it is malformed.
pub fn flow_result(
    result: &common::FlowResult,
    version: WireVersion,
) -> Result<ObservedFlow, String> {
    let flow = result
        .flow
        .as_ref()
        .ok_or_else(|| format!("flow result {}: no flow", result.id))?;
    observed_flow(flow, version).map_err(|e| format!("flow result {}: {e}", result.id))
}

/// A Goldmane `Flow` as an observation, or the reason it is malformed.
pub fn observed_flow(flow: &common::Flow, version: WireVersion) -> Result<ObservedFlow, String> {
    let key = flow.key.as_ref().ok_or("Key: missing")?;
    let with_prefix = |e: String| format!("Key.{e}");
    let source = endpoint(
        "source",
        &key.source_name,
        &key.source_namespace,
        key.source_type,
        &flow.source_labels,
    )
    .map_err(with_prefix)?;
    let dest = endpoint(
        "dest",
        &key.dest_name,
        &key.dest_namespace,
        key.dest_type,
        &flow.dest_labels,
    )
    .map_err(with_prefix)?;
    let protocol = Protocol::parse(&key.proto)
        .ok_or_else(|| format!("Key.proto: unknown protocol {:?}", key.proto))?;
    let dest_port = match key.dest_port {
        0 => None,
        p => Some(u16::try_from(p).map_err(|_| format!("Key.dest_port: {p} is outside 0-65535"))?),
    };
    let dest_service =
        (!key.dest_service_name.is_empty() && key.dest_service_name != "-").then(|| Service {
            name: key.dest_service_name.clone(),
            namespace: key.dest_service_namespace.clone(),
        });
    let reporter = match key.reporter {
        1 => Reporter::Src,
        2 => Reporter::Dst,
        n => return Err(format!("Key.reporter: {n} is not Src or Dst")),
    };
    let reported_action = match key.action {
        0 => None,
        1 => Some(Verdict::Allow),
        2 => Some(Verdict::Deny),
        3 => return Err("Key.action: a flow's action is Allow or Deny, not Pass".into()),
        n => return Err(format!("Key.action: unknown action {n}")),
    };
    let reported_policies = match &key.policies {
        None => None,
        Some(trace) => Some(PolicyTrace {
            enforced: hits(&trace.enforced_policies, version)
                .map_err(|e| format!("Key.policies.enforced_policies{e}"))?,
            pending: hits(&trace.pending_policies, version)
                .map_err(|e| format!("Key.policies.pending_policies{e}"))?,
        }),
    };
    let count = |name: &str, value: i64| {
        u64::try_from(value).map_err(|_| format!("{name}: negative count {value}"))
    };
    let counters = Counters {
        packets_in: count("packets_in", flow.packets_in)?,
        packets_out: count("packets_out", flow.packets_out)?,
        bytes_in: count("bytes_in", flow.bytes_in)?,
        bytes_out: count("bytes_out", flow.bytes_out)?,
        connections_started: count("num_connections_started", flow.num_connections_started)?,
        connections_completed: count("num_connections_completed", flow.num_connections_completed)?,
        connections_live: count("num_connections_live", flow.num_connections_live)?,
        // Goldmane's protobuf has no absent counter: every record carries them.
        reported: true,
    };
    if flow.end_time != 0 && flow.end_time < flow.start_time {
        return Err(format!(
            "end_time {} is before start_time {}",
            flow.end_time, flow.start_time
        ));
    }
    Ok(ObservedFlow {
        flow: Flow {
            source,
            dest,
            protocol,
            dest_port,
            dest_service,
            reporter,
            reported_action,
            reported_policies,
        },
        start_time: flow.start_time,
        end_time: flow.end_time,
        counters,
    })
}

/// One end of a flow. Proto3 cannot tell an empty label list from a missing one: an empty list is
/// taken as "no labels carried", so that manifests may supply them.
fn endpoint(
    prefix: &str,
    name: &str,
    namespace: &str,
    kind: i32,
    labels: &[String],
) -> Result<Endpoint, String> {
    if name.is_empty() {
        return Err(format!("{prefix}_name: missing"));
    }
    let namespace = (!namespace.is_empty() && namespace != "-").then(|| namespace.into());
    let kind = match kind {
        0 if namespace.is_some() => EndpointType::WorkloadEndpoint,
        0 => EndpointType::Network,
        n => EndpointType::from_number(n.into())
            .ok_or_else(|| format!("{prefix}_type: unknown endpoint type {n}"))?,
    };
    let labels =
        (!labels.is_empty()).then(|| Labels::from_kv_strings(labels.iter().map(String::as_str)));
    Ok(Endpoint {
        kind,
        name: name.into(),
        namespace,
        labels,
        ip: None,
        port: None,
    })
}

fn hits(items: &[common::PolicyHit], version: WireVersion) -> Result<Vec<PolicyHit>, String> {
    let mut hits = items
        .iter()
        .enumerate()
        .map(|(i, h)| {
            hit(h, version)
                .map(normalise_reported_hit)
                .map_err(|e| format!("[{i}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Goldmane's trace is unordered; the index is the order.
    hits.sort_by_key(|h| h.policy_index);
    Ok(hits)
}

fn hit(hit_proto: &common::PolicyHit, version: WireVersion) -> Result<PolicyHit, String> {
    hit_of(hit_proto, version, None)
}

/// A hit, or the trigger of one (`of_hit`: its hit's action): a trigger only names the policy
/// whose tier ended, so an unspecified action (0) takes its hit's.
fn hit_of(
    hit_proto: &common::PolicyHit,
    version: WireVersion,
    of_hit: Option<HitAction>,
) -> Result<PolicyHit, String> {
    let kind = policy_kind(hit_proto.kind, version).ok_or_else(|| {
        format!(
            "unknown policy kind {} for Goldmane {}",
            hit_proto.kind,
            version.as_str()
        )
    })?;
    let action = match (hit_proto.action, of_hit) {
        (1, _) => HitAction::Allow,
        (2, _) => HitAction::Deny,
        (3, _) => HitAction::Pass,
        (0, Some(action)) => action,
        (n, _) => return Err(format!("unknown action {n}")),
    };
    let trigger = match &hit_proto.trigger {
        Some(t) => Some(Box::new(
            hit_of(t, version, Some(action)).map_err(|e| format!("trigger: {e}"))?,
        )),
        None => None,
    };
    Ok(PolicyHit {
        kind,
        name: hit_proto.name.clone(),
        namespace: hit_proto.namespace.clone(),
        tier: hit_proto.tier.clone(),
        action,
        policy_index: hit_proto.policy_index,
        rule_index: hit_proto.rule_index,
        trigger,
    })
}

// ---------------------------------------------------------------------------------------------
// The long-running source

/// A Goldmane flow's identity: its key, as the server encodes it.
fn identity(flow: &common::Flow) -> u128 {
    let key = flow
        .key
        .as_ref()
        .map(Message::encode_to_vec)
        .unwrap_or_default();
    hash128(|h| key.hash(h))
}

/// Goldmane's connections: the version found once, the windows delivered across all of them.
struct GoldmaneSessions<'c> {
    config: &'c GoldmaneConfig,
    version: Option<WireVersion>,
    delivered: Delivered,
}

impl Sessions for GoldmaneSessions<'_> {
    /// One window before the newest seen (re-sent ones are dropped).
    fn resume_from(&self) -> Option<i64> {
        self.delivered.resume_from(AGGREGATION_INTERVAL)
    }

    fn session(
        &mut self,
        start_time_gte: i64,
        events: &mpsc::Sender<SourceEvent>,
    ) -> impl std::future::Future<Output = SessionEnd> + Send {
        session(
            self.config,
            &mut self.version,
            start_time_gte,
            &mut self.delivered,
            events,
        )
    }
}

/// Streams flows until cancelled (`cancel` turns true or its sender is dropped), the consumer
/// goes away, or an error retrying cannot fix (then `State(Failed)` is sent and the error
/// returned). Sends `State(Connecting)`, `State(Connected)`, `State(Reconnecting{..})` on the way.
pub async fn run(
    config: GoldmaneConfig,
    events: mpsc::Sender<SourceEvent>,
    mut cancel: watch::Receiver<bool>,
) -> Result<(), GoldmaneError> {
    let version = config.version.known();
    if events
        .send(SourceEvent::State(ConnectionState::Connecting))
        .await
        .is_err()
    {
        return Ok(());
    }
    let reconnect = Reconnect {
        backoff: config.pacing.backoff,
        since: config.since,
        seed: &config.address,
    };
    let mut sessions = GoldmaneSessions {
        config: &config,
        version,
        delivered: Delivered::default(),
    };
    reconnect_loop(reconnect, &mut sessions, &events, &mut cancel).await
}

/// What the TUI's filter bar completes from.
const HINT_TYPES: [HintType; 6] = [
    HintType::SourceNamespace,
    HintType::DestNamespace,
    HintType::SourceName,
    HintType::DestName,
    HintType::PolicyTier,
    HintType::PolicyName,
];
const HINT_PAGE_SIZE: i64 = 1000;

/// Asks for the values Goldmane knows (over the backfill, else the last hour) and sends them as
/// `Hints`, beside the stream so that flows are not held up. Hints are a help, so a failure is
/// only logged.
fn send_hints(
    mut client: GoldmaneClient,
    since: Option<Duration>,
    events: mpsc::Sender<SourceEvent>,
) {
    tokio::spawn(async move {
        let query = HintQuery {
            start_time_gte: -since.map_or(3600, |s| s.as_secs() as i64),
            page_size: HINT_PAGE_SIZE,
            ..HintQuery::default()
        };
        for kind in HINT_TYPES {
            match client
                .filter_hints(kind, &query, &GoldmaneFilter::default())
                .await
            {
                Ok(page) => {
                    let hints = SourceEvent::Hints {
                        kind,
                        values: page.values,
                    };
                    if events.send(hints).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!(?kind, "Goldmane filter hints: {}", e.message),
            }
        }
    });
}

/// One connection: connect, settle the version, stream until it ends.
async fn session(
    config: &GoldmaneConfig,
    version: &mut Option<WireVersion>,
    start_time_gte: i64,
    delivered: &mut Delivered,
    events: &mpsc::Sender<SourceEvent>,
) -> SessionEnd {
    let connect = async {
        let mut client = GoldmaneClient::connect_speaking(config, *version).await?;
        *version = Some(client.version);
        let stream = client.stream(start_time_gte, &config.filter).await?;
        Ok::<_, GoldmaneError>((client, stream))
    };
    let (client, mut stream) = match connect.await {
        Ok(ok) => ok,
        Err(error) => return SessionEnd::Refused(error),
    };
    let wire = client.version;
    if events
        .send(SourceEvent::State(ConnectionState::Connected))
        .await
        .is_err()
    {
        return SessionEnd::Closed;
    }
    send_hints(client, config.since, events.clone());
    let mut batcher = Batcher::new(events);
    loop {
        let next = tokio::select! {
            next = stream.message() => next,
            _ = batcher.due() => {
                if batcher.flush().await.is_err() {
                    return SessionEnd::Closed;
                }
                continue;
            }
        };
        let result = match next {
            Ok(Some(result)) => result,
            Ok(None) | Err(_) => {
                // Deliver what arrived before the end, then report why it ended.
                if batcher.flush().await.is_err() {
                    return SessionEnd::Closed;
                }
                let error = match next {
                    Err(status) => status_error(&status),
                    _ => GoldmaneError::retryable("Goldmane closed the stream"),
                };
                return SessionEnd::Dropped(error);
            }
        };
        if let Some(flow) = &result.flow {
            if !delivered.first_time(flow.start_time, identity(flow), unix_now()) {
                continue;
            }
        }
        let sent = match flow_result(&result, wire) {
            Ok(observed) if !config.filter.matches_locally(&observed.flow) => continue,
            Ok(observed) => batcher.push(observed).await,
            Err(reason) => batcher.malformed(reason).await,
        };
        if sent.is_err() {
            return SessionEnd::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(source: &str) -> common::FlowKey {
        common::FlowKey {
            source_name: source.into(),
            source_namespace: "shop".into(),
            source_type: common::EndpointType::WorkloadEndpoint as i32,
            dest_name: "pub".into(),
            dest_type: common::EndpointType::Network as i32,
            dest_port: 443,
            proto: "tcp".into(),
            reporter: common::Reporter::Src as i32,
            action: common::Action::Deny as i32,
            ..Default::default()
        }
    }

    #[test]
    fn converts_a_flow_with_an_admin_hit_normalised() {
        let mut k = key("web-*");
        k.policies = Some(common::PolicyTrace {
            enforced_policies: vec![
                common::PolicyHit {
                    kind: 9,
                    name: "kns.shop".into(),
                    action: 1,
                    policy_index: 1,
                    ..Default::default()
                },
                common::PolicyHit {
                    kind: 2,
                    name: "kanp.adminnetworkpolicy.guard".into(),
                    tier: "adminnetworkpolicy".into(),
                    action: 3,
                    policy_index: 0,
                    rule_index: 0,
                    ..Default::default()
                },
            ],
            pending_policies: vec![],
        });
        let flow = common::Flow {
            key: Some(k),
            start_time: 100,
            end_time: 115,
            source_labels: vec!["app=web".into()],
            packets_out: 4,
            num_connections_live: 2,
            ..Default::default()
        };
        let observed = observed_flow(&flow, WireVersion::V3_30).unwrap();
        assert_eq!(observed.flow.source.namespace.as_deref(), Some("shop"));
        assert_eq!(observed.flow.dest.namespace, None);
        assert_eq!(observed.flow.dest.kind, EndpointType::Network);
        assert_eq!(observed.flow.dest_port, Some(443));
        assert_eq!(observed.flow.reported_action, Some(Verdict::Deny));
        assert_eq!(
            observed.flow.source.labels.as_ref().unwrap().get("app"),
            Some("web")
        );
        let hits = &observed.flow.reported_policies.as_ref().unwrap().enforced;
        assert_eq!(hits[0].kind, PolicyKind::AdminNetworkPolicy);
        assert_eq!(hits[0].name, "guard");
        assert_eq!(hits[1].tier, crate::model::PROFILE_TIER);
        assert_eq!(observed.counters.packets_out, 4);
        assert_eq!(observed.counters.connections_live, 2);
        // Kind 7 is reserved in 3.32.
        let mut bad = flow.clone();
        bad.key
            .as_mut()
            .unwrap()
            .policies
            .as_mut()
            .unwrap()
            .enforced_policies[0]
            .kind = 7;
        assert!(observed_flow(&bad, WireVersion::V3_32)
            .unwrap_err()
            .contains("unknown policy kind 7"));
    }

    #[test]
    fn an_end_of_tier_trigger_with_an_unspecified_action_takes_its_hits() {
        let mut k = key("web-*");
        k.policies = Some(common::PolicyTrace {
            enforced_policies: vec![common::PolicyHit {
                kind: 10,
                tier: "security".into(),
                action: 2,
                rule_index: -1,
                trigger: Some(Box::new(common::PolicyHit {
                    kind: 2,
                    name: "security.egress".into(),
                    tier: "security".into(),
                    action: 0,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            pending_policies: vec![],
        });
        let flow = common::Flow {
            key: Some(k),
            ..Default::default()
        };
        let observed = observed_flow(&flow, WireVersion::V3_32).unwrap();
        let hits = &observed.flow.reported_policies.as_ref().unwrap().enforced;
        let trigger = hits[0].trigger.as_deref().unwrap();
        assert_eq!(
            (trigger.name.as_str(), trigger.action),
            ("security.egress", HitAction::Deny)
        );
    }

    #[test]
    fn malformed_flows_say_why() {
        let mut f = common::Flow {
            key: Some(key("a")),
            ..Default::default()
        };
        f.key.as_mut().unwrap().reporter = 5;
        assert!(observed_flow(&f, WireVersion::V3_32)
            .unwrap_err()
            .contains("reporter"));
        f.key = Some(key("a"));
        f.key.as_mut().unwrap().proto = "bogus".into();
        assert!(observed_flow(&f, WireVersion::V3_32)
            .unwrap_err()
            .contains("proto"));
        f.key = None;
        assert!(observed_flow(&f, WireVersion::V3_32)
            .unwrap_err()
            .contains("Key"));
    }

    #[test]
    fn a_flow_is_known_by_its_key_and_resumed_one_window_back() {
        let window = |source: &str, start: i64| common::Flow {
            key: Some(key(source)),
            start_time: start,
            ..Default::default()
        };
        assert_eq!(identity(&window("a", 100)), identity(&window("a", 115)));
        assert_ne!(identity(&window("a", 100)), identity(&window("b", 100)));
        let mut sessions = GoldmaneSessions {
            config: &GoldmaneConfig::new("https://127.0.0.1:1"),
            version: None,
            delivered: Delivered::default(),
        };
        let flow = window("a", 115);
        assert!(sessions
            .delivered
            .first_time(flow.start_time, identity(&flow), 1_000));
        assert_eq!(sessions.resume_from(), Some(100));
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let d1 = backoff.delay(1, 0);
        assert_eq!(d1, Duration::from_millis(50));
        assert!(backoff.delay(1, u64::MAX) <= Duration::from_millis(100));
        assert!(backoff.delay(3, 7) >= Duration::from_millis(200));
        for attempt in 1..64 {
            assert!(backoff.delay(attempt, 12345) <= Duration::from_secs(2));
        }
        assert!(backoff.delay(40, 0) >= Duration::from_secs(1));
    }

    #[test]
    fn filters_per_version() {
        let filter = GoldmaneFilter {
            terms: ServerFilter {
                dest_ports: vec![443],
                actions: vec![Verdict::Deny],
                ..Default::default()
            },
            policies: vec![PolicyFilter {
                kind: Some(PolicyKind::AdminNetworkPolicy),
                name: Some("guard".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let old = filter.to_v3_30().unwrap().unwrap();
        assert_eq!(old.policies[0].name, "kanp.adminnetworkpolicy.guard");
        assert!(filter
            .to_v3_32()
            .unwrap_err()
            .contains("AdminNetworkPolicy"));
        assert_eq!(GoldmaneFilter::default().to_v3_32().unwrap(), None);
    }
}
