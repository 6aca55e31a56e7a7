//! Calico Whisker's backend over HTTP (OSS ≥ 3.30): `GET /flows?watch=true` (Server-Sent Events,
//! live, with backfill) and `GET /flows` (history), reached directly, through a port-forward to
//! `calico-system/whisker:8081` (plain HTTP in 3.30–3.32) or behind Whisker's nginx under
//! `/whisker-backend`.
//!
//! Whisker relays Goldmane: every event is one 15 s aggregation window of one flow key, as a
//! `FlowResponse` JSON object, decoded by [`FlowDecoder`] exactly like a flow-log file.
//!
//! [`run`] is the long-running source: it streams, batches, reconnects with capped exponential
//! backoff and jitter, resumes from the newest window it saw and drops the windows Whisker re-sends
//! (keyed by the decoded flow and its window start), so every window is delivered once. Events
//! that cannot be decoded are reported as [`SourceEvent::Malformed`] and skipped; a request the
//! server refuses (HTTP 4xx, e.g. a filter it cannot parse) ends the source with
//! [`ConnectionState::Failed`] carrying the server's `{"error": …}` text.

use crate::model::time::unix_now;
use crate::source::batch::Batcher;
pub use crate::source::retry::SourceError;
use crate::source::retry::{hash128, reconnect_loop, Delivered, Reconnect, SessionEnd, Sessions};
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::flows::FlowDecoder;
use crate::model::{HitAction, ObservedFlow, PolicyKind, Reporter, Verdict};
use crate::source::goldmane::Pem;
use crate::source::{ConnectionState, SourceEvent};

pub use crate::source::goldmane::{Backoff, FlowPage, Pacing, AGGREGATION_INTERVAL};
pub use crate::source::server_filter::{Match, ServerFilter};

/// The flows endpoint, relative to the backend's base URL.
pub const FLOWS_PATH: &str = "/flows";

/// A policy match as Whisker's `filters.policies[]`: tier, name and namespace are string matches
/// (exact or fuzzy); `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhiskerPolicyFilter {
    pub kind: Option<PolicyKind>,
    pub tier: Option<Match>,
    pub namespace: Option<Match>,
    pub name: Option<Match>,
    pub action: Option<HitAction>,
}

/// Flow filters, pushed to the server as Whisker's `filters` JSON. Each list is OR-ed, different
/// lists are AND-ed (Goldmane's semantics). Values are sent as given: the backend itself treats
/// namespace `Global` as Calico's `-` and the names `PUBLIC NETWORK`/`PRIVATE NETWORK` as
/// `pub`/`pvt`, so either spelling works.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhiskerFilter {
    pub terms: ServerFilter,
    /// 3.32+ backends only (older ones ignore it).
    pub pending_actions: Vec<Verdict>,
    /// 3.32+ backends only (older ones ignore it).
    pub reporter: Option<Reporter>,
    pub policies: Vec<WhiskerPolicyFilter>,
}

fn match_json(m: &Match) -> Value {
    json!({"value": m.value, "type": if m.fuzzy { "Fuzzy" } else { "Exact" }})
}

fn verdict_names(verdicts: &[Verdict]) -> Vec<Value> {
    verdicts
        .iter()
        .filter(|v| **v != Verdict::Unknown)
        .map(|v| Value::from(v.as_str()))
        .collect()
}

impl WhiskerFilter {
    /// The `filters` JSON, with enum values as their proto names (`"Deny"`,
    /// `"CalicoNetworkPolicy"`, `"Exact"`); `None` when the filter is empty.
    pub fn to_json(&self) -> Option<Value> {
        let mut object = Map::new();
        let mut put = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                object.insert(name.to_string(), Value::Array(items));
            }
        };
        let matches = |items: &[Match]| items.iter().map(match_json).collect::<Vec<_>>();
        put("source_names", matches(&self.terms.source_names));
        put("source_namespaces", matches(&self.terms.source_namespaces));
        put("dest_names", matches(&self.terms.dest_names));
        put("dest_namespaces", matches(&self.terms.dest_namespaces));
        put("protocols", matches(&self.terms.protocols));
        put(
            "dest_ports",
            self.terms
                .dest_ports
                .iter()
                .map(|p| json!({"value": p, "type": "Exact"}))
                .collect(),
        );
        put("actions", verdict_names(&self.terms.actions));
        put("pending_actions", verdict_names(&self.pending_actions));
        put(
            "policies",
            self.policies
                .iter()
                .map(|p| {
                    let mut policy = Map::new();
                    if let Some(kind) = p.kind {
                        policy.insert("kind".into(), kind.as_str().into());
                    }
                    for (name, value) in [("tier", &p.tier), ("name", &p.name)]
                        .into_iter()
                        .chain([("namespace", &p.namespace)])
                    {
                        if let Some(m) = value {
                            policy.insert(name.into(), match_json(m));
                        }
                    }
                    if let Some(action) = p.action {
                        policy.insert("action".into(), action.as_str().into());
                    }
                    Value::Object(policy)
                })
                .collect(),
        );
        if let Some(reporter) = self.reporter {
            object.insert("reporter".into(), reporter.as_str().into());
        }
        (!object.is_empty()).then_some(Value::Object(object))
    }
}

/// How to reach Whisker's backend and what to ask it for.
#[derive(Debug, Clone, PartialEq)]
pub struct WhiskerConfig {
    /// `http://127.0.0.1:8081` (port-forwarded `whisker` service; the `/whisker-backend` prefix is
    /// added when the URL has no path), `http://127.0.0.1:8081/whisker-backend`, or the backend
    /// itself (`http://127.0.0.1:3002/`, a path of `/` means "no prefix"). `https://` needs `trust`.
    pub url: String,
    /// Backfill: stream (and list) flows that started this long ago; `None` streams from now and
    /// lists everything the server holds.
    pub since: Option<Duration>,
    pub filter: WhiskerFilter,
    pub pacing: Pacing,
    /// An open stream silent this long is taken for dead (a port-forward gone) and reconnected;
    /// a reconnect is cheap and de-duplicated, so a quiet cluster loses nothing.
    pub idle_timeout: Duration,
    /// How an `https://` Whisker's certificate is checked.
    pub trust: Option<WhiskerTrust>,
}

/// How an `https://` Whisker's certificate is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum WhiskerTrust {
    /// Against this CA, as `server_name` (else the URL's host).
    Ca {
        ca: Pem,
        server_name: Option<String>,
    },
    /// Not at all, which the user is told: Whisker 3.33's self-signed certificate, reached
    /// through the API server's port-forward, which authenticates the pod it reaches.
    Unverified,
}

impl WhiskerConfig {
    pub fn new(url: impl Into<String>) -> WhiskerConfig {
        WhiskerConfig {
            url: url.into(),
            since: None,
            filter: WhiskerFilter::default(),
            pacing: Pacing::default(),
            idle_timeout: Duration::from_secs(30),
            trust: None,
        }
    }
}

/// A Whisker error, and whether retrying can fix it.
pub type WhiskerError = SourceError;

/// A parsed base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// Path prefix without a trailing slash (`""` or `/whisker-backend`).
    prefix: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, WhiskerError> {
        let bad = |why: &str| WhiskerError::fatal(format!("Whisker URL {url:?}: {why}"));
        let uri: Uri = url.trim().parse().map_err(|e| bad(&format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad(&format!("unsupported scheme {other:?}"))),
            None => return Err(bad("expected http://host:port")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(bad("a query is not expected; use the filter options"));
        }
        // The authority alone means the UI's port: the backend is behind `/whisker-backend`.
        let written_path = url.trim().splitn(4, '/').nth(3).is_some();
        let prefix = if written_path {
            uri.path().trim_end_matches('/').to_string()
        } else {
            "/whisker-backend".to_string()
        };
        let prefix = prefix
            .strip_suffix(FLOWS_PATH)
            .map(str::to_string)
            .unwrap_or(prefix);
        Ok(Target {
            tls,
            host,
            port,
            prefix,
        })
    }

    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The request path and query of `/flows`.
fn flows_path(target: &Target, watch: bool, start_time_gte: i64, filter: &WhiskerFilter) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    if watch {
        params.push(("watch", "true".into()));
    }
    if start_time_gte != 0 {
        params.push(("startTimeGte", start_time_gte.to_string()));
    }
    if let Some(filters) = filter.to_json() {
        params.push(("filters", filters.to_string()));
    }
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    let path = format!("{}{FLOWS_PATH}", target.prefix);
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

fn relative_seconds(since: Duration) -> i64 {
    -(i64::try_from(since.as_secs()).unwrap_or(i64::MAX).max(1))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TLS connector as `trust` says, and the name to ask the server for.
fn tls_connector(
    trust: Option<&WhiskerTrust>,
    host: &str,
) -> Result<(tokio_rustls::TlsConnector, String), WhiskerError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::{crypto, ClientConfig, RootCertStore};
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| WhiskerError::fatal(format!("TLS: {e}")))?;
    let (tls, name) =
        match trust {
            None => return Err(WhiskerError::fatal(
                "an https:// Whisker URL needs the CA that signed its certificate (--whisker-ca)",
            )),
            Some(WhiskerTrust::Ca { ca, server_name }) => {
                let pem = ca.read("Whisker's CA")?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| WhiskerError::fatal(format!("{ca:?}: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| WhiskerError::fatal(format!("{ca:?}: {e}")))?;
                }
                let name = server_name.clone().unwrap_or(host.to_string());
                (builder.with_root_certificates(roots), name)
            }
            Some(WhiskerTrust::Unverified) => {
                let verifier = Arc::new(unverified::AnyCertificate(provider));
                let config = builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier);
                (config, host.to_string())
            }
        };
    let tls = tls.with_no_client_auth();
    Ok((tokio_rustls::TlsConnector::from(Arc::new(tls)), name))
}

/// A certificate verifier that takes any certificate, but still checks that the server holds its
/// key (the handshake's signatures): for Whisker's self-signed certificate behind a port-forward.
mod unverified {
    use std::sync::Arc;

    use tokio_rustls::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use tokio_rustls::rustls::crypto::CryptoProvider;
    use tokio_rustls::rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use tokio_rustls::rustls::{DigitallySignedStruct, Error, SignatureScheme};

    #[derive(Debug)]
    pub struct AnyCertificate(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// Whether Whisker at `url` presents a certificate `trust` verifies: one TLS handshake, no
/// request. The error says why not.
pub async fn check_certificate(url: &str, trust: &WhiskerTrust) -> Result<(), String> {
    let target = Target::parse(url).map_err(|e| e.to_string())?;
    let (connector, name) = tls_connector(Some(trust), &target.host).map_err(|e| e.to_string())?;
    let name =
        tokio_rustls::rustls::pki_types::ServerName::try_from(name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| e.to_string())?;
    let handshake = connector.connect(name, tcp);
    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no TLS handshake within 10s".into()),
    }
}

/// Sends one GET and returns the response once its headers arrived; a refused request (4xx) is a
/// fatal error with the server's `{"error": …}` text, 5xx a retryable one.
async fn get(
    config: &WhiskerConfig,
    target: &Target,
    path: &str,
    accept: &str,
) -> Result<Response<Incoming>, WhiskerError> {
    let connect = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| {
                WhiskerError::retryable(format!(
                    "connecting to {}:{}: {e}",
                    target.host, target.port
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if target.tls {
            use tokio_rustls::rustls::pki_types::ServerName;
            let (connector, name) = tls_connector(config.trust.as_ref(), &target.host)?;
            let name = ServerName::try_from(name.clone())
                .map_err(|_| WhiskerError::fatal(format!("invalid server name {name:?}")))?;
            let stream = connector.connect(name, tcp).await.map_err(|e| {
                let text = e.to_string();
                if text.contains("certificate") || text.contains("alert") {
                    WhiskerError::fatal(format!("TLS refused: {text}"))
                } else {
                    WhiskerError::retryable(format!("TLS: {text}"))
                }
            })?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| WhiskerError::retryable(format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            // Errors surface through the response body.
            let _ = connection.await;
        });
        let request = Request::get(path)
            .header(hyper::header::HOST, target.authority())
            .header(hyper::header::ACCEPT, accept)
            .header(hyper::header::USER_AGENT, "flowtrace")
            .body(Empty::<Bytes>::new())
            .map_err(|e| WhiskerError::fatal(format!("request {path}: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| WhiskerError::retryable(format!("GET {path}: {e}")))
    };
    let response = tokio::time::timeout(config.pacing.connect_timeout, connect)
        .await
        .map_err(|_| {
            WhiskerError::retryable(format!(
                "no answer from {}:{} within {:?}",
                target.host, target.port, config.pacing.connect_timeout
            ))
        })??;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = tokio::time::timeout(
        config.pacing.connect_timeout,
        read_body(response.into_body()),
    )
    .await
    .unwrap_or_else(|_| Err("timed out reading the error body".into()))
    .unwrap_or_default();
    Err(status_error(status, path, &body))
}

/// Reads a whole body (at most 256 MiB).
async fn read_body(mut body: Incoming) -> Result<Vec<u8>, String> {
    const LIMIT: usize = 256 << 20;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > LIMIT {
                return Err(format!("response larger than {LIMIT} bytes"));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

/// The error an HTTP status means, with the server's `{"error": …}` text when it sent one.
fn status_error(status: StatusCode, path: &str, body: &[u8]) -> WhiskerError {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(300).collect()
        });
    let mut message = format!("Whisker answered {status} to GET {path}");
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(&text);
    }
    let retryable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    WhiskerError {
        message,
        fatal: !retryable,
    }
}

/// The `watch=false` envelope.
#[derive(serde::Deserialize)]
struct ListEnvelope<'a> {
    #[serde(default)]
    total: Option<ListTotal>,
    #[serde(default, borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(serde::Deserialize)]
struct ListTotal {
    #[serde(default, rename = "totalPages", alias = "total_pages")]
    total_pages: i64,
}

/// Decodes a `FlowResponse` JSON text.
fn observe(decoder: &mut FlowDecoder, text: &str) -> Result<ObservedFlow, String> {
    decoder.decode(text).map(|record| record.into_observed())
}

/// The history (`GET /flows?startTimeGte=-since&filters=…`). `total_results` is the number of
/// items returned (Whisker reports only the page count); `malformed` has the reasons for the items
/// that could not be decoded.
pub async fn list(config: &WhiskerConfig) -> Result<FlowPage, WhiskerError> {
    let target = Target::parse(&config.url)?;
    let start = config.since.map(relative_seconds).unwrap_or(0);
    let path = flows_path(&target, false, start, &config.filter);
    let request = async {
        let response = get(config, &target, &path, "application/json").await?;
        read_body(response.into_body())
            .await
            .map_err(|e| WhiskerError::retryable(format!("GET {path}: {e}")))
    };
    let body = tokio::time::timeout(config.pacing.request_timeout, request)
        .await
        .map_err(|_| {
            WhiskerError::retryable(format!(
                "GET {path}: no complete answer within {:?}",
                config.pacing.request_timeout
            ))
        })??;
    let envelope: ListEnvelope = serde_json::from_slice(&body).map_err(|e| {
        WhiskerError::fatal(format!(
            "GET {path}: not a Whisker flow list ({e}): {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    })?;
    let mut decoder = FlowDecoder::new();
    let mut page = FlowPage {
        total_pages: envelope.total.map(|t| t.total_pages).unwrap_or(0),
        ..FlowPage::default()
    };
    for (i, item) in envelope.items.unwrap_or_default().into_iter().enumerate() {
        match observe(&mut decoder, item.get()) {
            Ok(flow) => page.flows.push(flow),
            Err(reason) => page.malformed.push(format!("item {i}: {reason}")),
        }
    }
    page.total_results = page.flows.len() as i64 + page.malformed.len() as i64;
    Ok(page)
}

/// One Server-Sent Event, as Whisker writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SseEvent {
    /// `data:` lines, joined by `\n`.
    Data(String),
    /// Whisker's `error: <msg>` line.
    Error(String),
    /// An event that cannot be read (larger than the limit, or with a line that is not UTF-8),
    /// and why: one bad record, as a file's line is.
    Unreadable(String),
}

/// An incremental Server-Sent Events parser: lines end with LF, CRLF or CR (also split across
/// reads); `:` lines are comments; a blank line ends an event; `event`, `id` and `retry` fields
/// are ignored.
#[derive(Debug, Default)]
struct SseParser {
    line: Vec<u8>,
    /// The last chunk ended with CR: a leading LF of the next one belongs to it.
    after_cr: bool,
    data: Option<String>,
    error: Option<String>,
    /// Bytes of an over-long line being skipped.
    discarding: Option<usize>,
    /// Why the event in progress is not text, when one of its lines is not UTF-8.
    not_text: Option<String>,
}

const MAX_EVENT: usize = 16 << 20;

impl SseParser {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut bytes = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = bytes.split_at(end);
            self.take(head);
            let mut rest = &tail[1..];
            if tail[0] == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
            self.line_ended(out);
            bytes = rest;
        }
        self.take(bytes);
    }

    fn take(&mut self, bytes: &[u8]) {
        if let Some(skipped) = &mut self.discarding {
            *skipped += bytes.len();
        } else if self.line.len() + bytes.len() > MAX_EVENT {
            self.discarding = Some(self.line.len() + bytes.len());
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn line_ended(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(skipped) = self.discarding.take() {
            self.data = None;
            out.push(SseEvent::Unreadable(format!(
                "event of {skipped} bytes exceeds {MAX_EVENT}"
            )));
            return;
        }
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if let Some(reason) = self.not_text.take() {
                self.data = None;
                self.error = None;
                out.push(SseEvent::Unreadable(reason));
            } else if let Some(error) = self.error.take() {
                self.data = None;
                out.push(SseEvent::Error(error));
            } else if let Some(data) = self.data.take() {
                out.push(SseEvent::Data(data));
            }
            return;
        }
        let line = match String::from_utf8(line) {
            Ok(line) => line,
            Err(e) => {
                let at = e.utf8_error().valid_up_to() + 1;
                self.not_text.get_or_insert(format!(
                    "an event with a byte that is not UTF-8 (byte {at} of a line)"
                ));
                return;
            }
        };
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "error" => self.error = Some(value.to_string()),
            _ => {}
        }
    }

    /// The event in progress when the stream ended without its blank line.
    fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() || self.discarding.is_some() {
            self.line_ended(out);
        }
        self.line_ended(out);
    }
}

/// Malformed events remembered (so re-sent ones are not counted twice).
const MALFORMED_MEMORY: usize = 10_000;

/// What Whisker's connections delivered: flows by window (`retry::Delivered`), and the malformed
/// events already reported.
#[derive(Debug, Default)]
struct Seen {
    windows: Delivered,
    malformed: HashSet<u128>,
}

impl Seen {
    /// The flow key (the decoded flow without its labels, which are not part of Goldmane's key).
    fn identity(observed: &ObservedFlow) -> u128 {
        let mut flow = observed.flow.clone();
        flow.source.labels = None;
        flow.dest.labels = None;
        let key = format!("{flow:?}");
        hash128(|h| key.hash(h))
    }

    /// Records the window; false when it was delivered before.
    fn first_time(&mut self, observed: &ObservedFlow, now: i64) -> bool {
        self.windows
            .first_time(observed.start_time, Self::identity(observed), now)
    }

    /// A malformed event's text; false when it was reported before.
    fn first_malformed(&mut self, text: &str) -> bool {
        if self.malformed.len() >= MALFORMED_MEMORY {
            self.malformed.clear();
        }
        self.malformed.insert(hash128(|h| text.hash(h)))
    }
}

/// Whisker's connections, with the windows delivered across all of them.
struct WhiskerSessions<'c> {
    config: &'c WhiskerConfig,
    target: &'c Target,
    delivered: Seen,
}

impl Sessions for WhiskerSessions<'_> {
    /// The newest window seen: its re-sent copies are dropped, and other keys of the same window
    /// that a drop cut off arrive.
    fn resume_from(&self) -> Option<i64> {
        self.delivered.windows.resume_from(0)
    }

    fn session(
        &mut self,
        start_time_gte: i64,
        events: &mpsc::Sender<SourceEvent>,
    ) -> impl std::future::Future<Output = SessionEnd> + Send {
        session(
            self.config,
            self.target,
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
    config: WhiskerConfig,
    events: mpsc::Sender<SourceEvent>,
    mut cancel: watch::Receiver<bool>,
) -> Result<(), WhiskerError> {
    if events
        .send(SourceEvent::State(ConnectionState::Connecting))
        .await
        .is_err()
    {
        return Ok(());
    }
    let target = match Target::parse(&config.url) {
        Ok(target) => target,
        Err(error) => {
            let _ = events
                .send(SourceEvent::State(ConnectionState::Failed(
                    error.message.clone(),
                )))
                .await;
            return Err(error);
        }
    };
    let reconnect = Reconnect {
        backoff: config.pacing.backoff,
        since: config.since,
        seed: &config.url,
    };
    let mut sessions = WhiskerSessions {
        config: &config,
        target: &target,
        delivered: Seen::default(),
    };
    reconnect_loop(reconnect, &mut sessions, &events, &mut cancel).await
}

/// One connection: request the stream, parse events until it ends.
async fn session(
    config: &WhiskerConfig,
    target: &Target,
    start_time_gte: i64,
    delivered: &mut Seen,
    events: &mpsc::Sender<SourceEvent>,
) -> SessionEnd {
    let path = flows_path(target, true, start_time_gte, &config.filter);
    let response = match get(config, target, &path, "text/event-stream").await {
        Ok(response) => response,
        Err(error) => return SessionEnd::Refused(error),
    };
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.is_empty() && !content_type.contains("event-stream") {
        return SessionEnd::Refused(WhiskerError::fatal(format!(
            "GET {path}: expected an event stream, got {content_type} (is this Whisker's backend?)"
        )));
    }
    if events
        .send(SourceEvent::State(ConnectionState::Connected))
        .await
        .is_err()
    {
        return SessionEnd::Closed;
    }
    let mut body = response.into_body();
    let mut parser = SseParser::default();
    let mut decoder = FlowDecoder::new();
    let mut parsed: Vec<SseEvent> = Vec::new();
    let mut batcher = Batcher::new(events);
    let mut silent_until = tokio::time::Instant::now() + config.idle_timeout;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => {
                silent_until = tokio::time::Instant::now() + config.idle_timeout;
                frame
            }
            _ = tokio::time::sleep_until(silent_until) => {
                if batcher.flush().await.is_err() {
                    return SessionEnd::Closed;
                }
                return SessionEnd::Dropped(WhiskerError::retryable(format!(
                    "no data from Whisker for {} s: reconnecting",
                    config.idle_timeout.as_secs()
                )));
            }
            _ = batcher.due() => {
                if batcher.flush().await.is_err() {
                    return SessionEnd::Closed;
                }
                continue;
            }
        };
        let mut ended = None;
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    parser.push(data, &mut parsed);
                }
            }
            Some(Err(error)) => {
                ended = Some(WhiskerError::retryable(format!(
                    "Whisker stream broke: {error}"
                )));
            }
            None => {
                parser.finish(&mut parsed);
                ended = Some(WhiskerError::retryable("Whisker closed the stream"));
            }
        }
        for event in parsed.drain(..) {
            let text = match event {
                SseEvent::Data(text) => text,
                SseEvent::Error(message) => {
                    ended = Some(WhiskerError::retryable(format!("Whisker: {message}")));
                    break;
                }
                SseEvent::Unreadable(reason) => {
                    if batcher.malformed(reason).await.is_err() {
                        return SessionEnd::Closed;
                    }
                    continue;
                }
            };
            let sent = match observe(&mut decoder, &text) {
                Ok(observed) if !delivered.first_time(&observed, unix_now()) => continue,
                Ok(observed) => batcher.push(observed).await,
                Err(_) if !delivered.first_malformed(&text) => continue,
                Err(reason) => {
                    let shown: String = text.chars().take(200).collect();
                    batcher
                        .malformed(format!("{reason} in event {shown}"))
                        .await
                }
            };
            if sent.is_err() {
                return SessionEnd::Closed;
            }
        }
        if let Some(error) = ended {
            // Deliver what arrived before the end, then report why it ended.
            if batcher.flush().await.is_err() {
                return SessionEnd::Closed;
            }
            return SessionEnd::Dropped(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes(), &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn an_event_that_is_not_utf8_is_one_bad_record_as_a_files_line_is() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        parser.push(b"data: {\"a\":\"\xff\"}\n\ndata: {\"b\":1}\n\n", &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            matches!(&out[0], SseEvent::Unreadable(reason) if reason.contains("not UTF-8")),
            "{out:?}"
        );
        assert!(
            matches!(&out[1], SseEvent::Data(text) if text == "{\"b\":1}"),
            "{out:?}"
        );
    }

    #[test]
    fn sse_events_split_across_reads_with_any_line_end() {
        let got = events(&[
            ": hello\n\ndata: {\"a\"",
            ":1}\r",
            "\n\r\ndata:{\"b\":2}\r\rdata: x\n",
            "data: y\n\nevent: message\nid: 7\ndata: z\n\n",
            "error: goldmane unavailable\n\n",
            "data: unterminated",
        ]);
        assert_eq!(
            got,
            vec![
                SseEvent::Data("{\"a\":1}".into()),
                SseEvent::Data("{\"b\":2}".into()),
                SseEvent::Data("x\ny".into()),
                SseEvent::Data("z".into()),
                SseEvent::Error("goldmane unavailable".into()),
                SseEvent::Data("unterminated".into()),
            ]
        );
    }

    #[test]
    fn urls_and_prefixes() {
        let t = Target::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!(
            (t.tls, t.port, t.prefix.as_str()),
            (false, 8081, "/whisker-backend")
        );
        let t = Target::parse("http://127.0.0.1:8081/whisker-backend/").unwrap();
        assert_eq!(t.prefix, "/whisker-backend");
        let t = Target::parse("http://localhost:3002/").unwrap();
        assert_eq!(t.prefix, "");
        let t = Target::parse("http://localhost:3002/flows").unwrap();
        assert_eq!(t.prefix, "");
        let t = Target::parse("https://[::1]/x").unwrap();
        assert_eq!((t.tls, t.port, t.authority()), (true, 443, "[::1]".into()));
        assert!(Target::parse("ftp://x").unwrap_err().fatal);
        assert!(Target::parse("127.0.0.1:8081").is_err());
    }

    #[test]
    fn filters_as_whisker_json() {
        assert_eq!(WhiskerFilter::default().to_json(), None);
        let filter = WhiskerFilter {
            terms: ServerFilter {
                source_names: vec![Match::fuzzy("web")],
                dest_namespaces: vec![Match::exact("payments")],
                protocols: vec![Match::exact("tcp")],
                dest_ports: vec![8080],
                actions: vec![Verdict::Deny, Verdict::Unknown],
                ..Default::default()
            },
            reporter: Some(Reporter::Dst),
            policies: vec![WhiskerPolicyFilter {
                kind: Some(PolicyKind::CalicoNetworkPolicy),
                tier: Some(Match::exact("default")),
                name: Some(Match::fuzzy("allow")),
                action: Some(HitAction::Pass),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            filter.to_json().unwrap(),
            json!({
                "source_names": [{"value": "web", "type": "Fuzzy"}],
                "dest_namespaces": [{"value": "payments", "type": "Exact"}],
                "protocols": [{"value": "tcp", "type": "Exact"}],
                "dest_ports": [{"value": 8080, "type": "Exact"}],
                "actions": ["Deny"],
                "reporter": "Dst",
                "policies": [{
                    "kind": "CalicoNetworkPolicy",
                    "tier": {"value": "default", "type": "Exact"},
                    "name": {"value": "allow", "type": "Fuzzy"},
                    "action": "Pass"
                }]
            })
        );
        let target = Target::parse("http://h:1/").unwrap();
        assert_eq!(
            flows_path(&target, true, -60, &WhiskerFilter::default()),
            "/flows?watch=true&startTimeGte=-60"
        );
        let path = flows_path(&target, false, 0, &filter);
        assert!(path.starts_with("/flows?filters=%7B%22"), "{path}");
        assert_eq!(encode_component("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn errors_carry_the_servers_text() {
        let e = status_error(
            StatusCode::BAD_REQUEST,
            "/flows",
            br#"{"error":"invalid filters"}"#,
        );
        assert!(e.fatal);
        assert!(e.message.contains("invalid filters"), "{}", e.message);
        let e = status_error(StatusCode::BAD_GATEWAY, "/flows", b"<html>nginx</html>");
        assert!(!e.fatal);
        assert!(e.message.contains("nginx"));
    }

    fn window(source: &str, start: i64) -> ObservedFlow {
        let line = format!(
            r#"{{"start_time":{start},"end_time":{},"action":"Allow","source_name":"{source}","source_namespace":"a","source_labels":"app={start}","dest_name":"d","dest_namespace":"b","dest_labels":"","protocol":"tcp","dest_port":80,"reporter":"Src","policies":{{"enforced":[],"pending":[]}},"packets_in":1,"packets_out":1,"bytes_in":1,"bytes_out":1}}"#,
            start + 15
        );
        observe(&mut FlowDecoder::new(), &line).unwrap()
    }

    #[test]
    fn re_sent_windows_are_dropped_and_the_newest_is_the_resume_point() {
        let mut seen = Seen::default();
        let now = 1_000;
        assert!(seen.first_time(&window("a", 100), now));
        assert!(seen.first_time(&window("b", 100), now));
        assert!(seen.first_time(&window("a", 115), now));
        assert!(!seen.first_time(&window("a", 100), now));
        assert!(!seen.first_time(&window("a", 115), now));
        assert_eq!(seen.windows.resume_from(0), Some(115));
        assert!(seen.first_malformed("x"));
        assert!(!seen.first_malformed("x"));
    }
}
