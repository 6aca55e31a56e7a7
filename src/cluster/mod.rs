//! The Kubernetes API, at the edge: a client from the user's kubeconfig, and what flowtrace asks
//! of the cluster (port-forwards to Calico's services, the credentials Goldmane wants).
//! Every failure becomes a sentence that names the object and what the cluster said.

pub mod access;
pub mod calico_tls;
pub mod flow_server;
pub mod following;
pub mod policies;
pub mod port_forward;
pub mod scope_watch;

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::errors::error_chain;
use crate::fix::Naming;

/// Which cluster to talk to, and as whom: kubectl's `--kubeconfig` and `--context` (else
/// `$KUBECONFIG` or `~/.kube/config` and its current context), `--as`, `--as-group` and
/// `--request-timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTarget {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The user to impersonate (kubectl's `--as`).
    pub impersonate: Option<String>,
    /// The groups to impersonate (kubectl's `--as-group`, repeatable).
    pub impersonate_groups: Vec<String>,
    /// How long one request may take; `None`: no limit (kubectl's `--request-timeout 0`).
    pub request_timeout: Option<Duration>,
    /// Namespaces asked for (`-n`): checked even when the user may not list namespaces, as the
    /// context's is.
    pub namespaces: Vec<String>,
}

/// kubectl's `--request-timeout`: a duration (`30s`, `2m`, `1h`), or `0` for no limit (zero).
pub fn request_timeout(text: &str) -> Result<Duration, String> {
    match crate::store::filter::parse_duration(text.trim()) {
        Some(seconds) => Ok(Duration::from_secs(seconds.max(0) as u64)),
        None if text.trim() == "0" => Ok(Duration::ZERO),
        None => Err(format!(
            "{text:?} is not a duration (e.g. 30s, 2m, 1h, or 0)"
        )),
    }
}

/// A runtime for a command's calls to the cluster, made when it needs one.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Long enough for a slow VPN, short enough that a cluster that does not answer is said soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why there is no client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No kubeconfig at all: the user has no cluster (the main job then runs the demo).
    NotConfigured(String),
    /// A cluster is configured but cannot be used: an unreadable kubeconfig, an unknown context,
    /// no flow server found.
    Failed(String),
    /// The cluster at `server` did not answer, or refused.
    Cluster { server: String, error: ClusterError },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NotConfigured(reason) => write!(
                f,
                "no cluster configured ({reason}): set $KUBECONFIG or pass --kubeconfig"
            ),
            ConnectError::Failed(reason) => f.write_str(reason),
            ConnectError::Cluster { server, error } => match error.kind {
                ClusterErrorKind::Unreachable => {
                    write!(
                        f,
                        "could not reach the cluster at {server}: {}",
                        error.detail
                    )
                }
                _ => error.fmt(f),
            },
        }
    }
}

/// How a request to the cluster failed, for a caller to branch on (a 403 means "not allowed to
/// see this", a 404 "not there", no answer "the cluster is away").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterErrorKind {
    /// 404.
    NotFound,
    /// 401: the credentials were not accepted.
    Unauthorized,
    /// 403: RBAC does not allow it.
    Forbidden,
    /// 422: the object sent is invalid (a server-side apply's validation).
    Invalid,
    /// 409: another field manager owns what was changed (a server-side apply's conflict).
    Conflict,
    /// Any other status the API server answered with.
    Refused(u16),
    /// No answer: DNS, TCP, TLS, a timeout.
    Unreachable,
}

/// A failed request to the cluster: what was asked for, how it failed, and what the cluster (or
/// the connection) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError {
    /// The object or request, as `service calico-system/goldmane`.
    pub what: String,
    pub kind: ClusterErrorKind,
    pub detail: String,
}

impl ClusterError {
    pub fn from_kube(what: impl Into<String>, error: &kube::Error) -> ClusterError {
        use ClusterErrorKind::*;
        let (kind, detail) = match error {
            kube::Error::Api(status) => (
                match status.code {
                    404 => NotFound,
                    401 => Unauthorized,
                    403 => Forbidden,
                    422 => Invalid,
                    409 => Conflict,
                    code => Refused(code),
                },
                status.message.clone(),
            ),
            other => (Unreachable, error_chain(other)),
        };
        ClusterError {
            what: what.into(),
            kind,
            detail,
        }
    }
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, detail) = (&self.what, &self.detail);
        match self.kind {
            ClusterErrorKind::NotFound => write!(f, "{what} not found"),
            ClusterErrorKind::Unauthorized => write!(
                f,
                "the cluster did not accept your credentials asking for {what}: {detail}"
            ),
            ClusterErrorKind::Unreachable => write!(f, "could not ask for {what}: {detail}"),
            _ => write!(f, "the cluster refused {what}: {detail}"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<ConnectError> for String {
    fn from(error: ConnectError) -> String {
        error.to_string()
    }
}

/// A client for the target cluster, once the cluster has answered: a missing kubeconfig, an
/// unknown context, bad credentials and an unreachable server are each said here, by name.
pub async fn connect(target: &ClusterTarget) -> Result<Client, ConnectError> {
    use ConnectError::Failed;
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Some(
            Kubeconfig::read_from(path)
                .map_err(|e| Failed(format!("reading kubeconfig {}: {e}", path.display())))?,
        ),
        // A $KUBECONFIG that names no readable file is a mistake to report, not "no cluster".
        None => match std::env::var("KUBECONFIG") {
            Ok(named) if !named.is_empty() => Some(from_kubeconfig_env(&named)?),
            _ => match Kubeconfig::read() {
                Ok(kubeconfig) => Some(kubeconfig),
                // In a pod, as kubectl: its service account.
                Err(_) if in_a_pod() => None,
                Err(e) => return Err(ConnectError::NotConfigured(e.to_string())),
            },
        },
    };
    let mut config = match kubeconfig {
        Some(kubeconfig) => Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                Failed(match &target.context {
                    Some(context) => format!("kubeconfig context {context:?}: {e}"),
                    None => format!("kubeconfig: {e}"),
                })
            })?,
        None => Config::incluster()
            .map_err(|e| Failed(format!("in-cluster config (no kubeconfig, in a pod): {e}")))?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = target.request_timeout;
    if target.impersonate.is_some() {
        config.auth_info.impersonate = target.impersonate.clone();
    }
    if !target.impersonate_groups.is_empty() {
        config.auth_info.impersonate_groups = Some(target.impersonate_groups.clone());
    }
    let server = redact(&config.cluster_url.to_string());
    let client = Client::try_from(config)
        .map_err(|e| Failed(format!("setting up the Kubernetes client: {e}")))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| ConnectError::Cluster {
            error: ClusterError::from_kube(format!("the version of the cluster at {server}"), &e),
            server,
        })?;
    Ok(client)
}

/// Whether flowtrace runs in a pod (Kubernetes sets these in every container).
fn in_a_pod() -> bool {
    ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        .iter()
        .all(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// The kubeconfig context `target` talks to: `--context`, else the kubeconfig's current one.
/// `None` when there is no kubeconfig to read.
pub fn context_name(target: &ClusterTarget) -> Option<String> {
    match &target.context {
        Some(context) => Some(context.clone()),
        None => kubeconfig_of(target)?.current_context,
    }
}

/// The Calico version the target cluster runs (its ClusterInformation's `calicoVersion`, e.g.
/// `v3.31.2`), or why it is not known: fixes name policies as that version does.
pub fn calico_version(target: &ClusterTarget) -> Result<String, String> {
    let resource = kube::api::ApiResource {
        group: "projectcalico.org".into(),
        version: "v3".into(),
        api_version: "projectcalico.org/v3".into(),
        kind: "ClusterInformation".into(),
        plural: "clusterinformations".into(),
    };
    runtime()?.block_on(async {
        let client = connect(target).await.map_err(|e| e.to_string())?;
        let info = kube::Api::<kube::api::DynamicObject>::all_with(client, &resource)
            .get("default")
            .await
            .map_err(|e| ClusterError::from_kube("clusterinformations/default", &e).to_string())?;
        info.data["spec"]["calicoVersion"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "clusterinformations/default names no calicoVersion".to_string())
    })
}

/// How fixes name policies: as the Calico version `asked` (a flag, a setting), else as the
/// configured cluster's version does when it can be read, else as up to 3.31 (`<tier>.<name>`);
/// what to tell the user of it when the cluster decided.
pub fn fix_naming(
    asked: Option<&str>,
    target: &ClusterTarget,
    configured: bool,
) -> Result<(Naming, Option<String>), String> {
    if let Some(version) = asked {
        let naming = Naming::for_version(version)
            .ok_or_else(|| format!("{version:?} is not a Calico version (e.g. 3.31)"))?;
        return Ok((naming, None));
    }
    if !configured {
        return Ok((Naming::TierPrefix, None));
    }
    Ok(match calico_version(target) {
        Ok(version) => match Naming::for_version(&version) {
            Some(naming) => (naming, Some(format!("naming policies as Calico {version}, the cluster's, does"))),
            None => (Naming::TierPrefix, Some(format!("the cluster's Calico version {version:?} is not one flowtrace reads: naming policies as up to 3.31 (<tier>.<name>)"))),
        },
        Err(why) => (
            Naming::TierPrefix,
            Some(format!(
                "the cluster's Calico version is not known ({why}): naming policies as up to 3.31 \
                 (<tier>.<name>); --calico-version names another"
            )),
        ),
    })
}

/// Which context and which cluster `target` talks to, as a status bar says it: `context prod`,
/// or `context prod, cluster eks-eu-1` when the cluster is named otherwise.
pub fn context_label(target: &ClusterTarget) -> Option<String> {
    let name = context_name(target)?;
    let cluster = context_of(target).map(|context| context.cluster);
    Some(match cluster {
        Some(cluster) if !cluster.is_empty() && cluster != name => {
            format!("context {name}, cluster {cluster}")
        }
        _ => format!("context {name}"),
    })
}

/// The context `target` talks to, as the kubeconfig defines it.
fn context_of(target: &ClusterTarget) -> Option<kube::config::Context> {
    let kubeconfig = kubeconfig_of(target)?;
    let name = target.context.clone().or(kubeconfig.current_context)?;
    kubeconfig
        .contexts
        .into_iter()
        .find(|named| named.name == name)?
        .context
}

/// The namespace the context `target` talks to names, if it names one (kubectl's default for
/// `-n`).
fn context_namespace(target: &ClusterTarget) -> Option<String> {
    context_of(target)?
        .namespace
        .filter(|namespace| !namespace.is_empty())
}

/// The namespaces a view shows, as kubectl's `-n` and `-A` choose them: those `named`; with
/// `all`, or flows that may come from elsewhere (not `from_cluster`: the demo, a file), every one
/// the user may see (none named); else the one `target`'s context names, if it names one, with a
/// note saying so.
pub fn view_namespaces(
    named: &[String],
    all: bool,
    from_cluster: bool,
    target: &ClusterTarget,
) -> (Vec<String>, Option<String>) {
    if !named.is_empty() || all || !from_cluster {
        return (named.to_vec(), None);
    }
    match context_namespace(target) {
        Some(namespace) => (
            vec![namespace.clone()],
            Some(format!(
                "showing namespace {namespace}, the context's (-A: every namespace you may see)"
            )),
        ),
        None => (Vec::new(), None),
    }
}

/// The kubeconfig `target` reads; `None` when there is none to read.
fn kubeconfig_of(target: &ClusterTarget) -> Option<Kubeconfig> {
    match &target.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).ok(),
        None => match std::env::var("KUBECONFIG") {
            Ok(named) if !named.is_empty() => from_kubeconfig_env(&named).ok(),
            _ => Kubeconfig::read().ok(),
        },
    }
}

/// `$KUBECONFIG`'s files merged as kubectl merges them (the first to set a value wins), the ones
/// that do not exist left out as kubectl leaves them out; an error when none exists or one cannot
/// be read.
fn from_kubeconfig_env(named: &str) -> Result<Kubeconfig, ConnectError> {
    let existing: Vec<PathBuf> = std::env::split_paths(named)
        .filter(|path| !path.as_os_str().is_empty() && path.exists())
        .collect();
    if existing.is_empty() {
        return Err(ConnectError::Failed(format!(
            "$KUBECONFIG ({named}) names no file that exists"
        )));
    }
    existing
        .iter()
        .try_fold(Kubeconfig::default(), |merged, path| {
            Kubeconfig::read_from(path)
                .and_then(|file| merged.merge(file))
                .map_err(|e| ConnectError::Failed(format!("$KUBECONFIG: {}: {e}", path.display())))
        })
}

/// A server URL without the credentials a kubeconfig may carry in it (`https://user:pass@host`):
/// what flowtrace prints and shows never holds a password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// What went wrong asking the cluster for `what` (e.g. `service calico-system/goldmane`).
pub fn describe_error(what: &str, error: &kube::Error) -> String {
    ClusterError::from_kube(what, error).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_context_is_the_flag_else_the_kubeconfigs_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: prod-east\ncontexts:\n- name: prod-east\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\n",
        )
        .unwrap();
        let target = ClusterTarget {
            kubeconfig: Some(path.clone()),
            ..ClusterTarget::default()
        };
        assert_eq!(context_name(&target).as_deref(), Some("prod-east"));
        let chosen = ClusterTarget {
            context: Some("staging".into()),
            ..target.clone()
        };
        assert_eq!(context_name(&chosen).as_deref(), Some("staging"));
        assert_eq!(
            context_label(&target).as_deref(),
            Some("context prod-east, cluster c")
        );
        let missing = ClusterTarget {
            kubeconfig: Some(dir.path().join("none")),
            ..ClusterTarget::default()
        };
        assert_eq!(context_name(&missing), None);
    }

    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.to_string(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn credentials_in_a_server_url_are_never_shown() {
        assert_eq!(
            redact("https://admin:s3cret@10.0.0.1:6443/"),
            "https://***@10.0.0.1:6443/"
        );
        assert_eq!(
            redact("https://10.0.0.1:6443/a@b"),
            "https://10.0.0.1:6443/a@b"
        );
        assert_eq!(redact("http://127.0.0.1:1/"), "http://127.0.0.1:1/");
    }

    #[test]
    fn a_caller_can_tell_forbidden_from_missing_from_unreachable() {
        use ClusterErrorKind::*;
        let kind = |error: &kube::Error| ClusterError::from_kube("x", error).kind;
        assert_eq!(kind(&api_error(403, "forbidden")), Forbidden);
        assert_eq!(kind(&api_error(404, "gone")), NotFound);
        assert_eq!(kind(&api_error(401, "who")), Unauthorized);
        assert_eq!(kind(&api_error(422, "bad")), Invalid);
        assert_eq!(kind(&api_error(409, "owned")), Conflict);
        assert_eq!(kind(&api_error(500, "boom")), Refused(500));
        let unreachable =
            kube::Error::Service(Box::new(std::io::Error::other("connection refused")));
        let error = ClusterError::from_kube(
            "the version of the cluster at https://127.0.0.1:1",
            &unreachable,
        );
        assert_eq!(error.kind, Unreachable);
        let text = error.to_string();
        assert!(
            text.starts_with(
                "could not ask for the version of the cluster at https://127.0.0.1:1: "
            ) && text.ends_with("connection refused"),
            "{text}"
        );
    }

    #[test]
    fn errors_name_the_object_and_what_the_cluster_said() {
        assert_eq!(
            describe_error("service calico-system/goldmane", &api_error(404, "x")),
            "service calico-system/goldmane not found"
        );
        let forbidden = describe_error(
            "a port-forward to pod calico-system/goldmane-1",
            &api_error(403, "pods \"goldmane-1\" is forbidden"),
        );
        assert_eq!(
            describe_error(
                "service calico-system/goldmane",
                &api_error(401, "Unauthorized")
            ),
            "the cluster did not accept your credentials asking for service \
             calico-system/goldmane: Unauthorized"
        );
        assert_eq!(
            forbidden,
            "the cluster refused a port-forward to pod calico-system/goldmane-1: \
             pods \"goldmane-1\" is forbidden"
        );
    }
}
