//! The Goldmane gRPC source against the fake Goldmane in `support/goldmane.rs` (mTLS on 127.0.0.1).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use flowtrace::model::{PolicyKind, Verdict};
use flowtrace::source::goldmane::proto::{common, v3_30, v3_32};
use flowtrace::source::goldmane::{
    self as goldmane, GoldmaneClient, GoldmaneConfig, GoldmaneFilter, GoldmaneVersion, HintQuery,
    HintType, ListQuery, Match, PolicyFilter, ServerFilter, WireVersion,
};
use flowtrace::source::ConnectionState;
use support::goldmane::{
    service_window, unix_now, window, FakeGoldmane, SeenFilter, SERVICE_POLICY,
};
use support::process::{ChildLines, KilledOnDrop};
use support::running::{self, Running, LIMIT};
use tokio::time::timeout;

fn config(fake: &FakeGoldmane) -> GoldmaneConfig {
    let mut config = GoldmaneConfig::new(fake.address());
    config.tls = Some(fake.pki.client_files());
    config.since = Some(Duration::from_secs(3600));
    config.pacing = running::FAST;
    config
}

/// Windows a minute or more in the past, `count` of them, alternating two sources.
fn history(count: usize) -> Vec<common::Flow> {
    let base = unix_now() - 3000;
    (0..count)
        .map(|i| {
            let source = if i % 2 == 0 { "web-*" } else { "batch-*" };
            window(source, "payments", 8080, base + 15 * i as i64)
        })
        .collect()
}

fn start(config: GoldmaneConfig) -> Running<goldmane::GoldmaneError> {
    running::start(|events, cancel| goldmane::run(config, events, cancel))
}

async fn detect_and_decode(version: WireVersion) {
    let mut flows = history(4);
    // A hit only the version has: ClusterNetworkPolicy (11) in 3.32, an admin policy reported as a
    // GlobalNetworkPolicy named `kanp.adminnetworkpolicy.…` in 3.30/3.31.
    let hit = match version {
        WireVersion::V3_32 => common::PolicyHit {
            kind: 11,
            name: "guard".into(),
            tier: "kube-admin".into(),
            action: common::Action::Pass as i32,
            policy_index: 0,
            ..Default::default()
        },
        WireVersion::V3_30 => common::PolicyHit {
            kind: 2,
            name: "kanp.adminnetworkpolicy.guard".into(),
            tier: "adminnetworkpolicy".into(),
            action: common::Action::Pass as i32,
            policy_index: 0,
            ..Default::default()
        },
    };
    let policies = flows[0].key.as_mut().unwrap().policies.as_mut().unwrap();
    for h in &mut policies.enforced_policies {
        h.policy_index = 1;
    }
    policies.enforced_policies.push(hit);
    let fake = FakeGoldmane::start(version, flows).await;

    let client = timeout(LIMIT, GoldmaneClient::connect(&config(&fake)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.version(), version);
    assert_eq!(
        fake.hint_types(),
        vec![7],
        "detected by the PolicyKind probe"
    );

    let mut running = start(config(&fake));
    running.until(|g| g.flows.len() >= 4).await;
    let first = &running.gathered.flows[0];
    assert_eq!(&*first.flow.source.name, "web-*");
    assert_eq!(first.flow.source.namespace.as_deref(), Some("shop"));
    assert_eq!(first.flow.dest.namespace.as_deref(), Some("payments"));
    assert_eq!(first.flow.dest_port, Some(8080));
    assert_eq!(first.flow.reported_action, Some(Verdict::Allow));
    assert_eq!(
        first.flow.dest.labels.as_ref().unwrap().get("app"),
        Some("api")
    );
    assert_eq!(first.counters.bytes_out, 1200);
    assert_eq!(first.end_time - first.start_time, 15);
    let hits = &first.flow.reported_policies.as_ref().unwrap().enforced;
    let expected = match version {
        WireVersion::V3_32 => PolicyKind::ClusterNetworkPolicy,
        WireVersion::V3_30 => PolicyKind::AdminNetworkPolicy,
    };
    assert_eq!((hits[0].kind, hits[0].name.as_str()), (expected, "guard"));
    assert_eq!(hits[1].kind, PolicyKind::NetworkPolicy);
    assert_eq!(
        running.gathered.states[..2],
        [ConnectionState::Connecting, ConnectionState::Connected]
    );
    // Backfill asked for the last hour, relative to the server's clock.
    assert_eq!(fake.streams()[0].start_time_gte, -3600);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn detects_and_decodes_3_30() {
    detect_and_decode(WireVersion::V3_30).await;
}

#[tokio::test]
async fn detects_and_decodes_3_32() {
    detect_and_decode(WireVersion::V3_32).await;
}

/// Each session asks for the values the filter bar completes, beside the stream.
#[tokio::test]
async fn a_session_sends_filter_hints_for_completion() {
    for version in [WireVersion::V3_30, WireVersion::V3_32] {
        let fake = FakeGoldmane::start(version, history(4)).await;
        let mut running = start(config(&fake));
        running
            .until(|g| g.hints.len() >= 6 && g.flows.len() >= 4)
            .await;
        let hinted = |kind| {
            running
                .gathered
                .hints
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, values)| values.clone())
        };
        assert_eq!(
            hinted(HintType::DestNamespace),
            Some(vec!["payments".to_string()])
        );
        assert_eq!(
            hinted(HintType::SourceName),
            Some(vec!["batch-*".to_string(), "web-*".to_string()])
        );
        assert!(hinted(HintType::PolicyName).is_some());
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn pinned_version_skips_the_probe() {
    let fake = FakeGoldmane::start(WireVersion::V3_30, history(2)).await;
    let mut config = config(&fake);
    config.version = GoldmaneVersion::V3_30;
    let client = timeout(LIMIT, GoldmaneClient::connect(&config))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.version(), WireVersion::V3_30);
    assert!(fake.hint_types().is_empty());
}

#[tokio::test]
async fn list_pages_through_history() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(5)).await;
    let config = config(&fake);
    let query = ListQuery {
        page: 1,
        page_size: 2,
        ..ListQuery::from_config(&config)
    };
    let page = timeout(LIMIT, goldmane::list(&config, &query))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((page.total_pages, page.total_results), (3, 5));
    assert_eq!(page.flows.len(), 2);

    let mut client = GoldmaneClient::connect(&config).await.unwrap();
    let all = timeout(
        LIMIT,
        client.list_all(&ListQuery::from_config(&config), &config.filter, 2),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(all.flows.len(), 5);
    assert!(all.malformed.is_empty());
    let pages: Vec<(i64, i64)> = fake.lists().iter().map(|l| (l.page, l.page_size)).collect();
    assert_eq!(pages, vec![(1, 2), (0, 2), (1, 2), (2, 2)]);
    assert!(fake.lists().iter().all(|l| l.start_time_gte == -3600));
}

#[tokio::test]
async fn filter_hints_in_both_versions() {
    for version in [WireVersion::V3_30, WireVersion::V3_32] {
        let mut flows = history(3);
        flows.push(window("web-*", "ledger", 443, unix_now() - 600));
        let fake = FakeGoldmane::start(version, flows).await;
        let config = config(&fake);
        let hints = timeout(
            LIMIT,
            goldmane::filter_hints(&config, HintType::DestNamespace, &HintQuery::default()),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(hints.values, vec!["ledger", "payments"]);
        assert_eq!(hints.total_results, 2);

        let mut client = GoldmaneClient::connect(&config).await.unwrap();
        let kinds = client
            .filter_hints(HintType::PolicyKind, &HintQuery::default(), &config.filter)
            .await;
        match version {
            WireVersion::V3_32 => assert_eq!(kinds.unwrap().values, vec!["NetworkPolicy"]),
            WireVersion::V3_30 => {
                assert!(kinds.unwrap_err().message.contains("3.32"))
            }
        }
    }
}

#[tokio::test]
async fn filters_are_pushed_to_the_server() {
    let filter = GoldmaneFilter {
        terms: ServerFilter {
            dest_namespaces: vec![Match::exact("payments")],
            source_names: vec![Match::fuzzy("web")],
            actions: vec![Verdict::Deny],
            dest_ports: vec![443],
            ..Default::default()
        },
        policies: vec![PolicyFilter {
            tier: Some("security".into()),
            name: Some("deny-all".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    for version in [WireVersion::V3_30, WireVersion::V3_32] {
        let mut flows = history(2);
        let mut denied = window("web-*", "payments", 443, unix_now() - 900);
        denied.key.as_mut().unwrap().action = common::Action::Deny as i32;
        flows.push(denied);
        let fake = FakeGoldmane::start(version, flows).await;
        let mut config = config(&fake);
        config.filter = filter.clone();
        let mut running = start(config.clone());
        running.until(|g| !g.flows.is_empty()).await;
        let page = goldmane::list(&config, &ListQuery::from_config(&config))
            .await
            .unwrap();
        assert_eq!(page.flows.len(), 1, "the server filtered");
        assert_eq!(page.flows[0].flow.dest_port, Some(443));
        let seen = fake.streams()[0].filter.clone();
        assert_eq!(seen, fake.lists()[0].filter);
        let exact = |v: &str| common::StringMatch {
            value: v.into(),
            r#type: 0,
        };
        match seen {
            SeenFilter::V3_30(Some(f)) => {
                assert_eq!(version, WireVersion::V3_30);
                assert_eq!(f.dest_namespaces, vec![exact("payments")]);
                assert_eq!(f.source_names[0].r#type, common::MatchType::Fuzzy as i32);
                assert_eq!(f.actions, vec![common::Action::Deny as i32]);
                assert_eq!(f.dest_ports, vec![common::PortMatch { port: 443 }]);
                assert_eq!(
                    f.policies,
                    vec![v3_30::PolicyMatch {
                        tier: "security".into(),
                        name: "deny-all".into(),
                        ..Default::default()
                    }]
                );
            }
            SeenFilter::V3_32(Some(f)) => {
                assert_eq!(version, WireVersion::V3_32);
                assert_eq!(f.dest_namespaces, vec![exact("payments")]);
                assert_eq!(f.dest_ports, vec![common::PortMatch { port: 443 }]);
                assert_eq!(
                    f.policies,
                    vec![v3_32::PolicyMatch {
                        tier: Some(exact("security")),
                        name: Some(exact("deny-all")),
                        ..Default::default()
                    }]
                );
            }
            other => panic!("server saw {other:?}"),
        }
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(2)).await;
    let mut config = config(&fake);
    config.tls = Some(fake.pki.files_without_client_cert());
    let mut running = start(config);
    running
        .until(|g| matches!(g.states.last(), Some(ConnectionState::Failed(_))))
        .await;
    let Some(ConnectionState::Failed(reason)) = running.gathered.states.last().cloned() else {
        unreachable!()
    };
    assert!(
        reason.to_ascii_lowercase().contains("certificate"),
        "reason: {reason}"
    );
    assert!(running.gathered.flows.is_empty());
    let error = timeout(LIMIT, running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(error.fatal);
}

#[tokio::test]
async fn reconnects_without_loss_or_duplicates() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(8)).await;
    // First stream: 3 windows then a drop; second: 2 more then a drop; then it stays up.
    fake.drop_streams_after(&[3, 2]);
    let mut running = start(config(&fake));
    running.until(|g| g.flows.len() >= 8).await;
    // Live windows after the reconnects.
    let now = unix_now();
    for i in 0..3 {
        fake.push(window("live-*", "payments", 8080, now - 30 + i));
    }
    running.until(|g| g.flows.len() >= 11).await;
    running.settle().await;
    let mut seen: HashMap<(String, i64), usize> = HashMap::new();
    for observed in &running.gathered.flows {
        *seen
            .entry((observed.flow.source.name.to_string(), observed.start_time))
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 11, "every window delivered: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
    let reconnects = running
        .gathered
        .states
        .iter()
        .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .count();
    assert_eq!(reconnects, 2, "states: {:?}", running.gathered.states);
    let streams = fake.streams();
    assert_eq!(streams.len(), 3);
    // Reconnects resume from an absolute window start, not from the original hour.
    assert!(
        streams[1].start_time_gte > 0 && streams[2].start_time_gte >= streams[1].start_time_gte
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_records_are_counted_not_fatal() {
    let mut flows = history(3);
    let mut bad_reporter = window("odd-*", "payments", 8080, unix_now() - 1200);
    bad_reporter.key.as_mut().unwrap().reporter = 9;
    let mut bad_proto = window("odd2-*", "payments", 8080, unix_now() - 1100);
    bad_proto.key.as_mut().unwrap().proto = "carrier-pigeon".into();
    let mut no_key = window("odd3-*", "payments", 8080, unix_now() - 1000);
    no_key.key = None;
    flows.extend([bad_reporter, bad_proto, no_key]);
    let fake = FakeGoldmane::start(WireVersion::V3_30, flows).await;
    let mut running = start(config(&fake));
    running
        .until(|g| g.flows.len() >= 3 && g.malformed.len() >= 3)
        .await;
    let reasons = running.gathered.malformed.join("\n");
    assert!(reasons.contains("reporter"), "{reasons}");
    assert!(reasons.contains("carrier-pigeon"), "{reasons}");
    assert!(reasons.contains("Key: missing"), "{reasons}");
    assert!(!running.gathered.states.iter().any(|s| matches!(
        s,
        ConnectionState::Failed(_) | ConnectionState::Reconnecting { .. }
    )));
    running.stop().await.unwrap();
}

fn path_of(pem: &flowtrace::source::goldmane::Pem) -> &str {
    match pem {
        flowtrace::source::goldmane::Pem::File(path) => path.to_str().unwrap(),
        other => panic!("the test's PEM is a file: {other:?}"),
    }
}

/// `flowtrace tail --source goldmane`, the real binary against the fake over mTLS.
fn tail_goldmane(
    fake: &FakeGoldmane,
    files: &flowtrace::source::goldmane::TlsSettings,
    extra: &[&str],
) -> std::process::Command {
    use assert_cmd::cargo::CommandCargoExt;
    let mut command = std::process::Command::cargo_bin("flowtrace").unwrap();
    command.args([
        "tail",
        "--source",
        "goldmane",
        "--goldmane-address",
        &fake.address(),
    ]);
    command.args(["--goldmane-ca", path_of(&files.ca)]);
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        command.args([
            "--goldmane-cert",
            path_of(cert),
            "--goldmane-key",
            path_of(key),
        ]);
    }
    command.args(extra);
    command
}

/// Runs `command` (tail with `-o json`), expects success, and reads its records.
async fn json_records(mut command: std::process::Command) -> Vec<serde_json::Value> {
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_prints_goldmane_history_through_the_filter_language() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(6)).await;
    let files = fake.pki.client_files();
    let command = tail_goldmane(
        &fake,
        &files,
        &["--since", "1h", "--filter", "src=web-*", "-o", "json"],
    );
    let records = json_records(command).await;
    assert_eq!(
        records.len(),
        3,
        "three of the six windows are from web-*:\n{records:#?}"
    );
    assert!(records
        .iter()
        .all(|r| r["source_name"] == "web-*" && r["dest_namespace"] == "payments"));
    assert_eq!(fake.lists().len(), 1, "history comes from Flows.List");
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_follows_the_goldmane_stream() {
    let fake = FakeGoldmane::start(WireVersion::V3_30, history(2)).await;
    let files = fake.pki.client_files();
    let mut command = tail_goldmane(&fake, &files, &["-f", "--since", "1h"]);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = KilledOnDrop(command.spawn().unwrap());
    let lines = ChildLines::of(&mut child);
    let deadline = std::time::Instant::now() + LIMIT;
    // The two history windows, then a live one.
    lines.wait_for("payments/", deadline);
    lines.wait_for("payments/", deadline);
    fake.push(window("live-*", "payments", 9443, unix_now()));
    lines.wait_for(":9443/tcp", deadline);
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_without_a_client_certificate_says_why() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(1)).await;
    let files = fake.pki.files_without_client_cert();
    let mut command = tail_goldmane(&fake, &files, &[]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error:") && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_pushes_filter_terms_to_goldmane() {
    let fake = FakeGoldmane::start(WireVersion::V3_32, history(4)).await;
    let files = fake.pki.client_files();
    let filter = "dst.ns=payments port in (8080, 8443) src~web tier=security";
    let mut command = tail_goldmane(&fake, &files, &["--since", "1h", "--filter", filter]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lists = fake.lists();
    let SeenFilter::V3_32(Some(pushed)) = &lists[0].filter else {
        panic!("no filter pushed: {lists:?}")
    };
    let namespaces: Vec<&str> = pushed
        .dest_namespaces
        .iter()
        .map(|m| m.value.as_str())
        .collect();
    assert_eq!(namespaces, vec!["payments"]);
    let ports: Vec<i64> = pushed.dest_ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, vec![8080, 8443]);
    assert_eq!(pushed.source_names.len(), 1, "{pushed:?}");
    assert_eq!(pushed.source_names[0].value, "web");
    assert_eq!(
        pushed.source_names[0].r#type, 1,
        "substring is Goldmane's Fuzzy match"
    );
    assert!(pushed.policies.is_empty(), "deciding-tier terms stay local");
}

/// A Goldmane flow addressed to a Service keeps the service on its way to the evaluator, so a
/// rule with `destination.services` decides it in `tail -m` as it does in `eval`.
#[tokio::test(flavor = "multi_thread")]
async fn tail_decides_a_service_rule_with_the_service_goldmane_reported() {
    let fake =
        FakeGoldmane::start(WireVersion::V3_32, vec![service_window(unix_now() - 600)]).await;
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(manifests.path().join("egress.yaml"), SERVICE_POLICY).unwrap();
    let files = fake.pki.client_files();
    let dir = manifests.path().to_str().unwrap().to_string();
    let command = tail_goldmane(&fake, &files, &["--since", "1h", "-o", "json", "-m", &dir]);
    let records = json_records(command).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert_eq!(record["action"], "Allow", "{record}");
    assert!(record.get("undetermined").is_none(), "{record}");
    assert_eq!(
        record["policies"]["enforced"][0]["name"], "to-the-api-service",
        "{record}"
    );
    assert_eq!(record["dest_service_name"], "api", "{record}");
}
