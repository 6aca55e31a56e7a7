//! Reaching Goldmane and Whisker through the Kubernetes API, as a user with a kubeconfig does:
//! flowtrace finds the service's pod and opens its own port-forward, and takes Goldmane's CA and
//! client certificate from the cluster. Against the fake API server in `support/kube_api.rs`,
//! with the fake Goldmane and Whisker behind the forwarded ports.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use flowtrace::cluster::port_forward::{self, ServicePort};
use flowtrace::cluster::{self, ClusterTarget};
use flowtrace::source::goldmane::WireVersion;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use support::goldmane::{unix_now, window, FakeGoldmane};
use support::kube_api::{FakeApiServer, Grant};
use support::process::KilledOnDrop;
use support::tmux::Tmux;
use support::whisker::{flow_response, https_front, FakeWhisker, StoredEvent};
use tokio::io::AsyncReadExt;

const CALICO: &str = "calico-system";

/// A fake cluster with Calico's `name` service (port `port`, selecting `k8s-app=name`) and one
/// ready pod behind it whose port is served at `serve` (if any).
async fn cluster_with(
    name: &str,
    pod: &str,
    port: u16,
    serve: Option<SocketAddr>,
) -> FakeApiServer {
    let api = FakeApiServer::start().await;
    api.add_service(
        CALICO,
        name,
        &[("k8s-app", name)],
        port,
        IntOrString::String("server".into()),
    );
    api.add_pod(CALICO, pod, &[("k8s-app", name)], &[("server", port)], true);
    if let Some(address) = serve {
        api.serve_pod_port(CALICO, pod, port, address);
    }
    api
}

/// A fake Whisker with these events, behind pod `whisker-0` of a fake cluster.
async fn whisker_in_a_cluster(events: Vec<StoredEvent>) -> (FakeWhisker, FakeApiServer) {
    let whisker = FakeWhisker::start(events).await;
    let api = cluster_with(
        "whisker",
        "whisker-0",
        8081,
        Some(socket_of(&whisker.url())),
    )
    .await;
    (whisker, api)
}

/// A cluster whose Whisker holds one flow, a home folder and a kubeconfig for it.
async fn one_flow_cluster(
    flow: serde_json::Value,
) -> (
    FakeWhisker,
    FakeApiServer,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let (whisker, api) = whisker_in_a_cluster(vec![StoredEvent::flow(&flow)]).await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    (whisker, api, home, kubeconfig)
}

fn socket_of(url: &str) -> SocketAddr {
    url.rsplit('/').next().unwrap().parse().unwrap()
}

/// Runs `flowtrace ARGS` with `kubeconfig` as $KUBECONFIG (or none at all) and a home of its own.
async fn flowtrace(kubeconfig: Option<&Path>, home: &Path, args: &[&str]) -> Output {
    let mut command = Command::cargo_bin("flowtrace").unwrap();
    command
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG");
    if let Some(path) = kubeconfig {
        command.env("KUBECONFIG", path);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A kubeconfig whose cluster is an address nothing listens on, and that address.
fn unreachable_kubeconfig(home: &Path) -> (std::path::PathBuf, SocketAddr) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = home.join("unreachable");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://{closed}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    (path, closed)
}

fn json_records(output: &Output) -> Vec<serde_json::Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr_of(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "fails as invalid input");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_reaches_whisker_through_its_own_port_forward() {
    let base = unix_now() - 600;
    let (_whisker, api) = whisker_in_a_cluster(
        (0..3)
            .map(|i| StoredEvent::flow(&flow_response("web-*", "backend", 8080, base + 15 * i)))
            .collect(),
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    let output = flowtrace(
        Some(&kubeconfig),
        home.path(),
        &["tail", "--source", "whisker", "--since", "1h", "-o", "json"],
    )
    .await;
    let records = json_records(&output);
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(records.iter().all(|r| r["dest_port"] == 8080));
    let requests = api.requests();
    assert!(
        requests.iter().any(|r| {
            r == "GET /api/v1/namespaces/calico-system/pods/whisker-0/portforward?&ports=8081"
                || r == "GET /api/v1/namespaces/calico-system/pods/whisker-0/portforward?ports=8081"
        }),
        "{requests:#?}"
    );
    assert!(requests.iter().any(
        |r| r.starts_with("GET /api/v1/namespaces/calico-system/pods?")
            && r.contains("labelSelector=k8s-app%3Dwhisker")
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_opens_on_the_namespace_the_context_names_as_kubectl_does() {
    let base = unix_now() - 600;
    let (_whisker, api) = whisker_in_a_cluster(
        ["backend", "payments", "backend"]
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                StoredEvent::flow(&flow_response("web-*", ns, 8080, base + 15 * i as i64))
            })
            .collect(),
    )
    .await;
    api.add_user("carol", &["system:masters"]);
    api.grant(Grant::new("system:masters", &["*"], "*", &["*"]));
    let home = tempfile::tempdir().unwrap();
    let in_payments = api.kubeconfig_as(home.path(), "carol", "payments");
    let tail = |extra: &'static [&'static str]| {
        let mut args = vec!["tail", "--source", "whisker", "--since", "1h", "-o", "json"];
        args.extend(extra);
        args
    };
    let dest_namespaces = |output: &Output| -> Vec<String> {
        json_records(output)
            .iter()
            .map(|r| r["dest_namespace"].as_str().unwrap().to_string())
            .collect()
    };
    let output = flowtrace(Some(&in_payments), home.path(), &tail(&[])).await;
    assert_eq!(dest_namespaces(&output), ["payments"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "showing namespace payments, the context's (-A: every namespace you may see)"
        ),
        "{stderr}"
    );
    let output = flowtrace(Some(&in_payments), home.path(), &tail(&["-A"])).await;
    assert_eq!(dest_namespaces(&output), ["backend", "payments", "backend"]);
    let output = flowtrace(Some(&in_payments), home.path(), &tail(&["-n", "backend"])).await;
    assert_eq!(dest_namespaces(&output), ["backend", "backend"]);
    // A context that names no namespace: every namespace the user may see.
    let unnamed = api.kubeconfig(home.path());
    let output = flowtrace(Some(&unnamed), home.path(), &tail(&[])).await;
    assert_eq!(dest_namespaces(&output).len(), 3);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("the context's"));
}

#[tokio::test(flavor = "multi_thread")]
async fn whisker_of_calico_3_33_is_reached_over_https_and_an_unverified_certificate_is_said() {
    let base = unix_now() - 600;
    let whisker = FakeWhisker::start(vec![StoredEvent::flow(&flow_response(
        "web-*", "backend", 8080, base,
    ))])
    .await;
    let (https, ca) = https_front(socket_of(&whisker.url())).await;
    // 3.33's service: port 8443, HTTPS only.
    let api = cluster_with("whisker", "whisker-0", 8443, Some(https)).await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    let tail = ["tail", "--source", "whisker", "--since", "1h", "-o", "json"];
    // The cluster holds no CA that signed it (self-signed, as far as flowtrace can tell): the
    // flows come, and the user is told plainly.
    let output = flowtrace(Some(&kubeconfig), home.path(), &tail).await;
    assert_eq!(json_records(&output).len(), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: Whisker's certificate cannot be verified (")
            && stderr.contains("the API server's port-forward authenticates the pod it reaches"),
        "{stderr}"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.contains("/pods/whisker-0/portforward") && r.contains("ports=8443")),
        "{:#?}",
        api.requests()
    );
    // With the CA in the cluster's bundle the certificate is verified, and nothing is said.
    api.add_config_map(CALICO, "tigera-ca-bundle", &[("tigera-ca-bundle.crt", &ca)]);
    let output = flowtrace(Some(&kubeconfig), home.path(), &tail).await;
    assert_eq!(json_records(&output).len(), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_reaches_goldmane_with_the_clusters_ca_and_client_certificate() {
    let base = unix_now() - 600;
    let goldmane = FakeGoldmane::start(
        WireVersion::V3_32,
        (0..4)
            .map(|i| window("web-*", "payments", 8080, base + 15 * i))
            .collect(),
    )
    .await;
    let api = cluster_with(
        "goldmane",
        "goldmane-6c8b7",
        7443,
        Some(socket_of(&goldmane.address())),
    )
    .await;
    api.add_config_map(
        CALICO,
        "tigera-ca-bundle",
        &[("tigera-ca-bundle.crt", &goldmane.pki.ca)],
    );
    api.add_secret(
        CALICO,
        "node-certs",
        &[
            ("tls.crt", &goldmane.pki.client_cert),
            ("tls.key", &goldmane.pki.client_key),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    // --kubeconfig and --context as kubectl takes them, with no $KUBECONFIG.
    let output = flowtrace(
        None,
        home.path(),
        &[
            "tail",
            "--source",
            "goldmane",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "fake",
            "--since",
            "1h",
            "-o",
            "json",
        ],
    )
    .await;
    let records = json_records(&output);
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| r["dest_namespace"] == "payments"));
    assert_eq!(goldmane.lists().len(), 1, "history came from Flows.List");
    let requests = api.requests();
    for wanted in [
        "GET /api/v1/namespaces/calico-system/services/goldmane?",
        "GET /api/v1/namespaces/calico-system/configmaps/tigera-ca-bundle?",
        "GET /api/v1/namespaces/calico-system/secrets/node-certs?",
    ] {
        assert!(
            requests.iter().any(|r| r == wanted),
            "{wanted}: {requests:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_cluster_refuses_is_said_at_start_with_the_object() {
    let home = tempfile::tempdir().unwrap();
    let goldmane = ["tail", "--source", "goldmane"];

    // No kubeconfig anywhere.
    let output = flowtrace(None, home.path(), &goldmane).await;
    let text = stderr_of(&output);
    assert!(text.contains("no cluster configured"), "{text}");
    assert!(
        text.contains("--goldmane-address") || text.contains("--source demo"),
        "{text}"
    );

    // A cluster that does not answer.
    let (unreachable, closed) = unreachable_kubeconfig(home.path());
    let text = stderr_of(&flowtrace(Some(&unreachable), home.path(), &goldmane).await);
    assert!(
        text.contains(&format!("could not reach the cluster at http://{closed}/")),
        "{text}"
    );

    // A cluster without Calico's Goldmane.
    let api = FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig(home.path());
    let text = stderr_of(&flowtrace(Some(&kubeconfig), home.path(), &goldmane).await);
    assert!(
        text.contains("service calico-system/goldmane not found"),
        "{text}"
    );

    // A context the kubeconfig does not have.
    let mut args = goldmane.to_vec();
    args.extend(["--context", "staging"]);
    let text = stderr_of(&flowtrace(Some(&kubeconfig), home.path(), &args).await);
    assert!(text.contains("staging"), "{text}");

    // The service, but no pod behind it.
    api.add_service(
        CALICO,
        "whisker",
        &[("k8s-app", "whisker")],
        8081,
        IntOrString::Int(8081),
    );
    let text = stderr_of(
        &flowtrace(
            Some(&kubeconfig),
            home.path(),
            &["tail", "--source", "whisker"],
        )
        .await,
    );
    assert!(
        text.contains(
            "no running pod behind service calico-system/whisker (pods matching k8s-app=whisker)"
        ),
        "{text}"
    );

    // RBAC refuses the port-forward.
    let api = cluster_with("goldmane", "goldmane-0", 7443, None).await;
    api.forbid("/api/v1/namespaces/calico-system/pods/goldmane-0/portforward");
    let kubeconfig = api.kubeconfig(home.path());
    let text = stderr_of(&flowtrace(Some(&kubeconfig), home.path(), &goldmane).await);
    assert!(
        text.contains(
            "the cluster refused a port-forward to pod calico-system/goldmane-0: pods \"goldmane-0\" \
             is forbidden: User \"tester\" cannot create resource \"pods/portforward\""
        ),
        "{text}"
    );

    // The port-forward is allowed, the client certificate's secret is not.
    let api = cluster_with("goldmane", "goldmane-0", 7443, None).await;
    api.add_config_map(CALICO, "tigera-ca-bundle", &[("ca.crt", "PEM")]);
    api.forbid("/api/v1/namespaces/calico-system/secrets/");
    let kubeconfig = api.kubeconfig(home.path());
    let text = stderr_of(&flowtrace(Some(&kubeconfig), home.path(), &goldmane).await);
    assert!(
        text.contains("Goldmane requires a client certificate (mTLS): pass --goldmane-cert and --goldmane-key, or be allowed to read secret calico-system/node-certs"),
        "{text}"
    );
    assert!(text.contains("cannot get resource \"secrets\""), "{text}");
}

/// A TCP server that answers every connection with `reply` and closes it.
async fn replier(reply: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    address
}

async fn read_through(local: SocketAddr) -> String {
    let mut connection = tokio::net::TcpStream::connect(local).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        connection.read_to_string(&mut text),
    )
    .await
    .expect("the forwarded connection ends")
    .unwrap();
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn each_connection_finds_the_pod_again_so_a_restarted_pod_is_reached() {
    let first = replier("from the first pod").await;
    let api = cluster_with("goldmane", "goldmane-a", 7443, Some(first)).await;
    let home = tempfile::tempdir().unwrap();
    let client = cluster::connect(&ClusterTarget {
        kubeconfig: Some(api.kubeconfig(home.path())),
        ..ClusterTarget::default()
    })
    .await
    .unwrap();
    let service = ServicePort {
        namespace: CALICO.into(),
        name: "goldmane".into(),
        port: 7443,
    };
    let forwarded = port_forward::forward(client, service).await.unwrap();
    assert_eq!(forwarded.pod, "goldmane-a");
    assert_eq!(
        forwarded.describe(),
        "port-forward to pod calico-system/goldmane-a"
    );
    assert_eq!(read_through(forwarded.local).await, "from the first pod");

    // The pod restarts under a new name; nothing listens yet, then the new one serves.
    api.remove_pod(CALICO, "goldmane-a");
    api.add_pod(
        CALICO,
        "goldmane-b",
        &[("k8s-app", "goldmane")],
        &[("server", 7443)],
        true,
    );
    assert_eq!(read_through(forwarded.local).await, "", "closed, not hung");
    api.serve_pod_port(
        CALICO,
        "goldmane-b",
        7443,
        replier("from the second pod").await,
    );
    assert_eq!(read_through(forwarded.local).await, "from the second pod");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_job_shows_the_clusters_flows_when_there_is_a_cluster() {
    // Whisker only: Goldmane is looked for first, then Whisker (no client certificate needed).
    let (_whisker, api, home, kubeconfig) =
        one_flow_cluster(flow_response("web-*", "checkout", 8443, unix_now() - 30)).await;
    // No subcommand, on a pipe: the main job prints like `tail`.
    let output = flowtrace(Some(&kubeconfig), home.path(), &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("checkout/") && stdout.contains("8443"),
        "{stdout}"
    );
    let requests = api.requests();
    let asked = |path: &str| requests.iter().position(|r| r.starts_with(path));
    assert!(
        asked("GET /api/v1/namespaces/calico-system/services/goldmane")
            < asked("GET /api/v1/namespaces/calico-system/services/whisker"),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_job_falls_back_to_the_demo_only_without_a_cluster_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let output = flowtrace(None, home.path(), &[]).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "flowtrace: no flow source or cluster configured: the built-in demo cluster\n"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("customer/"),
        "demo flows"
    );
    // `tail` chooses the same way, and every JSON record says it is the demo's.
    let output = flowtrace(None, home.path(), &["tail", "-o", "json", "--since", "1m"]).await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("the built-in demo cluster"));
    let records = json_records(&output);
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["demo"] == true), "{records:?}");

    // A cluster is configured but has no flow server, or does not answer: a script gets an
    // error, not the demo's flows as if they were the cluster's.
    let api = FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig(home.path());
    let (unreachable, closed) = unreachable_kubeconfig(home.path());
    for (config, why) in [
        (
            &kubeconfig,
            "neither Goldmane nor Whisker reachable: service calico-system/goldmane not found"
                .to_string(),
        ),
        (
            &unreachable,
            format!("could not reach the cluster at http://{closed}/"),
        ),
    ] {
        for args in [&[][..], &["tail"][..]] {
            let output = flowtrace(Some(config), home.path(), args).await;
            let stderr = stderr_of(&output);
            assert!(
                stderr.starts_with(&format!("error: {why}"))
                    && stderr.contains("not standing in for your cluster (pass --source demo"),
                "{args:?}: {stderr}"
            );
            assert!(output.stdout.is_empty(), "{args:?}: no demo flows");
        }
    }
    // A $KUBECONFIG naming a file that is not there is a mistake, not "no cluster".
    let typo = home.path().join("kubeconfgi");
    for args in [&[][..], &["tail"][..]] {
        let output = flowtrace(Some(&typo), home.path(), args).await;
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("$KUBECONFIG (")
                && stderr.contains("kubeconfgi) names no file that exists"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: no demo flows");
    }
    // Asked for, the demo is shown, and marked.
    let output = flowtrace(
        Some(&unreachable),
        home.path(),
        &["tail", "--source", "demo", "-o", "json", "--since", "1m"],
    )
    .await;
    assert!(json_records(&output).iter().all(|r| r["demo"] == true));
}

/// `kubectl flowtrace` in a terminal, on a machine whose kubeconfig names a cluster with Calico:
/// the TUI opens on that cluster's flows and the status bar says how it reached them.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_flowtrace_opens_the_tui_on_the_clusters_flows() {
    let (_whisker, api) = whisker_in_a_cluster(vec![StoredEvent::flow(&flow_response(
        "web-*",
        "checkout",
        8443,
        unix_now() - 30,
    ))])
    .await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    let screen = tokio::task::spawn_blocking(move || {
        let tmux = Tmux::start_with(
            "cluster",
            home.path(),
            home.path(),
            kubeconfig.to_str().unwrap(),
            env!("CARGO_BIN_EXE_kubectl-flowtrace"),
        );
        // How it was reached comes last in the bar, after what must not be missed: the source,
        // its kubeconfig context, whose view it is, its state. At 100 columns it is cut, visibly.
        let screen = tmux.wait_for_all(&[
            "whisker · context fake · as tester, sees all │ connected",
            "1 stored │ (…",
            "checkout/api-*",
        ]);
        tmux.keys(&["q"]);
        screen
    })
    .await
    .unwrap();
    assert!(!screen.contains("demo"), "{screen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn as_and_as_group_impersonate_as_kubectl_does() {
    let (_whisker, api, home, kubeconfig) =
        one_flow_cluster(flow_response("web-*", "backend", 8080, unix_now() - 600)).await;
    // The fake authorizes the impersonated user, as the real API server does.
    api.grant(Grant::new("alice", &["*"], "*", &["*"]));
    let output = flowtrace(
        Some(&kubeconfig),
        home.path(),
        &[
            "tail",
            "--source",
            "whisker",
            "--since",
            "1h",
            "-o",
            "json",
            "--as",
            "alice",
            "--as-group",
            "team-a",
            "--as-group",
            "team-b",
            "--request-timeout",
            "30s",
        ],
    )
    .await;
    assert_eq!(json_records(&output).len(), 1, "{}", stderr_of(&output));
    let seen = api.impersonations();
    assert!(!seen.is_empty());
    for (user, groups) in &seen {
        assert_eq!(user.as_deref(), Some("alice"));
        assert_eq!(groups, &["team-a".to_string(), "team-b".to_string()]);
    }
    // A timeout that is not a duration is refused before anything is asked.
    let output = flowtrace(
        Some(&kubeconfig),
        home.path(),
        &["tail", "--source", "whisker", "--request-timeout", "soon"],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("\"soon\" is not a duration"),
        "{}",
        stderr_of(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn several_kubeconfig_files_merge_as_kubectl_merges_them() {
    let (_whisker, _api, home, kubeconfig) =
        one_flow_cluster(flow_response("web-*", "backend", 8080, unix_now() - 600)).await;
    // A second file with a context of its own, and a file that does not exist: kubectl merges
    // the first two (the first file's current context wins) and leaves the third out.
    let (unreachable, _) = unreachable_kubeconfig(home.path());
    let missing = home.path().join("no-such-kubeconfig");
    let list = std::env::join_paths([&kubeconfig, &unreachable, &missing]).unwrap();
    let output = flowtrace(
        Some(Path::new(&list)),
        home.path(),
        &["tail", "--source", "whisker", "--since", "1h", "-o", "json"],
    )
    .await;
    assert_eq!(json_records(&output).len(), 1, "{}", stderr_of(&output));
    // None of them exists: said, not taken for "no cluster".
    let list = std::env::join_paths([&missing]).unwrap();
    let output = flowtrace(Some(Path::new(&list)), home.path(), &["tail"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("names no file that exists"),
        "{}",
        stderr_of(&output)
    );
}

/// A GlobalNetworkPolicy in tier platform that does `action` to egress from `app=traffic-gen` to
/// namespace backend, last written by `manager`.
fn egress_lockdown(action: &str, manager: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "egress-lockdown", "managedFields": [
            {"manager": manager, "operation": "Update", "time": "2026-12-05T02:10:00Z"}]},
        "spec": {"tier": "platform", "order": 10, "selector": "app == 'traffic-gen'",
                 "types": ["Egress"],
                 "egress": [{"action": action,
                             "destination": {"namespaceSelector": "projectcalico.org/name == 'backend'"}}]}
    })
}

/// With a cluster and no `-m`, `tail` decides with the cluster's policies as they are now: a
/// change made while it runs decides the next flows and is said on stderr; a dropped watch whose
/// place was compacted away (410 Gone) lists again and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn tail_decides_with_the_clusters_live_policies_and_says_when_they_change() {
    let base = unix_now() - 600;
    let (whisker, api, home, kubeconfig) =
        one_flow_cluster(flow_response("web-*", "backend", 8080, base)).await;
    api.add_tier("platform");
    api.add_namespace("frontend");
    api.add_namespace("backend");
    api.apply(egress_lockdown("Deny", "kubectl-client-side-apply"));
    let stderr_path = home.path().join("stderr");
    let mut child = KilledOnDrop(
        Command::cargo_bin("flowtrace")
            .unwrap()
            .args([
                "tail", "-f", "--source", "whisker", "--since", "1h", "-o", "json",
            ])
            .env("HOME", home.path())
            .env("KUBECONFIG", &kubeconfig)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let lines = support::process::ChildLines::of(&mut child);
    let deadline = || std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Recorded as allowed; the cluster's policy denies it now.
    let first: serde_json::Value =
        serde_json::from_str(&lines.wait_for("\"action\":\"Deny\"", deadline())).unwrap();
    assert_eq!(first["reported_action"], "Allow", "{first}");
    assert_eq!(
        first["policies"]["enforced"][0]["name"], "egress-lockdown",
        "{first}"
    );

    // Changed while tail runs: the next flows follow it.
    api.apply(egress_lockdown("Allow", "kubectl-edit"));
    let whisker = std::sync::Arc::new(whisker);
    let pushing = {
        let whisker = whisker.clone();
        tokio::spawn(async move {
            for i in 1..200 {
                whisker.push(StoredEvent::flow(&flow_response(
                    "web-*",
                    "backend",
                    8080,
                    base + 15 * i,
                )));
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        })
    };
    let lines = tokio::task::spawn_blocking(move || {
        lines.wait_for("\"action\":\"Allow\"", deadline());
        lines
    })
    .await
    .unwrap();
    // A dropped watch that cannot resume (its place compacted away) lists again.
    let lists_before = policy_lists(&api);
    api.apply_while_watches_are_down(egress_lockdown("Deny", "argocd"));
    let lines = tokio::task::spawn_blocking(move || {
        lines.wait_for("\"action\":\"Deny\"", deadline());
        lines
    })
    .await
    .unwrap();
    assert!(
        policy_lists(&api) > lists_before,
        "listed again after 410 Gone: {:#?}",
        api.requests()
    );
    // The cluster stops letting the user read a kind: the set may now lack policies, so the
    // flows that follow are shown as Calico recorded them (Allow), not decided with a stale set.
    api.forbid("/apis/projectcalico.org/v3/globalnetworkpolicies");
    api.drop_watches();
    let said = stderr_path.clone();
    let lines = tokio::task::spawn_blocking(move || {
        let until = deadline();
        while !std::fs::read_to_string(&said)
            .unwrap_or_default()
            .contains("shown as Calico recorded them")
        {
            assert!(
                std::time::Instant::now() < until,
                "not said in time: {}",
                std::fs::read_to_string(&said).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // The flows after it: Calico's verdict (Allow), not the stale set's Deny.
        lines.wait_for("\"action\":\"Allow\"", deadline());
        lines
    })
    .await
    .unwrap();
    pushing.abort();
    // Killed and reaped, so that its stderr is whole.
    drop(child);
    drop(lines);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains("deciding with the cluster's 1 policies, followed live"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "GlobalNetworkPolicy egress-lockdown (tier platform) changed by kubectl-edit"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("you may not list and watch globalnetworkpolicies.projectcalico.org")
            && stderr.contains("flows from now on are shown as Calico recorded them"),
        "{stderr}"
    );
}

/// How many times the GlobalNetworkPolicies were listed (not watched).
fn policy_lists(api: &FakeApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|r| {
            r.starts_with("GET /apis/projectcalico.org/v3/globalnetworkpolicies?")
                && !r.contains("watch=")
        })
        .count()
}

/// The TUI on a cluster's flows decides them with the cluster's policies, says so in the
/// table's title, and raises an alert line when a policy changes while it runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_tui_follows_the_clusters_policies_and_alerts_on_a_change() {
    let (_whisker, api) = whisker_in_a_cluster(vec![StoredEvent::flow(&flow_response(
        "web-*",
        "backend",
        8080,
        unix_now() - 30,
    ))])
    .await;
    api.add_tier("platform");
    api.add_namespace("frontend");
    api.add_namespace("backend");
    api.apply(egress_lockdown("Deny", "kubectl-client-side-apply"));
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    let api = std::sync::Arc::new(api);
    let changer = api.clone();
    let (before, after) = tokio::task::spawn_blocking(move || {
        let tmux = Tmux::start_with(
            "live-policies",
            home.path(),
            home.path(),
            kubeconfig.to_str().unwrap(),
            env!("CARGO_BIN_EXE_flowtrace"),
        );
        let before = tmux.wait_for_all(&[
            "verdicts: cluster's 1 policy, live",
            "backend/api-*",
            "deny",
        ]);
        changer.apply(egress_lockdown("Allow", "kubectl-edit"));
        // The stored flow is decided again: the table and the trace say the same.
        let after = tmux.wait_for_all(&[
            "policy change:",
            "GlobalNetworkPolicy egress-lockdown (tier",
            "egress  !allow",
            "· ! policy change",
        ]);
        // The diff is one key away.
        tmux.keys(&["!"]);
        tmux.wait_for_all(&["Policy changes (1)"]);
        tmux.keys(&["Enter"]);
        let diff = tmux.wait_for_all(&["\"action\": \"Deny\"", "\"action\": \"Allow\""]);
        tmux.keys(&["Escape"]);
        tmux.keys(&["Escape"]);
        // The cluster stops letting the user read a kind: the set may now lack policies, so the
        // table says its verdicts are Calico's, and why.
        changer.forbid("/apis/projectcalico.org/v3/globalnetworkpolicies");
        changer.drop_watches();
        tmux.wait_for_all(&["verdicts as recorded", "you may not list and watch"]);
        tmux.keys(&["q"]);
        (before, format!("{after}{diff}"))
    })
    .await
    .unwrap();
    assert!(before.contains("platform › egress-lockd…"), "{before}");
    assert!(after.contains("changed by kubectl-edit"), "{after}");
    assert!(!after.contains("egress  deny"), "{after}");
    assert!(after.contains("-         \"action\": \"Deny\""), "{after}");
    assert!(after.contains("+         \"action\": \"Allow\""), "{after}");
}

/// The fake API server, checked by a client nobody here wrote: real kubectl lists and watches a
/// Calico kind through it (discovery, list, watch with resourceVersion), and sees a change made
/// while it watches.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_lists_and_watches_calico_policies_through_the_fake() {
    let api = FakeApiServer::start().await;
    api.accept_anonymous_as_tester();
    api.add_tier("platform");
    api.apply(egress_lockdown("Deny", "kubectl-client-side-apply"));
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(home.path());
    let kubectl = |args: &[&str]| {
        let mut command = Command::new("kubectl");
        command
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", home.path());
        command
    };
    let listed = kubectl(&[
        "get",
        "globalnetworkpolicies.projectcalico.org",
        "-o",
        "name",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success()
            && stdout.contains("globalnetworkpolicy.projectcalico.org/egress-lockdown"),
        "{stdout}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let mut watching = KilledOnDrop(
        kubectl(&[
            "get",
            "globalnetworkpolicies.projectcalico.org",
            "-w",
            "-o",
            "jsonpath={.spec.egress[0].action}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    let lines = support::process::ChildLines::of(&mut watching);
    let deadline = || std::time::Instant::now() + std::time::Duration::from_secs(20);
    let lines = tokio::task::spawn_blocking(move || {
        lines.wait_for("Deny", deadline());
        lines
    })
    .await
    .unwrap();
    api.apply(egress_lockdown("Allow", "kubectl-edit"));
    tokio::task::spawn_blocking(move || lines.wait_for("Allow", deadline()))
        .await
        .unwrap();
}
