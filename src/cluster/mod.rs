//! The Kubernetes API, at the edge: a client from the user's kubeconfig, and what flowtrace asks
//! of the cluster (port-forwards to Calico's services, the credentials Goldmane wants).
//! Every failure becomes a sentence that names the object and what the cluster said.

pub mod calico_tls;
pub mod flow_server;
pub mod port_forward;

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::errors::error_chain;

/// Which cluster to talk to: kubectl's `--kubeconfig` and `--context`, else `$KUBECONFIG` or
/// `~/.kube/config` and its current context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTarget {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// Long enough for a slow VPN, short enough that a cluster that does not answer is said soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why there is no client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No kubeconfig at all: the user has no cluster (the main job then runs the demo).
    NotConfigured(String),
    /// A cluster is configured but cannot be used: unknown context, refused, unreachable.
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NotConfigured(reason) => write!(
                f,
                "no cluster configured ({reason}): set $KUBECONFIG or pass --kubeconfig"
            ),
            ConnectError::Failed(reason) => f.write_str(reason),
        }
    }
}

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
        Some(path) => Kubeconfig::read_from(path)
            .map_err(|e| Failed(format!("reading kubeconfig {}: {e}", path.display())))?,
        None => Kubeconfig::read().map_err(|e| ConnectError::NotConfigured(e.to_string()))?,
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            Failed(match &target.context {
                Some(context) => format!("kubeconfig context {context:?}: {e}"),
                None => format!("kubeconfig: {e}"),
            })
        })?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| Failed(format!("setting up the Kubernetes client: {e}")))?;
    client.apiserver_version().await.map_err(|e| {
        Failed(match e {
            kube::Error::Api(_) => {
                describe_error(&format!("the version of the cluster at {server}"), &e)
            }
            other => format!(
                "could not reach the cluster at {server}: {}",
                error_chain(&other)
            ),
        })
    })?;
    Ok(client)
}

/// What went wrong asking the cluster for `what` (e.g. `service calico-system/goldmane`).
pub fn describe_error(what: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 404 => format!("{what} not found"),
        kube::Error::Api(status) if status.code == 401 => format!(
            "the cluster did not accept your credentials asking for {what}: {}",
            status.message
        ),
        kube::Error::Api(status) => {
            format!("the cluster refused {what}: {}", status.message)
        }
        other => format!("could not ask for {what}: {}", error_chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.to_string(),
            ..kube::core::Status::default()
        }))
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
