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

use flowtrace::source::goldmane::WireVersion;
use support::goldmane::{service_window, unix_now, FakeGoldmane, SERVICE_POLICY};

#[tokio::main]
async fn main() {
    let asked = std::env::args().nth(1);
    if asked.as_deref().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: fake_goldmane [FOLDER]  (writes the client certificate and a policy there; default /tmp/flowtrace-goldmane)");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(asked.unwrap_or_else(|| "/tmp/flowtrace-goldmane".into()));
    std::fs::create_dir_all(dir.join("manifests")).expect("the folder");
    let fake =
        FakeGoldmane::start(WireVersion::V3_32, vec![service_window(unix_now() - 600)]).await;
    for name in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::copy(fake.pki.path(name), dir.join(name)).expect("the certificates");
    }
    std::fs::write(dir.join("manifests/egress.yaml"), SERVICE_POLICY).expect("the policy");
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
