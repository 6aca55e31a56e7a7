//! A local port that reaches a Service through the Kubernetes API, as `kubectl port-forward
//! svc/NAME` does. Each connection accepted on 127.0.0.1 gets its own port-forward stream to a
//! ready pod behind the service. The pod is looked up again for every connection, so a restarted
//! Goldmane or Whisker is found without starting over.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort as ServicePortSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};

use super::describe_error;

/// A service's port: `calico-system/goldmane:7443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// A running forward: connect to `local` to reach the service.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub local: SocketAddr,
    pub service: ServicePort,
    /// The pod the first connection reached, for the status line.
    pub pod: String,
}

impl Forwarded {
    /// What the status line says about it (short: the state follows on the same line).
    pub fn describe(&self) -> String {
        format!(
            "port-forward to pod {}/{}",
            self.service.namespace, self.pod
        )
    }
}

/// A pod and its container port behind the service's port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodPort {
    pod: String,
    port: u16,
}

/// Starts forwarding: finds the pod and opens one stream first, so that a missing service, no
/// ready pod or an RBAC refusal is said now rather than as a failed connection later. The accept
/// loop runs on the current tokio runtime for as long as that runtime does.
pub async fn forward(client: Client, service: ServicePort) -> Result<Forwarded, String> {
    let target = find_pod_port(&client, &service).await?;
    drop(open_stream(&client, &service.namespace, &target).await?);
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("listening on 127.0.0.1 for the port-forward to {service}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("port-forward to {service}: {e}"))?;
    let forwarded = Forwarded {
        local,
        service: service.clone(),
        pod: target.pod,
    };
    tracing::info!(%service, pod = %forwarded.pod, %local, "port-forward ready");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((connection, _)) => {
                    tokio::spawn(relay(client.clone(), service.clone(), connection));
                }
                Err(e) => tracing::warn!(%service, "port-forward: accepting a connection: {e}"),
            }
        }
    });
    Ok(forwarded)
}

/// Carries one local connection to the service's pod and back, until either side closes.
async fn relay(client: Client, service: ServicePort, mut connection: TcpStream) {
    let result = async {
        let target = find_pod_port(&client, &service).await?;
        let (mut stream, pod_error) = open_stream(&client, &service.namespace, &target).await?;
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut connection, &mut stream) => {
                copied.map(|_| ()).map_err(|e| format!("pod {}: {e}", target.pod))
            }
            Some(message) = pod_error => Err(format!("pod {}: {message}", target.pod)),
        }
    }
    .await;
    if let Err(e) = result {
        // The client sees its connection close and retries; the reason goes to the log.
        tracing::warn!(%service, "port-forward: {e}");
    }
}

/// A byte stream to the pod's port, and what the pod side reports if it cannot connect.
async fn open_stream(
    client: &Client,
    namespace: &str,
    target: &PodPort,
) -> Result<
    (
        DuplexStream,
        impl std::future::Future<Output = Option<String>>,
    ),
    String,
> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut forwarder = pods
        .portforward(&target.pod, &[target.port])
        .await
        .map_err(|e| {
            describe_error(
                &format!("a port-forward to pod {namespace}/{}", target.pod),
                &e,
            )
        })?;
    let missing = || format!("port-forward to pod {namespace}/{}: no stream", target.pod);
    let stream = forwarder.take_stream(target.port).ok_or_else(missing)?;
    let pod_error = forwarder.take_error(target.port).ok_or_else(missing)?;
    Ok((stream, pod_error))
}

/// The pod to forward to and its container port, as kubectl chooses them: a running pod selected
/// by the service (a ready one first), and the service port's `targetPort` (a number, or a
/// container port's name).
async fn find_pod_port(client: &Client, service: &ServicePort) -> Result<PodPort, String> {
    let what = format!("service {}/{}", service.namespace, service.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &service.namespace);
    let found = services
        .get(&service.name)
        .await
        .map_err(|e| describe_error(&what, &e))?;
    let spec = found.spec.unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.port == i32::from(service.port))
        .ok_or_else(|| {
            let has: Vec<String> = ports.iter().map(|p| p.port.to_string()).collect();
            format!(
                "{what} has no port {} (it has {})",
                service.port,
                if has.is_empty() {
                    "none".to_string()
                } else {
                    has.join(", ")
                }
            )
        })?;
    let selector = spec.selector.unwrap_or_default();
    if selector.is_empty() {
        return Err(format!(
            "{what} has no pod selector, so there is no pod to forward to"
        ));
    }
    let selector_text = label_selector(&selector);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &service.namespace);
    let listed = pods
        .list(&ListParams::default().labels(&selector_text))
        .await
        .map_err(|e| describe_error(&format!("the pods of {what}"), &e))?;
    let pod = choose_pod(&listed.items)
        .ok_or_else(|| format!("no running pod behind {what} (pods matching {selector_text})"))?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let container_port = target_port(port, pod).ok_or_else(|| {
        format!(
            "pod {}/{name} has no container port for {what} port {}",
            service.namespace, service.port
        )
    })?;
    Ok(PodPort {
        pod: name,
        port: container_port,
    })
}

/// `k1=v1,k2=v2`: a service selector as a label selector.
fn label_selector(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// A running pod, a ready one if there is one.
fn choose_pod(pods: &[Pod]) -> Option<&Pod> {
    let running = || pods.iter().filter(|p| is_running(p));
    running().find(|p| is_ready(p)).or_else(|| running().next())
}

/// The container port a service port leads to in `pod`: `targetPort` as a number, or the
/// container port of that name; the service port itself when `targetPort` is unset.
fn target_port(port: &ServicePortSpec, pod: &Pod) -> Option<u16> {
    let number = match &port.target_port {
        None => port.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => {
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))?
                .container_port
        }
    };
    u16::try_from(number).ok().filter(|n| *n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};
    use kube::api::ObjectMeta;

    fn pod(name: &str, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "goldmane".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("grpc".into()),
                        container_port: 7443,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn a_ready_running_pod_is_chosen_first() {
        let pods = [
            pod("pending", "Pending", false),
            pod("starting", "Running", false),
            pod("ready", "Running", true),
        ];
        assert_eq!(
            choose_pod(&pods).unwrap().metadata.name.as_deref(),
            Some("ready")
        );
        assert_eq!(
            choose_pod(&pods[..2]).unwrap().metadata.name.as_deref(),
            Some("starting")
        );
        assert!(choose_pod(&pods[..1]).is_none());
    }

    #[test]
    fn target_ports_by_number_name_or_none() {
        let pod = pod("p", "Running", true);
        let port = |target: Option<IntOrString>| ServicePortSpec {
            port: 443,
            target_port: target,
            ..ServicePortSpec::default()
        };
        assert_eq!(target_port(&port(None), &pod), Some(443));
        assert_eq!(
            target_port(&port(Some(IntOrString::Int(8080))), &pod),
            Some(8080)
        );
        assert_eq!(
            target_port(&port(Some(IntOrString::String("grpc".into()))), &pod),
            Some(7443)
        );
        assert_eq!(
            target_port(&port(Some(IntOrString::String("metrics".into()))), &pod),
            None
        );
    }

    #[test]
    fn selectors_are_joined_in_key_order() {
        let selector = BTreeMap::from([
            ("k8s-app".to_string(), "goldmane".to_string()),
            ("app".to_string(), "x".to_string()),
        ]);
        assert_eq!(label_selector(&selector), "app=x,k8s-app=goldmane");
    }
}
