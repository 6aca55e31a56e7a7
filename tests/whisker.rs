//! The Whisker HTTP/SSE source against the fake backend in `support/whisker.rs` (127.0.0.1 only).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use flowtrace::flows::FlowDecoder;
use flowtrace::model::{HitAction, ObservedFlow, PolicyKind, Verdict};
use flowtrace::source::whisker::{
    self, Backoff, Match, ServerFilter, WhiskerConfig, WhiskerError, WhiskerFilter,
    WhiskerPolicyFilter,
};
use flowtrace::source::ConnectionState;
use serde_json::{json, Value};
use support::process::{ChildLines, KilledOnDrop};
use support::running::{self, Running, LIMIT};
use support::whisker::{flow_response, unix_now, FakeWhisker, StoredEvent};
use tokio::time::timeout;

fn config(fake: &FakeWhisker) -> WhiskerConfig {
    let mut config = WhiskerConfig::new(format!("{}/whisker-backend", fake.url()));
    config.since = Some(Duration::from_secs(3600));
    config.pacing = running::FAST;
    config
}

/// `count` windows a minute or more in the past: two flow keys per window start.
fn history(count: usize) -> Vec<StoredEvent> {
    let base = unix_now() - 3000;
    (0..count)
        .map(|i| {
            let source = if i % 2 == 0 { "web-*" } else { "batch-*" };
            StoredEvent::flow(&flow_response(
                source,
                "backend",
                8080,
                base + 15 * (i / 2) as i64,
            ))
        })
        .collect()
}

fn start(config: WhiskerConfig) -> Running<WhiskerError> {
    running::start(|events, cancel| whisker::run(config, events, cancel))
}

/// How many times each (source, window start) was delivered.
fn counts(flows: &[ObservedFlow]) -> HashMap<(String, i64), usize> {
    let mut seen = HashMap::new();
    for observed in flows {
        *seen
            .entry((observed.flow.source.name.to_string(), observed.start_time))
            .or_default() += 1;
    }
    seen
}

#[tokio::test]
async fn lists_history_like_a_file() {
    let events = history(6);
    let fake = FakeWhisker::start(events.clone()).await;
    let page = timeout(LIMIT, whisker::list(&config(&fake)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.flows.len(), 6);
    assert!(page.malformed.is_empty());
    assert_eq!(page.total_pages, 1);
    // Decoded exactly as the same record read from a file.
    let mut decoder = FlowDecoder::new();
    let from_file = decoder.decode(&events[0].data).unwrap().into_observed();
    assert_eq!(page.flows[0], from_file);
    assert_eq!(
        page.flows[0].flow.dest.namespace.as_deref(),
        Some("backend")
    );
    assert_eq!(page.flows[0].counters.bytes_in, 5000);
    assert_eq!(page.flows[0].end_time - page.flows[0].start_time, 15);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/whisker-backend/flows");
    assert!(!requests[0].watch());
    assert_eq!(requests[0].param("startTimeGte"), Some("-3600"));
    assert_eq!(requests[0].param("filters"), None);
}

#[tokio::test]
async fn a_bare_ui_address_reaches_the_backend_prefix() {
    let fake = FakeWhisker::start(history(2)).await;
    let mut config = config(&fake);
    config.url = fake.url();
    let page = timeout(LIMIT, whisker::list(&config))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.flows.len(), 2);
    assert_eq!(fake.requests()[0].path, "/whisker-backend/flows");
}

#[tokio::test]
async fn streams_server_sent_events() {
    let fake = FakeWhisker::start(history(6)).await;
    let mut running = start(config(&fake));
    running.until(|g| g.flows.len() >= 6).await;
    // Live windows after the backfill.
    let now = unix_now();
    for i in 0..2 {
        fake.push(StoredEvent::flow(&flow_response(
            "live-*",
            "backend",
            9090,
            now - 30 + 15 * i,
        )));
    }
    running.until(|g| g.flows.len() >= 8).await;
    running.settle().await;
    let seen = counts(&running.gathered.flows);
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(
        running.gathered.states,
        vec![ConnectionState::Connecting, ConnectionState::Connected]
    );
    let live = running.gathered.flows.last().unwrap();
    assert_eq!(live.flow.dest_port, Some(9090));
    let hits = live.flow.reported_policies.as_ref().unwrap();
    assert_eq!(hits.enforced[0].name, "allow-frontend-to-backend");
    assert_eq!(hits.pending[0].kind, PolicyKind::StagedGlobalNetworkPolicy);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].watch());
    assert_eq!(requests[0].param("startTimeGte"), Some("-3600"));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn filters_are_encoded_as_whisker_expects() {
    let fake = FakeWhisker::start(history(2)).await;
    let mut config = config(&fake);
    config.since = Some(Duration::from_secs(900));
    config.filter = WhiskerFilter {
        terms: ServerFilter {
            source_names: vec![Match::exact("src-name")],
            source_namespaces: vec![Match::fuzzy("src-namespace")],
            dest_names: vec![Match::exact("dest-name")],
            dest_namespaces: vec![Match::exact("dest-namespace")],
            protocols: vec![Match::exact("tcp")],
            dest_ports: vec![8080],
            actions: vec![Verdict::Deny],
        },
        policies: vec![WhiskerPolicyFilter {
            kind: Some(PolicyKind::CalicoNetworkPolicy),
            tier: Some(Match::exact("default-tier")),
            name: Some(Match::fuzzy("name")),
            namespace: Some(Match::exact("namespace")),
            action: Some(HitAction::Deny),
        }],
        ..WhiskerFilter::default()
    };
    timeout(LIMIT, whisker::list(&config))
        .await
        .unwrap()
        .unwrap();
    let mut running = start(config);
    running
        .until(|g| g.states.contains(&ConnectionState::Connected))
        .await;
    running.stop().await.unwrap();
    let expected = json!({
        "source_names": [{"value": "src-name", "type": "Exact"}],
        "source_namespaces": [{"value": "src-namespace", "type": "Fuzzy"}],
        "dest_names": [{"value": "dest-name", "type": "Exact"}],
        "dest_namespaces": [{"value": "dest-namespace", "type": "Exact"}],
        "protocols": [{"value": "tcp", "type": "Exact"}],
        "dest_ports": [{"value": 8080, "type": "Exact"}],
        "actions": ["Deny"],
        "policies": [{
            "kind": "CalicoNetworkPolicy",
            "tier": {"value": "default-tier", "type": "Exact"},
            "name": {"value": "name", "type": "Fuzzy"},
            "namespace": {"value": "namespace", "type": "Exact"},
            "action": "Deny"
        }]
    });
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let filters: Value = serde_json::from_str(request.param("filters").unwrap()).unwrap();
        assert_eq!(filters, expected);
        assert_eq!(request.param("startTimeGte"), Some("-900"));
    }
    assert!(!requests[0].watch());
    assert!(requests[1].watch());
}

#[tokio::test]
async fn reconnects_without_loss_or_duplicates() {
    // 10 events: two flow keys in each of 5 windows.
    let fake = FakeWhisker::start(history(10)).await;
    // First stream: 3 events (the cut falls inside a window) then a drop; second: 2 more then
    // an `error:` line; third: 1 then a drop; then it stays up.
    fake.drop_streams_after(&[3]);
    fake.error_stream_after(2, "goldmane stream ended");
    let mut running = start(config(&fake));
    running.until(|g| g.flows.len() >= 5).await;
    fake.drop_streams_after(&[1]);
    running.until(|g| g.flows.len() >= 10).await;
    let now = unix_now();
    for i in 0..3 {
        fake.push(StoredEvent::flow(&flow_response(
            "live-*",
            "backend",
            8080,
            now - 45 + 15 * i,
        )));
    }
    running.until(|g| g.flows.len() >= 13).await;
    running.settle().await;
    let seen = counts(&running.gathered.flows);
    assert_eq!(seen.len(), 13, "every window delivered: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "none twice: {seen:?}");
    let reconnects: Vec<&ConnectionState> = running
        .gathered
        .states
        .iter()
        .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
        .collect();
    assert!(
        reconnects.len() >= 2,
        "states: {:?}",
        running.gathered.states
    );
    assert!(
        running.gathered.states.iter().any(|s| matches!(
            s,
            ConnectionState::Reconnecting { error, .. } if error.contains("goldmane stream ended")
        )),
        "states: {:?}",
        running.gathered.states
    );
    let requests = fake.requests();
    assert!(requests.len() >= 3);
    assert_eq!(requests[0].param("startTimeGte"), Some("-3600"));
    // Reconnects resume from the newest window seen: an absolute start, never going back.
    let resumed: Vec<i64> = requests[1..]
        .iter()
        .map(|r| r.param("startTimeGte").unwrap().parse().unwrap())
        .collect();
    assert!(resumed.iter().all(|&s| s > 0), "{resumed:?}");
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{resumed:?}");
    assert!(running.gathered.malformed.is_empty());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_events_are_counted_not_fatal() {
    let mut events = history(3);
    let t = unix_now() - 1200;
    let mut bad_reporter = flow_response("odd-*", "backend", 8080, t);
    bad_reporter["reporter"] = json!("Sideways");
    let mut bad_proto = flow_response("odd2-*", "backend", 8080, t);
    bad_proto["protocol"] = json!("carrier-pigeon");
    events.extend([
        StoredEvent::flow(&bad_reporter),
        StoredEvent::flow(&bad_proto),
        StoredEvent::raw(t, "{\"start_time\": truncated"),
        StoredEvent::raw(t, "[1,2,3]"),
    ]);
    events.extend(history(1).into_iter().map(|mut e| {
        e.data = e.data.replace("web-*", "after-*");
        e
    }));
    let fake = FakeWhisker::start(events).await;
    let mut running = start(config(&fake));
    running
        .until(|g| g.flows.len() >= 4 && g.malformed.len() >= 4)
        .await;
    running.settle().await;
    let reasons = running.gathered.malformed.join("\n");
    assert_eq!(running.gathered.malformed.len(), 4, "{reasons}");
    assert!(reasons.contains("reporter"), "{reasons}");
    assert!(reasons.contains("carrier-pigeon"), "{reasons}");
    assert!(reasons.contains("invalid JSON"), "{reasons}");
    assert!(reasons.contains("expected a JSON object"), "{reasons}");
    assert!(!running.gathered.states.iter().any(|s| matches!(
        s,
        ConnectionState::Failed(_) | ConnectionState::Reconnecting { .. }
    )));
    running.stop().await.unwrap();
    // The list reports them too.
    let page = timeout(LIMIT, whisker::list(&config(&fake)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((page.flows.len(), page.malformed.len()), (4, 4));
}

#[tokio::test]
async fn a_refused_request_fails_with_the_servers_message() {
    let fake = FakeWhisker::start(history(2)).await;
    fake.refuse("failed to parse filters: invalid character");
    let error = timeout(LIMIT, whisker::list(&config(&fake)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.fatal);
    assert!(error.message.contains("400"), "{}", error.message);
    assert!(
        error.message.contains("failed to parse filters"),
        "{}",
        error.message
    );
    let mut running = start(config(&fake));
    running
        .until(|g| {
            g.states
                .iter()
                .any(|s| matches!(s, ConnectionState::Failed(_)))
        })
        .await;
    let result = timeout(LIMIT, running.task).await.unwrap().unwrap();
    let error = result.unwrap_err();
    assert!(error.fatal);
    assert!(error.message.contains("failed to parse filters"));
    match running.gathered.states.last().unwrap() {
        ConnectionState::Failed(message) => {
            assert!(message.contains("failed to parse filters"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!running
        .gathered
        .states
        .iter()
        .any(|s| matches!(s, ConnectionState::Reconnecting { .. })));
}

#[tokio::test]
async fn an_unreachable_backend_is_retried() {
    // A port that was just free: connection refused, retried with backoff until cancelled.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = WhiskerConfig::new(format!("http://127.0.0.1:{port}/"));
    config.pacing.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    let mut running = start(config);
    running
        .until(|g| {
            g.states
                .iter()
                .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
                .count()
                >= 3
        })
        .await;
    match &running.gathered.states[1] {
        ConnectionState::Reconnecting { attempt, error } => {
            assert_eq!(*attempt, 1);
            assert!(error.contains("127.0.0.1"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    running.stop().await.unwrap();
}

/// `flowtrace tail --source whisker`, the real binary against the fake backend.
#[tokio::test(flavor = "multi_thread")]
async fn tail_prints_whisker_history_and_follows_its_stream() {
    use assert_cmd::cargo::CommandCargoExt;
    let fake = FakeWhisker::start(history(4)).await;
    let mut command = std::process::Command::cargo_bin("flowtrace").unwrap();
    command.args([
        "tail",
        "--source",
        "whisker",
        "--whisker-url",
        &fake.url(),
        "--since",
        "1h",
        "-o",
        "json",
    ]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "{stdout}");
    assert!(records
        .iter()
        .all(|r| r["reported_action"].is_string() && r["policies"]["enforced"].is_array()));

    let mut command = std::process::Command::cargo_bin("flowtrace").unwrap();
    command.args([
        "tail",
        "-f",
        "--source",
        "whisker",
        "--whisker-url",
        &fake.url(),
        "--since",
        "1h",
    ]);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = KilledOnDrop(command.spawn().unwrap());
    let lines = ChildLines::of(&mut child);
    fake.push(StoredEvent::flow(&flow_response(
        "live-*",
        "backend",
        9443,
        unix_now(),
    )));
    lines.wait_for(":9443/tcp", std::time::Instant::now() + LIMIT);
}

#[tokio::test]
async fn a_window_from_a_fast_clock_does_not_become_the_resume_point() {
    // A node whose clock runs an hour ahead reports one window from the future.
    let now = unix_now();
    let mut events = history(4);
    events.push(StoredEvent::flow(&flow_response(
        "skewed-*",
        "backend",
        8080,
        now + 3600,
    )));
    let fake = FakeWhisker::start(events).await;
    // The first stream drops after all five; flows arriving after the reconnect are older than
    // the skewed window.
    fake.drop_streams_after(&[5]);
    let mut running = start(config(&fake));
    running.until(|g| g.flows.len() >= 5).await;
    for i in 0..3 {
        fake.push(StoredEvent::flow(&flow_response(
            "after-*",
            "backend",
            8080,
            now - 45 + 15 * i,
        )));
    }
    running.until(|g| g.flows.len() >= 8).await;
    running.settle().await;
    let seen = counts(&running.gathered.flows);
    assert_eq!(seen.len(), 8, "nothing skipped, nothing twice: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    let resumed: i64 = fake.requests()[1]
        .param("startTimeGte")
        .unwrap()
        .parse()
        .unwrap();
    assert!(resumed <= now, "resumed from {resumed}, ahead of now {now}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_that_goes_silent_is_reconnected() {
    let fake = FakeWhisker::start(history(2)).await;
    let mut config = config(&fake);
    config.idle_timeout = Duration::from_millis(300);
    let mut running = start(config);
    running.until(|g| g.flows.len() >= 2).await;
    // Nothing more comes on the open stream: it is taken for dead and opened again.
    running
        .until(|g| {
            g.states.iter().any(|s| matches!(
                s,
                ConnectionState::Reconnecting { error, .. } if error.contains("no data from Whisker")
            ))
        })
        .await;
    running
        .until(|g| {
            g.states
                .iter()
                .filter(|s| matches!(s, ConnectionState::Connected))
                .count()
                >= 2
        })
        .await;
    // A flow that comes later still arrives, once.
    fake.push(StoredEvent::flow(&flow_response(
        "late-*",
        "backend",
        8080,
        unix_now() - 15,
    )));
    running.until(|g| g.flows.len() >= 3).await;
    running.settle().await;
    let seen = counts(&running.gathered.flows);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_https_whisker_is_read_with_the_ca_given_and_refused_without_one() {
    use flowtrace::source::goldmane::Pem;
    use flowtrace::source::whisker::WhiskerTrust;
    let fake = FakeWhisker::start(history(2)).await;
    let plain = fake.url().trim_start_matches("http://").parse().unwrap();
    let (https, ca) = support::whisker::https_front(plain).await;
    let mut at_https = config(&fake);
    at_https.url = format!("https://{https}/whisker-backend");
    // No CA: nothing to verify with, said at once.
    let error = timeout(LIMIT, whisker::list(&at_https))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.fatal && error.message.contains("--whisker-ca"),
        "{}",
        error.message
    );
    // The CA that signed it, and the name its certificate holds.
    at_https.trust = Some(WhiskerTrust::Ca {
        ca: Pem::Text {
            origin: "test CA".into(),
            pem: ca.into_bytes(),
        },
        server_name: Some("whisker".into()),
    });
    let page = timeout(LIMIT, whisker::list(&at_https))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.flows.len(), 2);
    // A CA that did not sign it: refused, saying why.
    let (_, other_ca) = support::whisker::https_front(plain).await;
    at_https.trust = Some(WhiskerTrust::Ca {
        ca: Pem::Text {
            origin: "another CA".into(),
            pem: other_ca.into_bytes(),
        },
        server_name: Some("whisker".into()),
    });
    let error = timeout(LIMIT, whisker::list(&at_https))
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.message.contains("certificate"), "{}", error.message);
}
