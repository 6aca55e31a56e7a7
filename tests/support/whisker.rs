//! A fake Whisker backend for tests: a hand-written HTTP/1.1 server on 127.0.0.1 answering
//! `GET [/whisker-backend]/flows` — the list envelope `{"total":{"totalPages":N},"items":[…]}`, or
//! Server-Sent Events with `watch=true` — from recorded `FlowResponse` records.
//!
//! It keeps a list of events (each a `FlowResponse` JSON text with its window start). A watch
//! sends the stored events whose start is at or after `startTimeGte` (relative times resolved
//! against the real clock; absent or 0 means "from now on"), then every event pushed later — so a
//! client that reconnects from a window it has gets that window again, as from Whisker. Events go
//! out in chunked encoding, each split across two writes, alternately with LF and CRLF line ends,
//! with comment lines in between. `drop_streams_after` cuts the next streams after a number of
//! events (no terminating chunk); `error_streams_after` ends them with an `error:` line;
//! `refuse` answers 400 with `{"error": …}`. Every request's path and decoded query is recorded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn rfc3339(seconds: i64) -> String {
    flowtrace::model::time::format_rfc3339(seconds)
}

/// A recorded Whisker `FlowResponse`: one 15 s window of `source` → `dest_namespace/api-*:port`.
pub fn flow_response(source: &str, dest_namespace: &str, port: u16, start: i64) -> Value {
    json!({
        "start_time": rfc3339(start),
        "end_time": rfc3339(start + 15),
        "action": "Allow",
        "source_name": source,
        "source_namespace": "frontend",
        "source_labels": "app=traffic-gen | role=client",
        "dest_name": "api-*",
        "dest_namespace": dest_namespace,
        "dest_labels": "app=api | role=backend",
        "protocol": "tcp",
        "dest_port": port,
        "reporter": "Src",
        "policies": {
            "enforced": [{
                "kind": "CalicoNetworkPolicy",
                "name": "allow-frontend-to-backend",
                "namespace": dest_namespace,
                "tier": "platform",
                "action": "Allow",
                "policy_index": 0,
                "rule_index": 0,
                "trigger": null
            }],
            "pending": [{
                "kind": "StagedGlobalNetworkPolicy",
                "name": "staged-allow-all",
                "namespace": "",
                "tier": "default",
                "action": "Allow",
                "policy_index": 0,
                "rule_index": 0,
                "trigger": null
            }]
        },
        "packets_in": 100,
        "packets_out": 50,
        "bytes_in": 5000,
        "bytes_out": 2500
    })
}

/// One stored event: its window start and its `data:` text (one line).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub start: i64,
    pub data: String,
}

impl StoredEvent {
    pub fn flow(flow: &Value) -> StoredEvent {
        let start = flowtrace::model::time::parse_rfc3339(flow["start_time"].as_str().unwrap())
            .expect("start_time");
        StoredEvent {
            start,
            data: flow.to_string(),
        }
    }

    /// Any text, e.g. a malformed record.
    pub fn raw(start: i64, data: impl Into<String>) -> StoredEvent {
        StoredEvent {
            start,
            data: data.into(),
        }
    }
}

/// A request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn watch(&self) -> bool {
        self.param("watch") == Some("true")
    }
}

#[derive(Debug, Clone)]
enum Plan {
    Drop(usize),
    Error(usize, String),
}

#[derive(Default)]
struct State {
    events: Vec<StoredEvent>,
    requests: Vec<SeenRequest>,
    /// How the next streams end, one entry per stream.
    plans: VecDeque<Plan>,
    refuse: Option<String>,
}

pub struct FakeWhisker {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    pushed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWhisker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeWhisker {
    pub async fn start(events: Vec<StoredEvent>) -> FakeWhisker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            events,
            ..State::default()
        }));
        let pushed = Arc::new(Notify::new());
        let task = {
            let state = state.clone();
            let pushed = pushed.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let state = state.clone();
                    let pushed = pushed.clone();
                    tokio::spawn(async move {
                        let _ = serve(socket, state, pushed).await;
                    });
                }
            })
        };
        FakeWhisker {
            address,
            state,
            pushed,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn push(&self, event: StoredEvent) {
        self.state.lock().unwrap().events.push(event);
        self.pushed.notify_waiters();
    }

    /// The next streams are cut after these many events each.
    pub fn drop_streams_after(&self, counts: &[usize]) {
        let mut state = self.state.lock().unwrap();
        state.plans.extend(counts.iter().map(|&n| Plan::Drop(n)));
    }

    /// The next stream sends `count` events, then `error: <message>`, then ends.
    pub fn error_stream_after(&self, count: usize, message: &str) {
        self.state
            .lock()
            .unwrap()
            .plans
            .push_back(Plan::Error(count, message.to_string()));
    }

    /// Every request from now on is answered `400 {"error": message}`.
    pub fn refuse(&self, message: &str) {
        self.state.lock().unwrap().refuse = Some(message.to_string());
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("percent escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}

fn parse_target(target: &str) -> SeenRequest {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    SeenRequest {
        path: path.to_string(),
        query,
    }
}

async fn read_head(socket: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
        if head.len() > 64 << 10 {
            return Ok(None);
        }
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

async fn respond(socket: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(text.as_bytes()).await?;
    socket.shutdown().await
}

async fn chunk(socket: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let text = format!("{:x}\r\n{data}\r\n", data.len());
    socket.write_all(text.as_bytes()).await?;
    socket.flush().await
}

/// Resolves `startTimeGte` as Goldmane does: negative is relative to now; absent or 0 is "now".
fn resolve_start(request: &SeenRequest) -> Option<i64> {
    match request
        .param("startTimeGte")
        .map(|v| v.parse::<i64>().unwrap())
    {
        None | Some(0) => None,
        Some(n) if n < 0 => Some(unix_now() + n),
        Some(n) => Some(n),
    }
}

async fn serve(
    mut socket: TcpStream,
    state: Arc<Mutex<State>>,
    pushed: Arc<Notify>,
) -> std::io::Result<()> {
    let Some(head) = read_head(&mut socket).await? else {
        return Ok(());
    };
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let request = parse_target(target);
    let refuse = {
        let mut state = state.lock().unwrap();
        state.requests.push(request.clone());
        state.refuse.clone()
    };
    if method != "GET" || !request.path.ends_with("/flows") {
        return respond(&mut socket, "404 Not Found", r#"{"error":"not found"}"#).await;
    }
    if let Some(message) = refuse {
        let body = json!({ "error": message }).to_string();
        return respond(&mut socket, "400 Bad Request", &body).await;
    }
    let from = resolve_start(&request);
    if !request.watch() {
        let items: Vec<Value> = state
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|e| from.is_none_or(|f| e.start >= f))
            .map(|e| serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone())))
            .collect();
        let body = json!({"total": {"totalPages": 1}, "items": items}).to_string();
        return respond(&mut socket, "200 OK", &body).await;
    }
    let (drop_after, error_after, mut next) = {
        let mut state = state.lock().unwrap();
        let next = match from {
            // From now on: only what is pushed later.
            None => state.events.len(),
            Some(_) => 0,
        };
        let (drop_after, error_after) = match state.plans.pop_front() {
            Some(Plan::Drop(n)) => (Some(n), None),
            Some(Plan::Error(n, message)) => (None, Some((n, message))),
            None => (None, None),
        };
        (drop_after, error_after, next)
    };
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
    chunk(&mut socket, ": connected\n\n").await?;
    let mut sent = 0usize;
    loop {
        let notified = pushed.notified();
        let pending: Vec<StoredEvent> = {
            let state = state.lock().unwrap();
            let events = state.events[next..].to_vec();
            next = state.events.len();
            events
        };
        for event in pending {
            if from.is_some_and(|f| event.start < f) {
                continue;
            }
            if drop_after == Some(sent) {
                // Cut mid-stream: no terminating chunk.
                return Ok(());
            }
            if let Some((count, message)) = &error_after {
                if *count == sent {
                    chunk(&mut socket, &format!("error: {message}\n\n")).await?;
                    socket.write_all(b"0\r\n\r\n").await?;
                    return socket.shutdown().await;
                }
            }
            let end = if sent.is_multiple_of(2) { "\n" } else { "\r\n" };
            let text = format!("data: {}{end}{end}", event.data);
            let cut = text.len() / 2;
            let cut = (cut..text.len())
                .find(|&i| text.is_char_boundary(i))
                .unwrap();
            chunk(&mut socket, &text[..cut]).await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
            chunk(&mut socket, &text[cut..]).await?;
            if sent % 3 == 2 {
                chunk(&mut socket, ": keep-alive\n\n").await?;
            }
            sent += 1;
        }
        if drop_after == Some(sent) {
            return Ok(());
        }
        notified.await;
    }
}

/// Whisker as Calico 3.33 serves it: HTTPS in front of `plain` (a `FakeWhisker`), with a
/// certificate for `whisker` signed by a CA of its own. Returns the HTTPS address and the CA
/// (PEM), which a test may put in the cluster's `tigera-ca-bundle` or leave out (self-signed, as
/// far as the client can tell).
pub async fn https_front(plain: SocketAddr) -> (SocketAddr, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto, ServerConfig};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let names = vec![
        "whisker".to_string(),
        "whisker.calico-system.svc".to_string(),
    ];
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut backend) = TcpStream::connect(plain).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
            });
        }
    });
    (address, ca.pem())
}
