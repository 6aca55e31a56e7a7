//! A fake Goldmane for trying `flowtrace tail` by hand without a cluster: the test suite's fake
//! (tests/support/goldmane.rs, mutual TLS, Calico 3.32's wire, 127.0.0.1 only) holding a flow from
//! `shop/web-*` to the Service `payments/api`, with a policy that allows egress to that Service.
//! It writes the client certificate and the policy to a folder, prints the command to run, and
//! serves until interrupted:
//!
//! ```sh
//! cargo run --example fake_goldmane -- /tmp/goldmane
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use flowtrace::source::goldmane::proto::common;
use flowtrace::source::goldmane::WireVersion;
use support::goldmane::{unix_now, window, FakeGoldmane};

const POLICY: &str = "apiVersion: projectcalico.org/v3
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

#[tokio::main]
async fn main() {
    let asked = std::env::args().nth(1);
    if asked.as_deref().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: fake_goldmane [FOLDER]  (writes the client certificate and a policy there; default /tmp/flowtrace-goldmane)");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(asked.unwrap_or_else(|| "/tmp/flowtrace-goldmane".into()));
    std::fs::create_dir_all(dir.join("manifests")).expect("the folder");
    let mut flow = window("web-*", "payments", 8080, unix_now() - 600);
    let key = flow.key.as_mut().expect("a window has a key");
    key.reporter = common::Reporter::Src as i32;
    key.dest_service_name = "api".into();
    key.dest_service_namespace = "payments".into();
    key.dest_service_port = 8080;
    let fake = FakeGoldmane::start(WireVersion::V3_32, vec![flow]).await;
    for name in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::copy(fake.pki.path(name), dir.join(name)).expect("the certificates");
    }
    std::fs::write(dir.join("manifests/egress.yaml"), POLICY).expect("the policy");
    let d = dir.display();
    println!(
        "A fake Goldmane (3.32) serves on {}; try:\n",
        fake.address()
    );
    println!(
        "  flowtrace tail --source goldmane --goldmane-address {} --goldmane-ca {d}/ca.crt --goldmane-cert {d}/tls.crt \
         --goldmane-key {d}/tls.key --since 1h -m {d}/manifests\n",
        fake.address()
    );
    println!("Ctrl-C stops it.");
    std::future::pending::<()>().await
}
