//! A fake Kubernetes API server for tests, on 127.0.0.1 over plain HTTP/1.1 (hyper), reached
//! through a kubeconfig it writes. It speaks what flowtrace (and kubectl, to check the fake) asks
//! of a cluster:
//! - bearer-token authentication (401 `Status` without the token);
//! - `GET /version`, discovery, and an OpenAPI v2 document without schemas;
//! - `GET` of a namespaced core object by its path, 404 `Status` for one it does not hold;
//! - list and watch of the watched kinds (Calico's, Kubernetes' policies, namespaces, pods) with
//!   resourceVersions, bookmarks, an equality `labelSelector`, compaction (410 Gone) and dropped
//!   watches;
//! - create, server-side apply and delete of those kinds, each with `dryRun=All`;
//! - `pods/NAME/portforward?ports=P` upgraded to a WebSocket with the `v4.channel.k8s.io`
//!   framing (each binary message starts with its channel: 0 data, 1 error; each channel's first
//!   message is the port, little-endian), relayed to a TCP address the test names for the pod's
//!   port. A pod whose port has no address answers on the error channel, as the kubelet does
//!   when nothing listens;
//! - 403 `Status`, worded as RBAC words it, for the paths a test forbids;
//! - users by bearer token (and `Impersonate-User`/`-Group`), RBAC grants (cluster-wide, as a
//!   ClusterRoleBinding gives them, or in one namespace, as a RoleBinding does) matched with
//!   Kubernetes' rules (verb, API group and resource each listed or `*`; resource names, when
//!   listed, only those), and from them: SelfSubjectReview, SelfSubjectAccessReview (an empty
//!   namespace is "every namespace": only cluster-wide grants answer it), SelfSubjectRulesReview
//!   (400 without a namespace), in JSON or in the protobuf kubectl sends, and 403 on what the
//!   user may not do. Calico's tier pseudo-resources (`tier.networkpolicies` named `<tier>.*`)
//!   are plain resources to RBAC, as they are to the real API server; on top of it, Calico's tier
//!   authorization of every write of a tiered policy, and, with Calico's API server as the
//!   datastore (`Datastore::ApiServer`), of reads too (a list holds only the readable tiers).
//!
//! Every request's method and path (with query) is recorded.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, Pod, PodCondition, PodSpec, PodStatus, Secret, Service,
    ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const TOKEN: &str = "fake-token-of-tester";
const USER: &str = "tester";
const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";
const CALICO: &str = "projectcalico.org";

/// Who a token stands for.
#[derive(Debug, Clone)]
struct Identity {
    user: String,
    groups: Vec<String>,
}

/// An RBAC rule granted to a user or group, everywhere (`namespace` None) or in one namespace.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: String,
    pub namespace: Option<String>,
    pub verbs: Vec<String>,
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub names: Vec<String>,
}

impl Grant {
    /// `verbs` on `resources` of API group `group` (`""` for core), every name.
    pub fn new(subject: &str, verbs: &[&str], group: &str, resources: &[&str]) -> Grant {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Grant {
            subject: subject.into(),
            namespace: None,
            verbs: owned(verbs),
            groups: vec![group.into()],
            resources: owned(resources),
            names: Vec::new(),
        }
    }

    /// Only in `namespace` (a RoleBinding).
    pub fn in_namespace(mut self, namespace: &str) -> Grant {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only these names.
    pub fn named(mut self, names: &[&str]) -> Grant {
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn applies_to(&self, who: &Identity) -> bool {
        self.subject == who.user || who.groups.contains(&self.subject)
    }

    /// Kubernetes' matching: each listed or `*`; names, when listed, must include the one asked
    /// for (a request naming none does not match a rule that lists names).
    fn allows(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        let has = |values: &[String], wanted: &str| values.iter().any(|v| v == "*" || v == wanted);
        has(&self.verbs, verb)
            && has(&self.groups, group)
            && has(&self.resources, resource)
            && (self.names.is_empty() || name.is_some_and(|n| self.names.iter().any(|g| g == n)))
    }

    fn as_rule(&self) -> Value {
        let mut rule =
            json!({"verbs": self.verbs, "apiGroups": self.groups, "resources": self.resources});
        if !self.names.is_empty() {
            rule["resourceNames"] = json!(self.names);
        }
        rule
    }
}

#[derive(Default)]
struct State {
    /// Bearer tokens and who they stand for.
    users: BTreeMap<String, Identity>,
    grants: Vec<Grant>,
    /// Namespaces beyond those of the objects held.
    namespaces: BTreeSet<String>,
    /// The collections flowtrace lists and watches (policies, tiers, sets), with Kubernetes'
    /// resourceVersions and watch events.
    watched: Watched,
    /// How long each answer takes, as a distant API server's would.
    latency: std::time::Duration,
    /// Who a request without credentials is (kubectl sends no bearer token over plain HTTP).
    anonymous: Option<Identity>,
    /// Objects by their API path.
    objects: BTreeMap<String, Value>,
    /// Where each pod's port is served: (namespace, pod, port).
    forwards: BTreeMap<(String, String, u16), SocketAddr>,
    /// Path prefixes answered with 403.
    forbidden: Vec<String>,
    requests: Vec<String>,
    /// The Impersonate-User and Impersonate-Group headers of every request.
    impersonations: Vec<(Option<String>, Vec<String>)>,
    datastore: Datastore,
}

/// Where Calico keeps its objects, which decides whether reads of tiered policies are filtered
/// by tier (calico.md 4.7). Writes are tier-authorized in both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Datastore {
    /// Calico's aggregated API server (3.30, 3.31, 3.32's default): a list or watch of tiered
    /// policies holds only the tiers the user may read (403 when none), and a
    /// `projectcalico.org/tier=T` label selector asks for one.
    ApiServer,
    /// Native v3 CRDs (3.33's default for new installs): reads are plain RBAC, not filtered by
    /// tier; an admission webhook authorizes writes by tier.
    #[default]
    Crd,
}

pub struct FakeApiServer {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API path of a namespaced core/v1 object.
fn object_path(namespace: &str, plural: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/{plural}/{name}")
}

impl FakeApiServer {
    pub async fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut initial = State::default();
        initial.users.insert(
            TOKEN.into(),
            Identity {
                user: USER.into(),
                groups: vec!["system:authenticated".into()],
            },
        );
        // The tester may do anything, as a cluster admin may.
        initial.grants.push(Grant::new(USER, &["*"], "*", &["*"]));
        let state = Arc::new(Mutex::new(initial));
        let task = {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |request: Request<Incoming>| {
                                let state = state.clone();
                                async move {
                                    let latency = state.lock().unwrap().latency;
                                    if !latency.is_zero() {
                                        tokio::time::sleep(latency).await;
                                    }
                                    let writes = [
                                        hyper::Method::POST,
                                        hyper::Method::PATCH,
                                        hyper::Method::DELETE,
                                    ];
                                    if !writes.contains(request.method()) {
                                        return Ok::<_, hyper::Error>(answer(request, state));
                                    }
                                    let (parts, body) = request.into_parts();
                                    let body = body.collect().await?.to_bytes();
                                    let review = parts.uri.path().ends_with("reviews");
                                    Ok(match review {
                                        true => answer_review(&parts, &body, &state),
                                        false => answer_write(&parts, &body, &state),
                                    })
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(socket), service)
                            .with_upgrades()
                            .await;
                    });
                }
            })
        };
        FakeApiServer {
            address,
            state,
            task,
        }
    }

    /// Writes a kubeconfig for this server (context `fake`, user `tester` with its token) into
    /// `dir`.
    /// A kubeconfig for the tester, whose context names no namespace (as a cloud provider's
    /// does).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig_with(dir, "kubeconfig", USER, TOKEN, None)
    }

    /// A kubeconfig for `user` (added with `add_user`), whose context names `namespace`.
    pub fn kubeconfig_as(&self, dir: &Path, user: &str, namespace: &str) -> PathBuf {
        let token = format!("token-of-{user}");
        let file = format!("kubeconfig-{user}");
        self.kubeconfig_with(dir, &file, user, &token, Some(namespace))
    }

    fn kubeconfig_with(
        &self,
        dir: &Path,
        file: &str,
        user: &str,
        token: &str,
        namespace: Option<&str>,
    ) -> PathBuf {
        let path = dir.join(file);
        let namespace = namespace.map_or(String::new(), |ns| format!("    namespace: {ns}\n"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: \
             http://{}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: \
             {user}\n{namespace}current-context: fake\nusers:\n- name: {user}\n  \
             user:\n    token: {token}\n",
            self.address
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A user who authenticates with the token `kubeconfig_as` writes.
    pub fn add_user(&self, user: &str, groups: &[&str]) {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        groups.push("system:authenticated".into());
        self.state.lock().unwrap().users.insert(
            format!("token-of-{user}"),
            Identity {
                user: user.into(),
                groups,
            },
        );
    }

    /// Three personas: `admin` (anything); `alice`, a developer in group `<namespace>-devs` who
    /// owns `namespace` and may read and write tiers `application` and `default`; `bob`, a
    /// security engineer who sees every namespace, reads every tier and writes `security`. With
    /// Calico's passthrough role, which grants the plain policy kinds to everyone.
    pub fn add_personas(&self, namespace: &str) {
        let developers = format!("{namespace}-devs");
        self.add_user("admin", &["system:masters"]);
        self.grant(Grant::new("system:masters", &["*"], "*", &["*"]));

        self.add_user("alice", &[&developers]);
        let owned = |verbs: &[&str], group: &str, resources: &[&str]| {
            Grant::new(&developers, verbs, group, resources).in_namespace(namespace)
        };
        self.grant(owned(&["get", "list", "watch"], "", &["pods"]));
        self.grant(
            owned(
                &[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ],
                CALICO,
                &["tier.networkpolicies", "tier.stagednetworkpolicies"],
            )
            .named(&["application.*", "default.*"]),
        );
        // Seeing which tiers exist is not reading their policies: that takes `get` on the tier.
        self.grant(Grant::new(&developers, &["list"], CALICO, &["tiers"]));
        self.grant(
            Grant::new(&developers, &["get"], CALICO, &["tiers"])
                .named(&["application", "default"]),
        );
        // Calico's passthrough role: the plain kinds for everyone (the tier pseudo-resources
        // decide).
        self.grant(Grant::new(
            "system:authenticated",
            &["*"],
            CALICO,
            &[
                "networkpolicies",
                "globalnetworkpolicies",
                "stagednetworkpolicies",
                "stagedglobalnetworkpolicies",
            ],
        ));

        self.add_user("bob", &["security"]);
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            "",
            &["pods", "namespaces"],
        ));
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            CALICO,
            &["tiers"],
        ));
        // Every network policy object, to read them all as the cluster decides with them.
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            "networking.k8s.io",
            &["networkpolicies"],
        ));
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            "policy.networking.k8s.io",
            &["*"],
        ));
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            CALICO,
            &[
                "stagedkubernetesnetworkpolicies",
                "networksets",
                "globalnetworksets",
            ],
        ));
        self.grant(Grant::new(
            "security",
            &["get", "list", "watch"],
            CALICO,
            &[
                "tier.networkpolicies",
                "tier.globalnetworkpolicies",
                "tier.stagednetworkpolicies",
                "tier.stagedglobalnetworkpolicies",
            ],
        ));
        self.grant(
            Grant::new(
                "security",
                &["create", "update"],
                CALICO,
                &[
                    "tier.globalnetworkpolicies",
                    "tier.stagedglobalnetworkpolicies",
                ],
            )
            .named(&["security.*"]),
        );
    }

    pub fn grant(&self, grant: Grant) {
        self.state.lock().unwrap().grants.push(grant);
    }

    /// Takes back every grant to `subject` (a user or group): the next requests are refused.
    pub fn revoke(&self, subject: &str) {
        let mut state = self.state.lock().unwrap();
        state.grants.retain(|grant| grant.subject != subject);
    }

    pub fn add_namespace(&self, name: &str) {
        let mut state = self.state.lock().unwrap();
        state.namespaces.insert(name.into());
        state.watched.write(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            false,
        );
    }

    /// Requests without credentials act as the tester: kubectl, which sends no bearer token over
    /// plain HTTP, can then be run against this fake.
    pub fn accept_anonymous_as_tester(&self) {
        self.state.lock().unwrap().anonymous = Some(Identity {
            user: USER.into(),
            groups: vec!["system:authenticated".into()],
        });
    }

    /// How Calico keeps its objects, from now on.
    pub fn set_datastore(&self, datastore: Datastore) {
        self.state.lock().unwrap().datastore = datastore;
    }

    /// Every answer from now on takes `latency`.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    pub fn add_tier(&self, name: &str) {
        self.apply(json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
                          "metadata": {"name": name}, "spec": {}}));
    }

    /// Creates or replaces an object of a watched kind (`apiVersion`, `kind`, `metadata.name` and,
    /// for a namespaced kind, `metadata.namespace`), as a write by `kubectl` would: a new
    /// resourceVersion, and an ADDED or MODIFIED event to every watch.
    pub fn apply(&self, object: Value) {
        self.state.lock().unwrap().watched.write(object, false);
    }

    /// Deletes an object of a watched kind: a DELETED event.
    pub fn delete(&self, object: Value) {
        self.state.lock().unwrap().watched.write(object, true);
    }

    /// Forgets the events so far, as etcd compaction does: a watch resuming from before now gets
    /// 410 Gone and must list again.
    pub fn compact(&self) {
        self.state.lock().unwrap().watched.compact();
    }

    /// Closes every open watch, writes `object` while they are down and compacts the events: a
    /// watch resuming where it was gets 410 Gone and must list again to see the write.
    pub fn apply_while_watches_are_down(&self, object: Value) {
        let mut state = self.state.lock().unwrap();
        state.watched.generation += 1;
        let _ = state.watched.closed.send(state.watched.generation);
        state.watched.write(object, false);
        state.watched.compact();
    }

    /// Closes every open watch, as a restarted API server or a dropped connection would.
    pub fn drop_watches(&self) {
        let mut state = self.state.lock().unwrap();
        state.watched.generation += 1;
        let _ = state.watched.closed.send(state.watched.generation);
    }

    fn put(&self, namespace: &str, plural: &str, name: &str, object: impl serde::Serialize) {
        let object = object;
        let object = serde_json::to_value(object).unwrap();
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(object_path(namespace, plural, name), object);
    }

    /// The Calico version the cluster says it runs (its ClusterInformation `default`).
    pub fn set_calico_version(&self, version: &str) {
        self.state.lock().unwrap().objects.insert(
            format!("/apis/{CALICO}/v3/clusterinformations/default"),
            json!({"apiVersion": "projectcalico.org/v3", "kind": "ClusterInformation",
                   "metadata": {"name": "default"}, "spec": {"calicoVersion": version}}),
        );
    }

    /// A service selecting `selector` with one port leading to `target_port`.
    pub fn add_service(
        &self,
        namespace: &str,
        name: &str,
        selector: &[(&str, &str)],
        port: u16,
        target_port: IntOrString,
    ) {
        let service = Service {
            metadata: meta(namespace, name, &[]),
            spec: Some(ServiceSpec {
                selector: Some(labels(selector)),
                ports: Some(vec![ServicePort {
                    port: i32::from(port),
                    target_port: Some(target_port),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        self.put(namespace, "services", name, service);
    }

    /// A pod with these labels and named container ports, running and ready or not.
    pub fn add_pod(
        &self,
        namespace: &str,
        name: &str,
        pod_labels: &[(&str, &str)],
        ports: &[(&str, u16)],
        ready: bool,
    ) {
        let pod = Pod {
            metadata: meta(namespace, name, pod_labels),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(port_name, port)| ContainerPort {
                                name: Some(port_name.to_string()),
                                container_port: i32::from(*port),
                                ..ContainerPort::default()
                            })
                            .collect(),
                    ),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        };
        let object = serde_json::to_value(&pod).unwrap();
        self.put(namespace, "pods", name, pod);
        self.state.lock().unwrap().watched.write(object, false);
    }

    pub fn remove_pod(&self, namespace: &str, name: &str) {
        self.state
            .lock()
            .unwrap()
            .objects
            .remove(&object_path(namespace, "pods", name));
        self.state.lock().unwrap().watched.write(
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"namespace": namespace, "name": name}}),
            true,
        );
    }

    pub fn add_config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let map = ConfigMap {
            metadata: meta(namespace, name, &[]),
            data: Some(labels(data)),
            ..ConfigMap::default()
        };
        self.put(namespace, "configmaps", name, map);
    }

    pub fn add_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: meta(namespace, name, &[]),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        };
        self.put(namespace, "secrets", name, secret);
    }

    /// Connections to `pod`'s `port` reach `to`.
    pub fn serve_pod_port(&self, namespace: &str, pod: &str, port: u16, to: SocketAddr) {
        self.state
            .lock()
            .unwrap()
            .forwards
            .insert((namespace.into(), pod.into(), port), to);
    }

    /// Requests under this path prefix are refused (403), e.g.
    /// `/api/v1/namespaces/calico-system/pods/goldmane-1/portforward`.
    pub fn forbid(&self, path_prefix: &str) {
        self.state
            .lock()
            .unwrap()
            .forbidden
            .push(path_prefix.to_string());
    }

    /// Who each request so far asked to act as: Impersonate-User, and Impersonate-Group values.
    pub fn impersonations(&self) -> Vec<(Option<String>, Vec<String>)> {
        self.state.lock().unwrap().impersonations.clone()
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn meta(namespace: &str, name: &str, pod_labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: (!pod_labels.is_empty()).then(|| labels(pod_labels)),
        resource_version: Some("1".into()),
        ..ObjectMeta::default()
    }
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap()
}

/// A `metav1.Status` failure, as the API server sends for errors.
fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

/// The parts of `/api/v1/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]`.
struct ApiPath<'a> {
    namespace: &'a str,
    resource: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

fn parse_path(path: &str) -> Option<ApiPath<'_>> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut parts = rest.split('/');
    Some(ApiPath {
        namespace: parts.next()?,
        resource: parts.next()?,
        name: parts.next(),
        subresource: parts.next(),
    })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            value
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
    })
}

/// Who is asking: the token's user, or whom it impersonates; a 401 `Status` for a bad token.
fn identify(
    method: &hyper::Method,
    uri: &hyper::Uri,
    headers: &hyper::HeaderMap,
    seen: &mut State,
) -> Result<Identity, Box<Response<Body>>> {
    seen.requests.push(format!(
        "{method} {}?{}",
        uri.path(),
        uri.query().unwrap_or("")
    ));
    let header = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let impersonated = header("impersonate-user").into_iter().next();
    let impersonated_groups = header("impersonate-group");
    seen.impersonations
        .push((impersonated.clone(), impersonated_groups.clone()));
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let known = match token {
        Some(token) => seen.users.get(token).cloned(),
        None => seen.anonymous.clone(),
    };
    let Some(identity) = known else {
        return Err(Box::new(status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
        )));
    };
    Ok(match impersonated {
        // As Kubernetes does, an impersonated user is authenticated too.
        Some(user) => Identity {
            user,
            groups: (impersonated_groups.into_iter())
                .chain(["system:authenticated".to_string()])
                .collect(),
        },
        None => identity,
    })
}

impl State {
    /// Whether RBAC allows it; `namespace` None: cluster-wide (or every namespace).
    fn allowed(
        &self,
        who: &Identity,
        verb: &str,
        group: &str,
        resource: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> bool {
        self.grants.iter().any(|grant| {
            grant.applies_to(who)
                && (grant.namespace.is_none() || grant.namespace.as_deref() == namespace)
                && grant.allows(verb, group, resource, name)
        })
    }

    /// Calico's tier authorization: `get` on the tier, and `verb` on the tier pseudo-resource
    /// (`tier.networkpolicies`) named `<tier>.*` or, but for a list or watch, the policy's name.
    fn tier_allows(
        &self,
        who: &Identity,
        verb: &str,
        plural: &str,
        tier: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> bool {
        let pseudo = format!("tier.{plural}");
        let wildcard = format!("{tier}.*");
        self.allowed(who, "get", CALICO, "tiers", Some(tier), None)
            && [Some(wildcard.as_str()), name]
                .into_iter()
                .flatten()
                .any(|named| self.allowed(who, verb, CALICO, &pseudo, Some(named), namespace))
    }

    /// The tiers whose policies of `plural` the user may list (or watch) in `namespace`.
    fn readable_tiers(
        &self,
        who: &Identity,
        verb: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> BTreeSet<String> {
        let tiers = self
            .watched
            .objects
            .keys()
            .filter(|(v, p, ..)| v == "projectcalico.org/v3" && p == "tiers");
        tiers
            .map(|(.., name)| name.clone())
            .chain(["default".to_string()])
            .filter(|tier| self.tier_allows(who, verb, plural, tier, None, namespace))
            .collect()
    }

    fn all_namespaces(&self) -> BTreeSet<String> {
        let mut all = self.namespaces.clone();
        for path in self.objects.keys() {
            if let Some(ApiPath { namespace, .. }) = parse_path(path) {
                all.insert(namespace.to_string());
            }
        }
        all
    }
}

/// The OpenAPI v2 document kubectl downloads (in protobuf) to validate what it sends, holding no
/// schema: kubectl then validates nothing client-side, as for a custom resource without one.
fn openapi_without_schemas() -> Response<Body> {
    // Document { swagger = 1: "2.0", info = 2: Info { title = 1: "fake", version = 2: "v1" } }
    let document = b"\x0a\x032.0\x12\x0a\x0a\x04fake\x12\x02v1".to_vec();
    Response::builder()
        .status(StatusCode::OK)
        .header(
            "content-type",
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )
        .body(Full::new(Bytes::from(document)).boxed())
        .unwrap()
}

/// RBAC's 403, worded as the API server words it.
fn forbidden(
    who: &Identity,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Response<Body> {
    let place = match namespace {
        Some(namespace) => format!("in the namespace \"{namespace}\""),
        None => "at the cluster scope".to_string(),
    };
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "{resource} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API \
             group \"{group}\" {place}",
            who.user
        ),
    )
}

/// A list answer of `kind` with these items.
fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}

/// A create (POST to a collection), a server-side apply (PATCH of `application/apply-patch+yaml`)
/// or a delete of an object of a watched kind, each with `dryRun=All` honored: authorized by RBAC
/// and, for Calico's tiered policies, by tier (in both datastores); a dry run answers as the write
/// would and changes nothing.
fn answer_write(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    state: &Arc<Mutex<State>>,
) -> Response<Body> {
    let (mut seen, who) = match identified(parts, state) {
        Ok(identified) => identified,
        Err(response) => return *response,
    };
    let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or(""));
    let creating = parts.method == hyper::Method::POST;
    let (collection, named) = match creating {
        true => (Collection::of(path), None),
        false => match path.rsplit_once('/') {
            Some((collection, name)) => (Collection::of(collection), Some(name.to_string())),
            None => (None, None),
        },
    };
    let Some(collection) = collection.filter(|c| seen.watched.serves(c)) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    let api_version = match collection.group.as_str() {
        "" => collection.version.clone(),
        group => format!("{group}/{}", collection.version),
    };
    let Some((_, kind, _)) = WATCHED_KINDS
        .iter()
        .find(|(v, _, plural)| *v == api_version && *plural == collection.plural)
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "not a watched kind".into(),
        );
    };
    let namespace = collection.namespace.clone().unwrap_or_default();
    let stored = |name: &str| {
        let key = (
            api_version.clone(),
            collection.plural.clone(),
            namespace.clone(),
            name.to_string(),
        );
        seen.watched.objects.get(&key).cloned()
    };
    let sent: Option<Value> = match parts.method == hyper::Method::DELETE {
        true => None,
        false => match serde_norway::from_slice(body) {
            Ok(object) => Some(object),
            Err(e) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("the body does not parse: {e}"),
                )
            }
        },
    };
    let name = match (&sent, &named) {
        (Some(object), _) => object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => String::new(),
    };
    let invalid = |why: String| {
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!(
                "{}.{} \"{name}\" is invalid: {why}",
                collection.plural, collection.group
            ),
        )
    };
    if let Some(object) = &sent {
        if object["apiVersion"] != api_version.as_str() || object["kind"] != *kind {
            return invalid(format!("apiVersion and kind must be {api_version} {kind}"));
        }
        if name.is_empty() || named.as_deref().is_some_and(|n| n != name) {
            return invalid("metadata.name: Required value, the name in the path".into());
        }
        let sent_namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace);
        if sent_namespace != namespace {
            return invalid(format!(
                "metadata.namespace: does not match the request's {namespace:?}"
            ));
        }
    }
    let verb = match parts.method.as_str() {
        "POST" => "create",
        "PATCH" => "patch",
        _ => "delete",
    };
    let ns = collection.namespace.as_deref();
    if !seen.allowed(
        &who,
        verb,
        &collection.group,
        &collection.plural,
        Some(&name),
        ns,
    ) {
        return forbidden(&who, verb, &collection.group, &collection.plural, ns);
    }
    let before = stored(&name);
    let tier = sent
        .as_ref()
        .or(before.as_ref())
        .and_then(tier_of)
        .map(str::to_string);
    if let Some(tier) = tier {
        if !seen.tier_allows(&who, verb, &collection.plural, &tier, Some(&name), ns) {
            let pseudo = format!("tier.{}", collection.plural);
            return forbidden(&who, verb, CALICO, &pseudo, ns);
        }
    }
    // A delete says it in its DeleteOptions body, the others in the query.
    let options: Value = serde_json::from_slice(body).unwrap_or_default();
    let dry_run = query_param(query, "dryRun").is_some_and(|d| d == "All")
        || (sent.is_none() && options["dryRun"] == json!(["All"]));
    let manager = query_param(query, "fieldManager").unwrap_or_else(|| "kubectl".into());
    let Some(mut object) = sent else {
        // A delete.
        let Some(object) = before else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} \"{name}\" not found", collection.plural),
            );
        };
        if !dry_run {
            seen.watched.write(object.clone(), true);
        }
        return json_response(StatusCode::OK, &object);
    };
    if creating && before.is_some() {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!(
                "{}.{} \"{name}\" already exists",
                collection.plural, collection.group
            ),
        );
    }
    let operation = if creating { "Update" } else { "Apply" };
    object["metadata"]["managedFields"] = json!([{"manager": manager, "operation": operation,
        "apiVersion": api_version, "time": "2026-12-05T02:10:00Z"}]);
    if !namespace.is_empty() {
        object["metadata"]["namespace"] = json!(namespace);
    }
    let code = if before.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    if !dry_run {
        seen.watched.write(object.clone(), false);
        let key = (api_version, collection.plural.clone(), namespace, name);
        object = seen.watched.objects.get(&key).cloned().unwrap_or(object);
    }
    json_response(code, &object)
}

/// A review kubectl sent in Kubernetes' protobuf (`k8s\0`, then a `runtime.Unknown` holding the
/// type and the object), as the JSON fields this fake reads: `apiVersion`, `kind`, and the spec's
/// `namespace` (a rules review) or `resourceAttributes` (an access review). The answer is JSON,
/// which kubectl accepts too.
fn review_from_protobuf(body: &[u8]) -> Option<Value> {
    let envelope = protobuf_fields(body.strip_prefix(b"k8s\0")?)?;
    let type_meta = protobuf_fields(field(&envelope, 1)?)?;
    let text = |fields: &[(u64, &[u8])], number| {
        field(fields, number).map_or(String::new(), |b| String::from_utf8_lossy(b).into_owned())
    };
    let object = protobuf_fields(field(&envelope, 2)?)?;
    let spec = protobuf_fields(field(&object, 2).unwrap_or_default())?;
    let mut review = json!({"apiVersion": text(&type_meta, 1), "kind": text(&type_meta, 2)});
    review["spec"] = match review["kind"].as_str() {
        Some("SelfSubjectRulesReview") => json!({"namespace": text(&spec, 1)}),
        Some("SelfSubjectAccessReview") => {
            let attributes = protobuf_fields(field(&spec, 1).unwrap_or_default())?;
            json!({"resourceAttributes": {
                "namespace": text(&attributes, 1), "verb": text(&attributes, 2),
                "group": text(&attributes, 3), "version": text(&attributes, 4),
                "resource": text(&attributes, 5), "subresource": text(&attributes, 6),
                "name": text(&attributes, 7)}})
        }
        _ => json!({}),
    };
    Some(review)
}

/// A protobuf message's length-delimited fields (strings, bytes, messages) by number, in order;
/// other wire types are skipped. `None` when it is cut short.
fn protobuf_fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let mut value = 0u64;
        for (index, byte) in bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Some((value, &bytes[index + 1..]));
            }
        }
        None
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let (key, rest) = varint(bytes)?;
        bytes = match key & 7 {
            0 => varint(rest)?.1,
            1 => rest.get(8..)?,
            5 => rest.get(4..)?,
            2 => {
                let (length, rest) = varint(rest)?;
                let length = usize::try_from(length).ok()?;
                fields.push((key >> 3, rest.get(..length)?));
                &rest[length..]
            }
            _ => return None,
        };
    }
    Some(fields)
}

fn field<'a>(fields: &[(u64, &'a [u8])], number: u64) -> Option<&'a [u8]> {
    fields.iter().find(|(n, _)| *n == number).map(|(_, b)| *b)
}

/// The state, and who sent a request with a body.
fn identified<'a>(
    parts: &hyper::http::request::Parts,
    state: &'a Arc<Mutex<State>>,
) -> Result<(std::sync::MutexGuard<'a, State>, Identity), Box<Response<Body>>> {
    let mut seen = state.lock().unwrap();
    let who = identify(&parts.method, &parts.uri, &parts.headers, &mut seen)?;
    Ok((seen, who))
}

/// The reviews (POST): SelfSubjectReview, SelfSubjectAccessReview, SelfSubjectRulesReview.
fn answer_review(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    state: &Arc<Mutex<State>>,
) -> Response<Body> {
    let (seen, who) = match identified(parts, state) {
        Ok(identified) => identified,
        Err(response) => return *response,
    };
    let protobuf = parts.headers.get("content-type").is_some_and(|t| {
        t.as_bytes()
            .starts_with(b"application/vnd.kubernetes.protobuf")
    });
    let asked = match protobuf {
        true => review_from_protobuf(body),
        false => serde_json::from_slice::<Value>(body).ok(),
    };
    let Some(asked) = asked else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is neither JSON nor a review in Kubernetes' protobuf".into(),
        );
    };
    match parts.uri.path() {
        "/apis/authentication.k8s.io/v1/selfsubjectreviews" => json_response(
            StatusCode::CREATED,
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                    "metadata": {}, "status": {"userInfo": {"username": who.user, "groups": who.groups}}}),
        ),
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => {
            let attributes = &asked["spec"]["resourceAttributes"];
            let text = |field: &str| attributes[field].as_str().filter(|v| !v.is_empty());
            let allowed = seen.allowed(
                &who,
                text("verb").unwrap_or(""),
                text("group").unwrap_or(""),
                text("resource").unwrap_or(""),
                text("name"),
                text("namespace"),
            );
            let mut answer = asked.clone();
            answer["status"] = json!({"allowed": allowed});
            json_response(StatusCode::CREATED, &answer)
        }
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => {
            let Some(namespace) = asked["spec"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
            else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "no namespace on request".into(),
                );
            };
            let rules: Vec<Value> = seen
                .grants
                .iter()
                .filter(|g| {
                    g.applies_to(&who)
                        && (g.namespace.is_none() || g.namespace.as_deref() == Some(namespace))
                })
                .map(Grant::as_rule)
                .collect();
            let mut answer = asked.clone();
            answer["status"] =
                json!({"resourceRules": rules, "nonResourceRules": [], "incomplete": false});
            json_response(StatusCode::CREATED, &answer)
        }
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        ),
    }
}

fn answer(request: Request<Incoming>, state: Arc<Mutex<State>>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let mut seen = state.lock().unwrap();
    if path == "/openapi/v2" {
        return openapi_without_schemas();
    }
    // Discovery is open to anyone, as the system:discovery role makes it.
    if let Some(discovery) = seen.watched.discovery(&path) {
        return json_response(StatusCode::OK, &discovery);
    }
    let who = match identify(
        request.method(),
        request.uri(),
        request.headers(),
        &mut seen,
    ) {
        Ok(who) => who,
        Err(response) => return *response,
    };
    if path == "/version" {
        return json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}),
        );
    }
    // What serves projectcalico.org/v3: Calico's API server (the APIService names its service),
    // or CRDs (the APIService Kubernetes makes for them names none).
    if path == "/apis/apiregistration.k8s.io/v1/apiservices/v3.projectcalico.org" {
        let name = "v3.projectcalico.org";
        if !seen.allowed(
            &who,
            "get",
            "apiregistration.k8s.io",
            "apiservices",
            Some(name),
            None,
        ) {
            return forbidden(&who, "get", "apiregistration.k8s.io", "apiservices", None);
        }
        let mut spec = json!({"group": CALICO, "version": "v3"});
        if seen.datastore == Datastore::ApiServer {
            spec["service"] =
                json!({"namespace": "calico-apiserver", "name": "calico-api", "port": 443});
        }
        return json_response(
            StatusCode::OK,
            &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": {"name": name}, "spec": spec}),
        );
    }
    // Cluster-scoped objects set by a test (the ClusterInformation), readable by anyone.
    if let Some(object) = seen
        .objects
        .get(&path)
        .filter(|_| path.starts_with("/apis/"))
    {
        return json_response(StatusCode::OK, object);
    }
    let watching = query_param(&query, "watch").is_some_and(|w| w == "true" || w == "1");
    if let Some(collection) = Collection::of(&path)
        .filter(|_| seen.forbidden.iter().any(|prefix| path.starts_with(prefix)))
    {
        let verb = if watching { "watch" } else { "list" };
        let namespace = collection.namespace.as_deref();
        return forbidden(&who, verb, &collection.group, &collection.plural, namespace);
    }
    if path == "/api/v1/namespaces" && !watching {
        if !seen.allowed(&who, "list", "", "namespaces", None, None) {
            return forbidden(&who, "list", "", "namespaces", None);
        }
        let items = seen
            .all_namespaces()
            .into_iter()
            .map(
                |name| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .collect();
        return list("v1", "NamespaceList", items);
    }
    if let Some(mut collection) = Collection::of(&path) {
        if seen.watched.serves(&collection) {
            let verb = if watching { "watch" } else { "list" };
            let namespace = collection.namespace.as_deref();
            if !seen.allowed(
                &who,
                verb,
                &collection.group,
                &collection.plural,
                None,
                namespace,
            ) {
                return forbidden(&who, verb, &collection.group, &collection.plural, namespace);
            }
            let tiered =
                collection.group == CALICO && TIERED_PLURALS.contains(&collection.plural.as_str());
            if tiered && seen.datastore == Datastore::ApiServer {
                let mut tiers = seen.readable_tiers(&who, verb, &collection.plural, namespace);
                let selector = query_param(&query, "labelSelector").unwrap_or_default();
                if let Some(asked) = selector.strip_prefix("projectcalico.org/tier=") {
                    tiers.retain(|tier| tier == asked);
                }
                if tiers.is_empty() {
                    let pseudo = format!("tier.{}", collection.plural);
                    return forbidden(&who, verb, CALICO, &pseudo, namespace);
                }
                collection.tiers = Some(tiers);
            }
            return match watching {
                false => seen.watched.list(&collection, &query),
                true => seen.watched.watch(&collection, &query),
            };
        }
    }
    let Some(api) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    if seen.forbidden.iter().any(|prefix| path.starts_with(prefix)) {
        let (verb, resource) = match (api.name, api.subresource) {
            (None, _) => ("list", api.resource.to_string()),
            (Some(_), Some(sub)) => ("create", format!("{}/{sub}", api.resource)),
            (Some(_), None) => ("get", api.resource.to_string()),
        };
        let subject = match api.name {
            Some(name) => format!("{} \"{name}\"", api.resource),
            None => api.resource.to_string(),
        };
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" \
                 in API group \"\" in the namespace \"{}\"",
                who.user, api.namespace
            ),
        );
    }
    let not_found = |name: &str| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} \"{name}\" not found", api.resource),
        )
    };
    match (api.name, api.subresource) {
        (Some(name), None) => match seen.objects.get(&path) {
            Some(object) => json_response(StatusCode::OK, object),
            None => not_found(name),
        },
        (Some(pod), Some("portforward")) => {
            if !seen
                .objects
                .contains_key(&object_path(api.namespace, "pods", pod))
            {
                return not_found(pod);
            }
            let Some(port) = query_param(&query, "ports").and_then(|p| p.parse::<u16>().ok())
            else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "query parameter \"port\" is required".into(),
                );
            };
            let target = seen
                .forwards
                .get(&(api.namespace.to_string(), pod.to_string(), port))
                .copied();
            let pod = pod.to_string();
            drop(seen);
            upgrade(request, port, pod, target)
        }
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        ),
    }
}

/// Whether an equality selector (`k=v,k2=v2`) selects these labels.
fn selects(selector: &str, pod_labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|term| !term.is_empty())
        .all(|term| match term.split_once('=') {
            Some((key, value)) => pod_labels[key].as_str() == Some(value),
            None => false,
        })
}

/// Switches to a WebSocket if the client asked for one in the channel protocol, then relays.
fn upgrade(
    request: Request<Incoming>,
    port: u16,
    pod: String,
    target: Option<SocketAddr>,
) -> Response<Body> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let offered = header("sec-websocket-protocol");
    if !header("upgrade").eq_ignore_ascii_case("websocket")
        || !offered.split(',').any(|p| p.trim() == CHANNEL_PROTOCOL)
    {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("expected a WebSocket upgrade offering {CHANNEL_PROTOCOL}, got {offered:?}"),
        );
    }
    let accept = derive_accept_key(header("sec-websocket-key").as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        relay(socket, port, pod, target).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", CHANNEL_PROTOCOL)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap()
}

/// One port's data (channel 0) and error (channel 1) channels over the WebSocket.
async fn relay(
    socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    port: u16,
    pod: String,
    target: Option<SocketAddr>,
) {
    let (mut sink, mut messages) = socket.split();
    let [low, high] = port.to_le_bytes();
    for channel in [0u8, 1] {
        if sink
            .send(Message::binary(vec![channel, low, high]))
            .await
            .is_err()
        {
            return;
        }
    }
    let connected = match target {
        Some(address) => TcpStream::connect(address).await.map_err(|e| e.to_string()),
        None => Err("connection refused".to_string()),
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(e) => {
            let mut message = vec![1u8];
            message.extend(
                format!("error forwarding port {port} to pod {pod}: failed to connect: {e}")
                    .into_bytes(),
            );
            let _ = sink.send(Message::binary(message)).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let upstream = async move {
        while let Some(Ok(message)) = messages.next().await {
            match message {
                Message::Binary(data) if data.first() == Some(&0) => {
                    if to_pod.write_all(&data[1..]).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                _ => continue,
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match from_pod.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut message = Vec::with_capacity(n + 1);
                    message.push(0u8);
                    message.extend_from_slice(&buffer[..n]);
                    if sink.send(Message::binary(message)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(upstream, downstream);
}

/// A collection of a watched kind: `/apis/GROUP/VERSION/PLURAL` (every namespace, or cluster-scoped)
/// or `/apis/GROUP/VERSION/namespaces/NS/PLURAL`; core kinds under `/api/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Collection {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    /// Only the policies of these tiers (Calico's API server filters reads so).
    tiers: Option<BTreeSet<String>>,
}

impl Collection {
    fn of(path: &str) -> Option<Collection> {
        let (group, rest) = match path.strip_prefix("/apis/") {
            Some(rest) => rest.split_once('/')?,
            None => ("", path.strip_prefix("/api/")?),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let (version, namespace, plural) = match parts.as_slice() {
            [version, plural] => (*version, None, *plural),
            [version, "namespaces", namespace, plural] => {
                (*version, Some(namespace.to_string()), *plural)
            }
            _ => return None,
        };
        Some(Collection {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            namespace,
            tiers: None,
        })
    }
}

/// The plural of each watched kind, by `apiVersion` and `kind`.
const WATCHED_KINDS: &[(&str, &str, &str)] = &[
    ("projectcalico.org/v3", "Tier", "tiers"),
    ("projectcalico.org/v3", "NetworkPolicy", "networkpolicies"),
    (
        "projectcalico.org/v3",
        "GlobalNetworkPolicy",
        "globalnetworkpolicies",
    ),
    (
        "projectcalico.org/v3",
        "StagedNetworkPolicy",
        "stagednetworkpolicies",
    ),
    (
        "projectcalico.org/v3",
        "StagedGlobalNetworkPolicy",
        "stagedglobalnetworkpolicies",
    ),
    (
        "projectcalico.org/v3",
        "StagedKubernetesNetworkPolicy",
        "stagedkubernetesnetworkpolicies",
    ),
    ("projectcalico.org/v3", "NetworkSet", "networksets"),
    (
        "projectcalico.org/v3",
        "GlobalNetworkSet",
        "globalnetworksets",
    ),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ("v1", "Namespace", "namespaces"),
    ("v1", "Pod", "pods"),
    (
        "policy.networking.k8s.io/v1alpha1",
        "AdminNetworkPolicy",
        "adminnetworkpolicies",
    ),
    (
        "policy.networking.k8s.io/v1alpha1",
        "BaselineAdminNetworkPolicy",
        "baselineadminnetworkpolicies",
    ),
    (
        "policy.networking.k8s.io/v1alpha2",
        "ClusterNetworkPolicy",
        "clusternetworkpolicies",
    ),
];

const TIERED_PLURALS: &[&str] = &[
    "networkpolicies",
    "globalnetworkpolicies",
    "stagednetworkpolicies",
    "stagedglobalnetworkpolicies",
];

/// Calico's policy kinds that live in tiers (calico.md 4.7).
const TIERED: &[&str] = &[
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy",
];

/// The tier of a Calico policy of a tiered kind (`default` when it names none).
fn tier_of(object: &Value) -> Option<&str> {
    let tiered = object["apiVersion"] == "projectcalico.org/v3"
        && TIERED.iter().any(|kind| object["kind"] == *kind);
    tiered.then(|| object["spec"]["tier"].as_str().unwrap_or("default"))
}

/// One watch event, as its JSON line.
#[derive(Clone)]
struct Event {
    version: u64,
    group: String,
    plural: String,
    namespace: Option<String>,
    /// A tiered policy's tier.
    tier: Option<String>,
    line: Bytes,
}

/// The watched collections: objects, the event log since the last compaction, and the
/// channels open watches listen on.
struct Watched {
    version: u64,
    /// By (apiVersion, plural, namespace, name).
    objects: BTreeMap<(String, String, String, String), Value>,
    events: Vec<Event>,
    /// Events before this version were compacted away.
    oldest: u64,
    sender: tokio::sync::broadcast::Sender<Event>,
    closed: tokio::sync::watch::Sender<u64>,
    generation: u64,
}

impl Default for Watched {
    fn default() -> Watched {
        Watched {
            version: 100,
            objects: BTreeMap::new(),
            events: Vec::new(),
            oldest: 0,
            sender: tokio::sync::broadcast::channel(1024).0,
            closed: tokio::sync::watch::channel(0).0,
            generation: 0,
        }
    }
}

impl Watched {
    /// A cluster serves Calico's API and the admin network policies' only once it holds one of
    /// their objects (as one without Calico's API server or those CRDs): until then their lists
    /// answer 404.
    fn serves(&self, collection: &Collection) -> bool {
        let api_version = match collection.group.as_str() {
            "" => collection.version.clone(),
            group => format!("{group}/{}", collection.version),
        };
        WATCHED_KINDS
            .iter()
            .any(|(v, _, plural)| *v == api_version && *plural == collection.plural)
            && (matches!(collection.group.as_str(), "" | "networking.k8s.io")
                || self.objects.keys().any(|(v, ..)| *v == api_version))
    }

    /// Discovery, as kubectl reads it before anything else: the API groups, and each
    /// group-version's resources (the watched kinds, and the core ones this fake serves).
    fn discovery(&self, path: &str) -> Option<Value> {
        let resource = |plural: &str, kind: &str, namespaced: bool, verbs: &[&str]| {
            json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind,
                   "verbs": verbs})
        };
        let list_watch = [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ];
        let cluster_scoped = [
            "AdminNetworkPolicy",
            "BaselineAdminNetworkPolicy",
            "ClusterNetworkPolicy",
            "Tier",
            "GlobalNetworkPolicy",
            "StagedGlobalNetworkPolicy",
            "GlobalNetworkSet",
            "Namespace",
        ];
        let resources = |api_version: &str| -> Vec<Value> {
            WATCHED_KINDS
                .iter()
                .filter(|(v, ..)| *v == api_version)
                .map(|(_, kind, plural)| {
                    resource(plural, kind, !cluster_scoped.contains(kind), &list_watch)
                })
                .collect()
        };
        let group = |name: &str, version: &str| {
            let gv = format!("{name}/{version}");
            json!({"name": name, "versions": [{"groupVersion": gv, "version": version}],
                   "preferredVersion": {"groupVersion": gv, "version": version}})
        };
        Some(match path {
            "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": []}),
            "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                group("projectcalico.org", "v3"), group("networking.k8s.io", "v1"),
                group("authorization.k8s.io", "v1"), group("authentication.k8s.io", "v1")]}),
            "/api/v1" => {
                let mut core = resources("v1");
                core.push(resource("services", "Service", true, &["get"]));
                json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": core})
            }
            "/apis/projectcalico.org/v3" | "/apis/networking.k8s.io/v1" => {
                let group_version = path.trim_start_matches("/apis/");
                json!({"kind": "APIResourceList", "apiVersion": "v1",
                       "groupVersion": group_version, "resources": resources(group_version)})
            }
            "/apis/authorization.k8s.io/v1" => json!({"kind": "APIResourceList",
                "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1", "resources": [
                    resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", false, &["create"]),
                    resource("selfsubjectrulesreviews", "SelfSubjectRulesReview", false, &["create"])]}),
            "/apis/authentication.k8s.io/v1" => json!({"kind": "APIResourceList",
                "apiVersion": "v1", "groupVersion": "authentication.k8s.io/v1", "resources": [
                    resource("selfsubjectreviews", "SelfSubjectReview", false, &["create"])]}),
            _ => return None,
        })
    }

    fn write(&mut self, mut object: Value, delete: bool) {
        let api_version = object["apiVersion"].as_str().unwrap().to_string();
        let kind = object["kind"].as_str().unwrap();
        let plural = WATCHED_KINDS
            .iter()
            .find(|(v, k, _)| *v == api_version && *k == kind)
            .map(|(_, _, plural)| plural.to_string())
            .unwrap_or_else(|| panic!("{api_version} {kind} is not a watched kind"));
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let key = (api_version.clone(), plural.clone(), namespace.clone(), name);
        // As Calico's API server does, a policy carries its tier as a label too.
        if let Some(tier) = tier_of(&object).map(str::to_string) {
            object["metadata"]["labels"]["projectcalico.org/tier"] = json!(tier);
        }
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let kind = match (delete, self.objects.contains_key(&key)) {
            (true, _) => {
                self.objects.remove(&key);
                "DELETED"
            }
            (false, true) => "MODIFIED",
            (false, false) => "ADDED",
        };
        if !delete {
            self.objects.insert(key, object.clone());
        }
        let event = Event {
            version: self.version,
            group: api_version
                .rsplit_once('/')
                .map_or("", |(g, _)| g)
                .to_string(),
            plural,
            namespace: (!namespace.is_empty()).then_some(namespace),
            tier: tier_of(&object).map(str::to_string),
            line: Bytes::from(format!("{}\n", json!({"type": kind, "object": object}))),
        };
        self.events.push(event.clone());
        let _ = self.sender.send(event);
    }

    fn compact(&mut self) {
        self.events.clear();
        self.oldest = self.version + 1;
    }

    fn in_collection(
        collection: &Collection,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        tier: Option<&str>,
    ) -> bool {
        collection.group == group
            && collection.plural == plural
            && (collection.namespace.is_none() || collection.namespace.as_deref() == namespace)
            && collection
                .tiers
                .as_ref()
                .is_none_or(|tiers| tier.is_some_and(|t| tiers.contains(t)))
    }

    /// The collection's objects, those an equality `labelSelector` selects.
    fn list(&self, collection: &Collection, query: &str) -> Response<Body> {
        let wanted = query_param(query, "labelSelector").unwrap_or_default();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((api_version, plural, namespace, _), object)| {
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let namespace = (!namespace.is_empty()).then_some(namespace.as_str());
                Watched::in_collection(collection, group, plural, namespace, tier_of(object))
                    && selects(&wanted, &object["metadata"]["labels"])
            })
            .map(|(_, object)| object.clone())
            .collect();
        json_response(
            StatusCode::OK,
            &json!({"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": self.version.to_string()}, "items": items}),
        )
    }

    /// Events after the asked resourceVersion, then every new one as it happens, with a bookmark
    /// each second when asked for; an ERROR event (410 Expired) for a version compacted away.
    fn watch(&self, collection: &Collection, query: &str) -> Response<Body> {
        let from: u64 = query_param(query, "resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.version);
        let bookmarks = query_param(query, "allowWatchBookmarks").is_some_and(|b| b == "true");
        let (lines, receiver) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        if from + 1 < self.oldest {
            let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {from} ({})", self.oldest)}});
            let _ = lines.send(Bytes::from(format!("{gone}\n")));
        } else {
            let wanted = |event: &Event| {
                event.version > from
                    && Watched::in_collection(
                        collection,
                        &event.group,
                        &event.plural,
                        event.namespace.as_deref(),
                        event.tier.as_deref(),
                    )
            };
            for event in self.events.iter().filter(|e| wanted(e)) {
                let _ = lines.send(event.line.clone());
            }
            let mut events = self.sender.subscribe();
            let mut closed = self.closed.subscribe();
            let collection = collection.clone();
            let mut version = self.version;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    // A closed watch sends nothing more, even what was written as it closed.
                    tokio::select! {
                        biased;
                        _ = closed.changed() => return,
                        event = events.recv() => match event {
                            Ok(event) => {
                                version = event.version;
                                if Watched::in_collection(&collection, &event.group, &event.plural, event.namespace.as_deref(), event.tier.as_deref())
                                    && lines.send(event.line).is_err()
                                {
                                    return;
                                }
                            }
                            Err(_) => return,
                        },
                        _ = tick.tick(), if bookmarks => {
                            let bookmark = json!({"type": "BOOKMARK", "object": {
                                "kind": "Bookmark", "apiVersion": "v1",
                                "metadata": {"resourceVersion": version.to_string()}}});
                            if lines.send(Bytes::from(format!("{bookmark}\n"))).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            let line = receiver.recv().await?;
            Some((
                Ok::<_, std::convert::Infallible>(Frame::data(line)),
                receiver,
            ))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap()
    }
}
