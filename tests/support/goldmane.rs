//! A fake Goldmane for tests: `goldmane.Flows` (List, Stream, FilterHints) over tonic with mutual
//! TLS, speaking either wire version, listening on 127.0.0.1 only.
//!
//! It keeps a list of flow windows (each `Flow` is one 15 s window of one key). `Stream` sends the
//! stored windows whose start is at or after the request's `start_time_gte` (relative times are
//! resolved against the real clock; 0 means "from now on"), then every window pushed later — so a
//! client that reconnects from an earlier window gets windows it already has, as from Goldmane.
//! `drop_streams_after` makes the next streams fail after a number of messages.

#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use super::goldmane_server::v3_30::flows_server::FlowsServer as FlowsServer30;
use super::goldmane_server::v3_32::flows_server::FlowsServer as FlowsServer32;
use flowtrace::source::goldmane::proto::{common, v3_30, v3_32};
use flowtrace::source::goldmane::{Pem, TlsSettings, WireVersion};
use tokio::sync::{mpsc, oneshot, Notify};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// Test PKI: a CA, a server certificate for `goldmane`, a client certificate, all PEM.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tigera-operator-signer");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["goldmane".into(), "goldmane.calico-system.svc".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["calico-node".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let pki = Pki {
            ca: ca_cert.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("ca.crt"), &pki.ca).unwrap();
        std::fs::write(pki.path("tls.crt"), &pki.client_cert).unwrap();
        std::fs::write(pki.path("tls.key"), &pki.client_key).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Client files with the client certificate, verifying the server as `goldmane`.
    pub fn client_files(&self) -> TlsSettings {
        TlsSettings {
            cert: Some(Pem::File(self.path("tls.crt"))),
            key: Some(Pem::File(self.path("tls.key"))),
            ca: Pem::File(self.path("ca.crt")),
            server_name: Some("goldmane".into()),
        }
    }

    /// Client files without a client certificate.
    pub fn files_without_client_cert(&self) -> TlsSettings {
        TlsSettings {
            cert: None,
            key: None,
            ..self.client_files()
        }
    }
}

/// A request's filter as the server decoded it.
#[derive(Debug, Clone, PartialEq)]
pub enum SeenFilter {
    V3_30(Option<v3_30::Filter>),
    V3_32(Option<v3_32::Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeenStream {
    pub start_time_gte: i64,
    pub filter: SeenFilter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeenList {
    pub start_time_gte: i64,
    pub start_time_lt: i64,
    pub page: i64,
    pub page_size: i64,
    pub filter: SeenFilter,
}

#[derive(Default)]
struct State {
    /// Stored windows with their ids.
    flows: Vec<common::FlowResult>,
    drops: VecDeque<usize>,
    streams: Vec<SeenStream>,
    lists: Vec<SeenList>,
    hints: Vec<i32>,
}

struct Shared {
    version: WireVersion,
    state: Mutex<State>,
    pushed: Notify,
}

/// A running fake; stops when dropped.
pub struct FakeGoldmane {
    pub addr: SocketAddr,
    pub pki: Pki,
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A valid window of `source → dest:port` starting at `start`.
pub fn window(source: &str, dest_ns: &str, port: i64, start: i64) -> common::Flow {
    common::Flow {
        key: Some(common::FlowKey {
            source_name: source.into(),
            source_namespace: "shop".into(),
            source_type: common::EndpointType::WorkloadEndpoint as i32,
            dest_name: "api-*".into(),
            dest_namespace: dest_ns.into(),
            dest_type: common::EndpointType::WorkloadEndpoint as i32,
            dest_port: port,
            proto: "tcp".into(),
            reporter: common::Reporter::Dst as i32,
            action: common::Action::Allow as i32,
            policies: Some(common::PolicyTrace {
                enforced_policies: vec![common::PolicyHit {
                    kind: 6,
                    namespace: dest_ns.into(),
                    name: "allow-shop".into(),
                    tier: "default".into(),
                    action: common::Action::Allow as i32,
                    policy_index: 0,
                    rule_index: 0,
                    trigger: None,
                }],
                pending_policies: vec![],
            }),
            ..Default::default()
        }),
        start_time: start,
        end_time: start + 15,
        source_labels: vec!["app=web".into(), "tier=frontend".into()],
        dest_labels: vec!["app=api".into()],
        packets_in: 10,
        packets_out: 12,
        bytes_in: 1000,
        bytes_out: 1200,
        num_connections_started: 1,
        num_connections_completed: 1,
        num_connections_live: 0,
    }
}

/// A window of `shop/web-*` → the Service `payments/api` on 8080, reported by the source, as
/// Goldmane keeps a flow to a Service.
pub fn service_window(start: i64) -> common::Flow {
    let mut flow = window("web-*", "payments", 8080, start);
    let key = flow.key.as_mut().expect("a window has a key");
    key.reporter = common::Reporter::Src as i32;
    key.dest_service_name = "api".into();
    key.dest_service_namespace = "payments".into();
    key.dest_service_port = 8080;
    flow
}

/// A policy that allows `shop`'s egress to the Service `payments/api`, by the Service.
pub const SERVICE_POLICY: &str = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: to-the-api-service
  namespace: shop
spec:
  selector: all()
  types: [Egress]
  egress:
    - action: Allow
      destination:
        services:
          name: api
          namespace: payments
";

impl FakeGoldmane {
    /// Starts a fake speaking `version` on 127.0.0.1 with a fresh PKI, holding `flows`.
    pub async fn start(version: WireVersion, flows: Vec<common::Flow>) -> FakeGoldmane {
        let pki = Pki::new();
        let shared = Arc::new(Shared {
            version,
            state: Mutex::new(State::default()),
            pushed: Notify::new(),
        });
        for flow in flows {
            push_into(&shared, flow);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.server_cert, &pki.server_key))
            .client_ca_root(Certificate::from_pem(&pki.ca));
        let (shutdown, stop) = oneshot::channel::<()>();
        let mut server = Server::builder().tls_config(tls).unwrap();
        let router = match version {
            WireVersion::V3_30 => {
                server.add_service(FlowsServer30::new(FlowsV3_30(shared.clone())))
            }
            WireVersion::V3_32 => {
                server.add_service(FlowsServer32::new(FlowsV3_32(shared.clone())))
            }
        };
        tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(Incoming(listener), async {
                    let _ = stop.await;
                })
                .await;
        });
        FakeGoldmane {
            addr,
            pki,
            shared,
            _shutdown: shutdown,
        }
    }

    pub fn address(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Adds a window; open streams send it.
    pub fn push(&self, flow: common::Flow) {
        push_into(&self.shared, flow);
    }

    /// The next streams end with `Unavailable` after sending these many messages each.
    pub fn drop_streams_after(&self, counts: &[usize]) {
        self.shared.state.lock().unwrap().drops.extend(counts);
    }

    pub fn streams(&self) -> Vec<SeenStream> {
        self.shared.state.lock().unwrap().streams.clone()
    }

    pub fn lists(&self) -> Vec<SeenList> {
        self.shared.state.lock().unwrap().lists.clone()
    }

    pub fn hint_types(&self) -> Vec<i32> {
        self.shared.state.lock().unwrap().hints.clone()
    }
}

fn push_into(shared: &Shared, flow: common::Flow) {
    let mut state = shared.state.lock().unwrap();
    // Goldmane's id is 1:1 with the flow key.
    let id = state
        .flows
        .iter()
        .find(|r| r.flow.as_ref().map(|f| &f.key) == Some(&flow.key))
        .map(|r| r.id)
        .unwrap_or(state.flows.len() as i64 + 1);
    state.flows.push(common::FlowResult {
        id,
        flow: Some(flow),
    });
    drop(state);
    shared.pushed.notify_waiters();
}

fn resolve(time: i64, now: i64) -> i64 {
    if time < 0 {
        now + time
    } else {
        time
    }
}

/// The subset of Goldmane's filter semantics the tests rely on.
struct SimpleFilter {
    dest_ports: Vec<i64>,
    actions: Vec<i32>,
    source_namespaces: Vec<String>,
    dest_namespaces: Vec<String>,
}

impl SimpleFilter {
    fn from_seen(seen: &SeenFilter) -> SimpleFilter {
        let values = |m: &[common::StringMatch]| m.iter().map(|s| s.value.clone()).collect();
        match seen {
            SeenFilter::V3_30(Some(f)) => SimpleFilter {
                dest_ports: f.dest_ports.iter().map(|p| p.port).collect(),
                actions: f.actions.clone(),
                source_namespaces: values(&f.source_namespaces),
                dest_namespaces: values(&f.dest_namespaces),
            },
            SeenFilter::V3_32(Some(f)) => SimpleFilter {
                dest_ports: f.dest_ports.iter().map(|p| p.port).collect(),
                actions: f.actions.clone(),
                source_namespaces: values(&f.source_namespaces),
                dest_namespaces: values(&f.dest_namespaces),
            },
            _ => SimpleFilter {
                dest_ports: vec![],
                actions: vec![],
                source_namespaces: vec![],
                dest_namespaces: vec![],
            },
        }
    }

    fn matches(&self, flow: &common::Flow) -> bool {
        let Some(key) = &flow.key else { return true };
        (self.dest_ports.is_empty() || self.dest_ports.contains(&key.dest_port))
            && (self.actions.is_empty() || self.actions.contains(&key.action))
            && (self.source_namespaces.is_empty()
                || self.source_namespaces.contains(&key.source_namespace))
            && (self.dest_namespaces.is_empty()
                || self.dest_namespaces.contains(&key.dest_namespace))
    }
}

/// The fake's `goldmane.Flows` for one wire version: the generated server trait, answered from
/// the shared state (the requests differ by version only in their `Filter`).
macro_rules! flows_service {
    ($service:ident, $version:ident, $seen:ident, $highest_hint_type:expr) => {
        struct $service(Arc<Shared>);

        #[tonic::async_trait]
        impl super::goldmane_server::$version::flows_server::Flows for $service {
            async fn list(
                &self,
                request: Request<$version::FlowListRequest>,
            ) -> Result<Response<common::FlowListResult>, Status> {
                let r = request.into_inner();
                let seen = SeenList {
                    start_time_gte: r.start_time_gte,
                    start_time_lt: r.start_time_lt,
                    page: r.page,
                    page_size: r.page_size,
                    filter: SeenFilter::$seen(r.filter),
                };
                list(&self.0, seen).map(Response::new)
            }

            type StreamStream = FlowStream;

            async fn stream(
                &self,
                request: Request<$version::FlowStreamRequest>,
            ) -> Result<Response<FlowStream>, Status> {
                let r = request.into_inner();
                stream(&self.0, r.start_time_gte, SeenFilter::$seen(r.filter)).map(Response::new)
            }

            async fn filter_hints(
                &self,
                request: Request<$version::FilterHintsRequest>,
            ) -> Result<Response<common::FilterHintsResult>, Status> {
                let r = request.into_inner();
                hints(&self.0, r.r#type, $highest_hint_type, r.page, r.page_size).map(Response::new)
            }
        }
    };
}

flows_service!(FlowsV3_30, v3_30, V3_30, 6);
flows_service!(FlowsV3_32, v3_32, V3_32, 8);

/// The receiving end of a stream task.
pub struct FlowStream(mpsc::Receiver<Result<common::FlowResult, Status>>);

impl tonic::codegen::tokio_stream::Stream for FlowStream {
    type Item = Result<common::FlowResult, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Accepted TCP connections.
struct Incoming(tokio::net::TcpListener);

impl tonic::codegen::tokio_stream::Stream for Incoming {
    type Item = std::io::Result<tokio::net::TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(socket, _)| socket)))
    }
}

fn list(shared: &Shared, seen: SeenList) -> Result<common::FlowListResult, Status> {
    let mut state = shared.state.lock().unwrap();
    state.lists.push(seen.clone());
    let now = unix_now();
    let gte = resolve(seen.start_time_gte, now);
    let lt = if seen.start_time_lt == 0 {
        i64::MAX
    } else {
        resolve(seen.start_time_lt, now)
    };
    let filter = SimpleFilter::from_seen(&seen.filter);
    let mut matching: Vec<common::FlowResult> = state
        .flows
        .iter()
        .filter(|r| {
            let flow = r.flow.as_ref().unwrap();
            flow.start_time >= gte && flow.start_time < lt && filter.matches(flow)
        })
        .cloned()
        .collect();
    // Newest first, as Goldmane sorts by time.
    matching.sort_by_key(|r| std::cmp::Reverse(r.flow.as_ref().unwrap().start_time));
    let total = matching.len() as i64;
    let (pages, flows) = if seen.page_size > 0 {
        let start = (seen.page * seen.page_size).min(total) as usize;
        let end = ((seen.page + 1) * seen.page_size).min(total) as usize;
        (
            (total + seen.page_size - 1) / seen.page_size,
            matching[start..end].to_vec(),
        )
    } else {
        (1, matching)
    };
    Ok(common::FlowListResult {
        meta: Some(common::ListMetadata {
            total_pages: pages,
            total_results: total,
        }),
        flows,
    })
}

fn hints(
    shared: &Shared,
    kind: i32,
    highest_type: i32,
    page: i64,
    page_size: i64,
) -> Result<common::FilterHintsResult, Status> {
    let mut state = shared.state.lock().unwrap();
    state.hints.push(kind);
    if !(1..=highest_type).contains(&kind) {
        // Goldmane's storage answers a plain Go error, which gRPC sends as Unknown.
        return Err(Status::unknown(format!("unsupported filter type '{kind}'")));
    }
    let mut values = BTreeSet::new();
    for result in &state.flows {
        let Some(key) = result.flow.as_ref().and_then(|f| f.key.as_ref()) else {
            continue;
        };
        let hits = key
            .policies
            .iter()
            .flat_map(|p| p.enforced_policies.iter().chain(&p.pending_policies));
        match kind {
            1 => drop(values.insert(key.dest_name.clone())),
            2 => drop(values.insert(key.source_name.clone())),
            3 => drop(values.insert(key.dest_namespace.clone())),
            4 => drop(values.insert(key.source_namespace.clone())),
            5 => values.extend(hits.map(|h| h.tier.clone())),
            6 => values.extend(hits.map(|h| h.name.clone())),
            7 => values.extend(hits.map(|h| {
                v3_32::PolicyKind::try_from(h.kind)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_default()
            })),
            _ => values.extend(hits.map(|h| h.namespace.clone())),
        }
    }
    values.remove("");
    let all: Vec<String> = values.into_iter().collect();
    let total = all.len() as i64;
    let (pages, chosen) = if page_size > 0 {
        let start = (page * page_size).min(total) as usize;
        let end = ((page + 1) * page_size).min(total) as usize;
        (
            (total + page_size - 1) / page_size,
            all[start..end].to_vec(),
        )
    } else {
        (1, all)
    };
    Ok(common::FilterHintsResult {
        meta: Some(common::ListMetadata {
            total_pages: pages,
            total_results: total,
        }),
        hints: chosen
            .into_iter()
            .map(|value| common::FilterHint { value })
            .collect(),
    })
}

fn stream(
    shared: &Arc<Shared>,
    start_time_gte: i64,
    filter: SeenFilter,
) -> Result<FlowStream, Status> {
    let (drop_after, mut cursor) = {
        let mut state = shared.state.lock().unwrap();
        state.streams.push(SeenStream {
            start_time_gte,
            filter: filter.clone(),
        });
        let cursor = if start_time_gte == 0 {
            state.flows.len()
        } else {
            0
        };
        (state.drops.pop_front(), cursor)
    };
    let gte = resolve(start_time_gte, unix_now());
    let filter = SimpleFilter::from_seen(&filter);
    let (tx, rx) = mpsc::channel(8);
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            // Register for the next push before looking, so none is missed.
            let pushed = shared.pushed.notified();
            let next: Vec<common::FlowResult> = {
                let state = shared.state.lock().unwrap();
                let items = state.flows[cursor..].to_vec();
                cursor = state.flows.len();
                items
            };
            for result in next {
                let flow = result.flow.as_ref().unwrap();
                if flow.start_time < gte || !filter.matches(flow) {
                    continue;
                }
                if drop_after == Some(sent) {
                    let _ = tx
                        .send(Err(Status::unavailable("stream dropped by the test")))
                        .await;
                    return;
                }
                if tx.send(Ok(result)).await.is_err() {
                    return;
                }
                sent += 1;
            }
            tokio::select! {
                _ = pushed => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(FlowStream(rx))
}
