//! Goldmane's mutual-TLS material as the cluster holds it, for a user who passed no files: the
//! operator's CA bundle (ConfigMap `tigera-ca-bundle`) and a client certificate the operator
//! signed (Secret `node-certs`, as Goldmane's own README suggests). Both live in Calico's namespace.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::describe_error;
use crate::source::goldmane::Pem;

const CA_BUNDLE: &str = "tigera-ca-bundle";
/// Recent operators write `ca.crt`; older ones only `tigera-ca-bundle.crt`.
const CA_BUNDLE_KEYS: [&str; 2] = ["tigera-ca-bundle.crt", "ca.crt"];
const CLIENT_SECRET: &str = "node-certs";

/// The CA that signed Goldmane's certificate.
pub async fn ca_bundle(client: &Client, namespace: &str) -> Result<Pem, String> {
    let what = format!("configmap {namespace}/{CA_BUNDLE}");
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get(CA_BUNDLE)
        .await
        .map_err(|e| describe_error(&what, &e))?;
    let data = map.data.unwrap_or_default();
    CA_BUNDLE_KEYS
        .iter()
        .find_map(|key| {
            data.get(*key).map(|pem| Pem::Text {
                origin: format!("{what} key {key}"),
                pem: pem.clone().into_bytes(),
            })
        })
        .ok_or_else(|| format!("{what} has neither {}", CA_BUNDLE_KEYS.join(" nor ")))
}

/// A client certificate and its key.
pub async fn client_certificate(client: &Client, namespace: &str) -> Result<(Pem, Pem), String> {
    let what = format!("secret {namespace}/{CLIENT_SECRET}");
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(CLIENT_SECRET)
        .await
        .map_err(|e| {
            format!(
                "Goldmane requires a client certificate (mTLS): pass --goldmane-cert and \
                 --goldmane-key, or be allowed to read {what} ({})",
                describe_error(&what, &e)
            )
        })?;
    let data = secret.data.unwrap_or_default();
    let field = |key: &str| {
        data.get(key)
            .map(|bytes| Pem::Text {
                origin: format!("{what} key {key}"),
                pem: bytes.0.clone(),
            })
            .ok_or_else(|| format!("{what} has no {key}"))
    };
    Ok((field("tls.crt")?, field("tls.key")?))
}
