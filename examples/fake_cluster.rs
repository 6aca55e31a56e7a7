//! A fake Kubernetes API server for trying flowtrace's RBAC scope by hand, with the demo's
//! namespaces and tiers and three personas: `admin` (anything), `alice` (a developer who owns
//! namespace `customer` and may write tier `application`) and `bob` (a security engineer who sees
//! every namespace, reads every tier and writes `security`). It writes a kubeconfig per persona
//! and serves until interrupted:
//!
//! ```sh
//! cargo run --example fake_cluster -- /tmp/personas
//! KUBECONFIG=/tmp/personas/kubeconfig-alice kubectl flowtrace auth
//! KUBECONFIG=/tmp/personas/kubeconfig-alice flowtrace --source demo
//! KUBECONFIG=/tmp/personas/kubeconfig-bob flowtrace fix --flows FLOWS --line N
//! ```
//!
//! The server is the test suite's fake (tests/support/kube_api.rs), on 127.0.0.1 only.

#[path = "../tests/support/kube_api.rs"]
mod kube_api;

use kube_api::FakeApiServer;

#[tokio::main]
async fn main() {
    let asked = std::env::args().nth(1);
    if asked.as_deref().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: fake_cluster [FOLDER]  (writes kubeconfig-admin, -alice and -bob there; default /tmp/flowtrace-personas)");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(asked.unwrap_or_else(|| "/tmp/flowtrace-personas".into()));
    std::fs::create_dir_all(&dir).expect("the kubeconfig folder");
    let api = FakeApiServer::start().await;
    for namespace in [
        "customer",
        "summary",
        "database",
        "kube-system",
        "ingress-nginx",
    ] {
        api.add_namespace(namespace);
    }
    for tier in ["security", "platform", "application", "default"] {
        api.add_tier(tier);
    }
    api.add_personas("customer");
    // The demo's policies, as the cluster's: `flowtrace fix` without -m proposes against them.
    for (_, text) in flowtrace::source::demo::DemoCluster::new(1).manifests() {
        for document in serde_norway::Deserializer::from_str(text) {
            let object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
            if object.is_object() {
                api.apply(object);
            }
        }
    }

    for (user, namespace) in [
        ("admin", "default"),
        ("alice", "customer"),
        ("bob", "default"),
    ] {
        let path = api.kubeconfig_as(&dir, user, namespace);
        println!("{user}: KUBECONFIG={}", path.display());
    }
    println!("serving until interrupted (ctrl-c)");
    let _ = tokio::signal::ctrl_c().await;
}
