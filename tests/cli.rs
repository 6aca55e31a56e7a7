//! End-to-end tests of the command line: the real `flowtrace` and `kubectl-flowtrace` binaries, run
//! on files only (the bundled bank example, and broken copies of it in temporary directories).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bank() -> PathBuf {
    root().join("docs/examples/bank")
}

fn bank_flows() -> PathBuf {
    bank().join("flows.jsonl")
}

fn flowtrace() -> Command {
    let mut command = Command::cargo_bin("flowtrace").expect("the flowtrace binary");
    command.current_dir(root());
    command
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `flowtrace eval -m docs/examples/bank --flows docs/examples/bank/flows.jsonl` (relative paths).
fn eval_bank() -> Command {
    let mut command = flowtrace();
    command.args([
        "eval",
        "-m",
        "docs/examples/bank",
        "--flows",
        "docs/examples/bank/flows.jsonl",
    ]);
    command
}

fn bank_lines() -> Vec<String> {
    std::fs::read_to_string(bank_flows())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

#[test]
fn eval_bank_gives_one_verdict_per_line_in_input_order() {
    let output = eval_bank().assert().success().get_output().clone();
    let results = json_lines(&stdout_of(&output));
    assert_eq!(results.len(), 10, "one JSON object per input line");
    let verdicts: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["pending_action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("Allow", "Allow"),
            ("Allow", "Allow"),
            ("Deny", "Deny"),
            ("Deny", "Allow"), // the staged summary-metrics fix
            ("Allow", "Allow"),
            ("Allow", "Allow"),
            ("Deny", "Deny"),
            ("Allow", "Allow"),
            ("Allow", "Allow"),
            ("Deny", "Deny"),
        ]
    );
    // Input order: each output line is its input line's record.
    let inputs: Vec<Value> = json_lines(&bank_lines().join("\n"));
    for (input, result) in inputs.iter().zip(&results) {
        for key in ["start_time", "bytes_in", "bytes_out", "packets_in"] {
            assert_eq!(input.get(key), result.get(key), "{key} is kept as read");
        }
        // Goldmane records keep their Key as read, action included.
        if let Some(key) = input.get("Key") {
            assert_eq!(Some(key), result.get("Key"));
        }
    }
    assert_eq!(results[0]["bytes_in"], 18236);
    assert_eq!(results[4]["num_connections_started"], 4);
    // Every line recorded an action (flat, Goldmane `Key.action`, Enterprise lower case): it is kept
    // as reported_action beside the computed one.
    let reported: Vec<&str> = results
        .iter()
        .map(|r| r["reported_action"].as_str().expect("reported_action"))
        .collect();
    assert_eq!(
        reported,
        ["Allow", "Allow", "Deny", "Deny", "Allow", "Allow", "Deny", "Allow", "Allow", "Deny"]
    );
    assert!(results[0]["reported_policies"]["enforced"].is_array());
    // Line 3: customer -> database is denied by the security tier.
    let enforced = results[2]["policies"]["enforced"].as_array().unwrap();
    let last = enforced.last().unwrap();
    assert_eq!(last["kind"], "CalicoNetworkPolicy");
    assert_eq!(last["name"], "database-backends-only");
    assert_eq!(last["namespace"], "database");
    assert_eq!(last["tier"], "security");
    assert_eq!(last["rule_index"], 1);
    assert_eq!(last["action"], "Deny");
    // Line 4: enforced ends at the application tier, pending at the staged fix.
    let pending = results[3]["policies"]["pending"].as_array().unwrap();
    assert_eq!(pending.last().unwrap()["kind"], "StagedNetworkPolicy");
    assert_eq!(pending.last().unwrap()["name"], "summary-metrics");
    assert!(stderr_of(&output).is_empty(), "{}", stderr_of(&output));
}

#[test]
fn eval_wide_prints_a_header_and_a_row_per_flow() {
    let output = eval_bank()
        .args(["-o", "wide"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout_of(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11, "{text}");
    for column in [
        "LINE",
        "SOURCE",
        "DESTINATION",
        // The side whose policies decided, as the TUI's column says it.
        "SIDE",
        "ACTION",
        "PENDING",
        "DECIDED BY",
    ] {
        assert!(lines[0].contains(column), "header: {}", lines[0]);
    }
    for (i, row) in lines[1..].iter().enumerate() {
        assert!(row.starts_with(&format!("{:<5} ", i + 1)), "row {i}: {row}");
    }
    assert!(lines[3].contains("Deny") && lines[3].contains("database-backends-only rule 1 (Deny)"));
    let row4: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(&row4[3..6], ["ingress", "Deny", "Allow"], "{}", lines[4]);
    assert!(lines[4].contains("end of tier, default Deny"));
    // A network's address is shown with its name: the metadata service is seen for what it is.
    assert!(
        lines[7].contains("169.254.169.254 (pvt):80/tcp")
            && lines[7].contains("block-metadata rule 0 (Deny)"),
        "{}",
        lines[7]
    );
}

#[test]
fn check_agrees_with_the_bank_records() {
    eval_bank()
        .arg("--check")
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicate::str::contains(
            "0 of 10 flow(s) with recorded Calico policy hits differ",
        ));
}

#[test]
fn check_reports_a_changed_record_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = bank_lines();
    assert!(lines[0].contains(r#""action":"Allow""#));
    lines[0] = lines[0].replacen(r#""action":"Allow""#, r#""action":"Deny""#, 1);
    // And a recorded hit on line 3 that names another rule.
    assert!(lines[2].contains(r#""dest_port":5432"#));
    lines[2] = lines[2].replacen(
        r#""reporter":"Dst""#,
        r#""reporter":"Dst","policies":{"enforced":[{"kind":"CalicoNetworkPolicy","name":"database-backends-only","namespace":"database","tier":"security","action":"Deny","policy_index":0,"rule_index":0,"trigger":null}],"pending":[]}"#,
        1,
    );
    let flows = dir.path().join("flows.jsonl");
    std::fs::write(&flows, lines.join("\n") + "\n").unwrap();
    let output = flowtrace()
        .current_dir(dir.path())
        .args(["eval", "--check", "--flows", "flows.jsonl", "-m"])
        .arg(bank())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains(
            "flows.jsonl:1: customer/customer-6d8f9c7b5-* -> summary/summary-7c9d8b6f4-*:8080/tcp"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  action: Calico recorded Deny, computed Allow"),
        "{stdout}"
    );
    assert!(stdout.contains("flows.jsonl:3: "), "{stdout}");
    assert!(
        stdout.contains("enforced trace: Calico recorded [tier security: CalicoNetworkPolicy database/database-backends-only rule 0 (Deny)], computed [tier security: CalicoNetworkPolicy database/database-backends-only rule 1 (Deny)]"),
        "{stdout}"
    );
    assert!(!stdout.contains("flows.jsonl:2:"), "{stdout}");
    assert!(
        stderr_of(&output).contains("2 of 10 flow(s)"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn malformed_flow_lines_are_named_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = bank_lines();
    let text = [
        good[0].as_str(),
        "{not json",
        good[2].as_str(),
        r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":80}"#,
        r#"{"source_name":"a","source_namespace":"x","dest_name":"b","dest_namespace":"y","protocol":"tcp","dest_port":70000,"reporter":"Dst"}"#,
        r#"{"source_name":"-","source_name_aggr":"a-*","source_namespace":"x","dest_name":"-","dest_name_aggr":"b-*","dest_namespace":"y","proto":"tcp","dest_port":80,"reporter":"dst","action":"deny","policies":{"enforced_policies":["zero|security|nope"]}}"#,
        "",
        good[6].as_str(),
    ]
    .join("\n");
    let flows = dir.path().join("broken.jsonl");
    std::fs::write(&flows, text + "\n").unwrap();
    let output = flowtrace()
        .current_dir(dir.path())
        .args(["eval", "--flows", "broken.jsonl", "-m"])
        .arg(bank())
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    for expected in [
        "error: broken.jsonl:2: invalid JSON",
        "error: broken.jsonl:4: reporter: missing (Src or Dst)",
        "error: broken.jsonl:5: dest_port: 70000 is outside 0-65535",
        "error: broken.jsonl:6: policies.enforced_policies[0]: policy hit \"zero|security|nope\"",
        "4 malformed flow line(s) in broken.jsonl skipped",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("broken.jsonl:7"),
        "a blank line is no error"
    );
    let results = json_lines(&stdout_of(&output));
    let verdicts: Vec<&str> = results
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["Allow", "Deny", "Deny"],
        "the good lines, in order"
    );
    assert_eq!(results[2]["dest_ip"], "169.254.169.254");
}

const BROKEN_MANIFESTS: &str = r#"apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: security.bad-selector
spec:
  tier: security
  order: 500
  selector: app == 'web' &&& tier == 'x'
  types: [Ingress]
  ingress:
  - action: Allow
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: application.bad-cidr
  namespace: customer
spec:
  tier: application
  order: 200
  selector: app == 'customer'
  egress:
  - action: Allow
    destination:
      nets: [10.0.0.0/33]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: application.bad-ports
  namespace: customer
spec:
  tier: application
  order: 210
  selector: app == 'customer'
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: ["9000:8000"]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: application.typo
  namespace: customer
spec:
  tier: application
  order: 220
  selector: app == 'customer'
  ingress:
  - action: Allow
    source:
      namspaceSelector: team == 'web'
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
"#;

#[test]
fn broken_manifests_are_reported_one_message_each_and_the_rest_still_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    for entry in std::fs::read_dir(bank()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, manifests.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(manifests.join("90-broken.yaml"), BROKEN_MANIFESTS).unwrap();
    std::fs::write(
        manifests.join("91-invalid.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  data: [unclosed\n",
    )
    .unwrap();
    let output = flowtrace()
        .current_dir(dir.path())
        .args(["eval", "-m", "m", "--flows"])
        .arg(bank_flows())
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(errors.len(), 5, "one error per problem:\n{stderr}");
    assert_eq!(warnings.len(), 1, "{stderr}");
    let broken = Path::new("m").join("90-broken.yaml").display().to_string();
    let has = |needles: &[&str]| {
        assert!(
            errors.iter().any(|e| needles.iter().all(|n| e.contains(n))),
            "no error with {needles:?}:\n{stderr}"
        )
    };
    has(&[
        &format!("{broken}:1:"),
        "GlobalNetworkPolicy security.bad-selector",
        "spec.selector",
        "column 16",
    ]);
    has(&[
        &format!("{broken}:13:"),
        "NetworkPolicy customer/application.bad-cidr",
        "spec.egress[0].destination.nets[0]",
        "10.0.0.0/33",
    ]);
    has(&[
        &format!("{broken}:27:"),
        "NetworkPolicy customer/application.bad-ports",
        "spec.ingress[0].destination.ports[0]",
        "9000:8000",
    ]);
    has(&[
        &format!("{broken}:42:"),
        "NetworkPolicy customer/application.typo",
        "spec.ingress[0].source.namspaceSelector",
        "unknown field",
    ]);
    has(&[
        &format!("{}:5:", Path::new("m").join("91-invalid.yaml").display()),
        "invalid YAML",
    ]);
    assert!(
        warnings[0].contains(&format!("{broken}:56:"))
            && warnings[0].contains("FelixConfiguration"),
        "{stderr}"
    );
    // The valid objects still load: the bank verdicts are unchanged.
    let results = json_lines(&stdout_of(&output));
    let actions: Vec<&str> = results
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["Allow", "Allow", "Deny", "Deny", "Allow", "Allow", "Deny", "Allow", "Allow", "Deny"]
    );
}

#[test]
fn eval_reads_flows_from_stdin() {
    let input = bank_lines()[2..4].join("\n") + "\n";
    let output = flowtrace()
        .args(["eval", "-m", "docs/examples/bank", "--flows", "-"])
        .write_stdin(input)
        .assert()
        .success()
        .get_output()
        .clone();
    let results = json_lines(&stdout_of(&output));
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["dest_port"], 5432);
    assert_eq!(results[1]["pending_action"], "Allow");
}

#[test]
fn stdin_errors_are_named_stdin() {
    flowtrace()
        .args(["eval", "-m", "docs/examples/bank", "--flows", "-"])
        .write_stdin("[1]\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: <stdin>:1: expected a JSON object",
        ));
}

#[test]
fn missing_flow_file_is_named() {
    flowtrace()
        .args([
            "eval",
            "-m",
            "docs/examples/bank",
            "--flows",
            "no/such/flows.jsonl",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/flows.jsonl"));
}

#[test]
fn a_closed_output_pipe_ends_eval_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lines = bank_lines();
    let flows = dir.path().join("big.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&flows).unwrap());
        for i in 0..50_000 {
            writeln!(file, "{}", lines[i % lines.len()]).unwrap();
        }
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("flowtrace"))
        .args(["eval", "-m"])
        .arg(bank())
        .arg("--flows")
        .arg(&flows)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
    } // stdout closed here
    let output = child.wait_with_output().unwrap();
    let stderr = stderr_of(&output);
    assert!(first.contains("\"action\":\"Allow\""), "{first}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "no message for a closed pipe: {stderr}");
    assert!(output.status.success(), "{:?}", output.status);
}

// ---------------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------------

fn explain_bank() -> Command {
    let mut command = flowtrace();
    command.args(["explain", "-m", "docs/examples/bank"]);
    command
}

#[test]
fn explain_text_shows_both_verdicts_and_the_tiers() {
    let output = explain_bank()
        .args(["--flows", "docs/examples/bank/flows.jsonl", "--line", "4"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout_of(&output);
    for expected in [
        "Flow: customer/customer-6d8f9c7b5-* -> summary/summary-7c9d8b6f4-*:9090/tcp (ingress, reported by Dst)",
        "Enforced verdict: Deny",
        "decided by tier application: end of tier, default Deny",
        // The one line: the nearest rule's reason not to allow it.
        "  why: destination port 9090 is not in http (summary/summary rule 0)",
        "Pending verdict (staged policies enforced) DIFFERS: Allow",
        "StagedNetworkPolicy summary/summary-metrics rule 0 (Allow)",
        "summary-metrics",
        "Calico recorded: Deny (agrees)",
        "tier application (order 300, default Deny): no rule matched: the tier's default action applies",
        "end of tier",
        "Pending trace:",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
}

#[test]
fn explain_json_has_both_verdicts_and_tier_statuses() {
    let output = explain_bank()
        .args([
            "--flows",
            "docs/examples/bank/flows.jsonl",
            "--line",
            "4",
            "-o",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let explanation: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(explanation["enforced"]["action"], "Deny");
    assert_eq!(explanation["pending"]["action"], "Allow");
    assert_eq!(explanation["direction"], "Ingress");
    let tiers = explanation["enforced"]["tiers"].as_array().unwrap();
    let end = tiers
        .iter()
        .find(|t| t["status"] == "end-of-tier")
        .expect("a tier ended with its default action");
    assert_eq!(end["name"], "application");
    let statuses: Vec<&str> = tiers
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["passed", "skipped", "end-of-tier", "not-reached"]
    );
}

#[test]
fn explain_takes_the_flow_inline() {
    let flow = &bank_lines()[6];
    explain_bank()
        .args(["--flow", flow])
        .assert()
        .success()
        .stdout(predicate::str::contains("Enforced verdict: Deny"))
        .stdout(predicate::str::contains(
            "decided by tier security: GlobalNetworkPolicy block-metadata rule 0 (Deny)",
        ))
        .stdout(predicate::str::contains(
            "why: block-metadata rule 0 denies it",
        ))
        .stdout(predicate::str::contains(
            "Pending verdict (staged policies enforced): Deny (same)",
        ));
}

#[test]
fn explain_flags_a_staged_hit_recorded_as_the_verdict() {
    // Line 4's flow, as a Calico before 3.33 could record it: the staged policy's Allow as the
    // verdict, which no staged policy enforces.
    let mut record: Value = serde_json::from_str(&bank_lines()[3]).unwrap();
    let staged = serde_json::json!({"kind": "StagedNetworkPolicy", "name": "summary-metrics",
        "namespace": "summary", "tier": "application", "action": "Allow", "policy_index": 1,
        "rule_index": 0, "trigger": null});
    record["action"] = "Allow".into();
    record["policies"] = serde_json::json!({"enforced": [staged], "pending": [staged]});
    let output = explain_bank()
        .args(["--flow", &record.to_string()])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout_of(&output);
    for expected in [
        "Enforced verdict: Deny",
        "Calico recorded: Allow (DIFFERS)",
        "Caution: Calico recorded the verdict of staged policy summary/summary-metrics (Allow), \
         which enforces nothing",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
}

#[test]
fn explain_a_line_past_the_end_is_an_error() {
    explain_bank()
        .args(["--flows", "docs/examples/bank/flows.jsonl", "--line", "99"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "docs/examples/bank/flows.jsonl has no line 99 (it has 10, counted from 1)",
        ));
}

#[test]
fn explain_with_missing_manifests_names_the_path() {
    flowtrace()
        .args([
            "explain",
            "-m",
            "no/such/manifests",
            "--flows",
            "docs/examples/bank/flows.jsonl",
            "--line",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/manifests"));
}

#[test]
fn explain_a_bad_inline_flow_is_an_error() {
    explain_bank()
        .args(["--flow", r#"{"source_name":"a"}"#])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: --flow: "));
}

// ---------------------------------------------------------------------------------------------
// kubectl plugin
// ---------------------------------------------------------------------------------------------

#[test]
fn kubectl_plugin_has_help_and_the_same_eval() {
    let mut plugin = Command::cargo_bin("kubectl-flowtrace").unwrap();
    plugin
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: kubectl flowtrace"))
        .stdout(predicate::str::contains("eval"))
        .stdout(predicate::str::contains("explain"));
    let mut plugin = Command::cargo_bin("kubectl-flowtrace").unwrap();
    let plugin_output = plugin
        .current_dir(root())
        .args([
            "eval",
            "-m",
            "docs/examples/bank",
            "--flows",
            "docs/examples/bank/flows.jsonl",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let output = eval_bank().assert().success().get_output().clone();
    assert!(!output.stdout.is_empty());
    assert_eq!(stdout_of(&plugin_output), stdout_of(&output));
}

/// kubectl itself finds the plugin on PATH and runs it; its help names it as it was run.
#[test]
fn kubectl_finds_the_plugin_on_path_and_its_help_says_kubectl_flowtrace() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        // The CI machines have kubectl; say so rather than pass silently elsewhere.
        panic!("kubectl is not installed: this test needs it (the CI machines have it)");
    }
    let plugin = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-flowtrace"));
    let bin = plugin.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("HOME", home.path())
            .env("KUBECONFIG", "")
            .current_dir(root())
            .output()
            .unwrap()
    };
    let listed = run(&["plugin", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("kubectl-flowtrace"), "{listed}");
    let help = run(&["flowtrace", "--help"]);
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Usage: kubectl flowtrace [OPTIONS]\n       kubectl flowtrace <COMMAND>"),
        "{help}"
    );
    let eval = run(&["flowtrace", "eval", "--help"]);
    assert!(
        String::from_utf8_lossy(&eval.stdout).contains("Usage: kubectl flowtrace eval"),
        "{eval:?}"
    );
    // A mistake is reported under the same name.
    let wrong = run(&["flowtrace", "evaluate"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("kubectl flowtrace"),
        "{wrong:?}"
    );
}

#[test]
fn a_missing_manifest_path_stops_before_any_output() {
    let missing = root().join("no/such/manifests");
    for args in [
        vec![
            "eval".into(),
            "-m".into(),
            missing.display().to_string(),
            "--flows".into(),
            bank_flows().display().to_string(),
        ],
        vec![
            "explain".into(),
            "-m".into(),
            missing.display().to_string(),
            "--flows".into(),
            bank_flows().display().to_string(),
            "--line".into(),
            "1".into(),
        ],
    ] {
        let output = flowtrace()
            .args(&args)
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert!(
            stdout_of(&output).is_empty(),
            "{args:?}: {}",
            stdout_of(&output)
        );
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("error: ") && stderr.contains("no/such/manifests"),
            "{stderr}"
        );
    }
}

#[test]
fn manifests_with_no_policy_are_a_warning_not_a_silent_allow() {
    let empty = tempfile::tempdir().unwrap();
    let output = flowtrace()
        .args(["eval", "-m"])
        .arg(empty.path())
        .arg("--flows")
        .arg(bank_flows())
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("warning: no network policies in")
            && stderr.contains("every flow is decided by its namespace's profile"),
        "{stderr}"
    );
}

#[test]
fn forwarded_flows_are_kept_with_calicos_verdict_and_say_what_is_not_evaluated() {
    // Calico Enterprise's reporter `fwd`: traffic a host forwarded.
    let line = r#"{"start_time":1795400400,"end_time":1795400415,"source_ip":"10.244.2.20","source_name":"summary-7c9d8b6f4-p9z2q","source_name_aggr":"summary-7c9d8b6f4-*","source_namespace":"summary","source_type":"wep","source_labels":{"labels":["app=summary"]},"dest_ip":"192.0.2.10","dest_name":"-","dest_name_aggr":"pub","dest_namespace":"-","dest_type":"net","dest_port":443,"proto":"tcp","action":"allow","reporter":"fwd","policies":{"enforced_policies":["0|platform|platform.forward-out|allow|0"]}}"#;
    let output = flowtrace()
        .args(["eval", "-m", "docs/examples/bank", "--flows", "-"])
        .write_stdin(format!("{line}\n"))
        .assert()
        .success()
        .get_output()
        .clone();
    let records = json_lines(&stdout_of(&output));
    assert_eq!(
        records.len(),
        1,
        "kept, not malformed: {}",
        stderr_of(&output)
    );
    let record = &records[0];
    assert_eq!(record["reporter"], "fwd");
    assert_eq!(record["reported_action"], "Allow");
    assert_eq!(record["action"], "Unknown");
    assert!(
        record["undetermined"]
            .as_str()
            .unwrap()
            .contains("forwarded traffic (reporter fwd)"),
        "{record}"
    );
}

#[test]
fn one_byte_that_is_not_utf8_is_one_bad_line_in_eval_and_tail() {
    let lines = bank_lines();
    let mut bytes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i == 2 {
            // The third line's source name gets a byte that is not UTF-8.
            let broken = line.replacen("summary", "summ\u{1}ry", 1).into_bytes();
            let at = broken.iter().position(|&b| b == 1).unwrap_or(20);
            let mut broken = broken;
            broken[at] = 0xFF;
            bytes.extend(broken);
        } else {
            bytes.extend(line.as_bytes());
        }
        bytes.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let output = flowtrace()
        .args(["eval", "-m", "docs/examples/bank", "--flows"])
        .arg(&file)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(
        json_lines(&stdout_of(&output)).len(),
        lines.len() - 1,
        "every other line"
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("flows.jsonl:3: invalid UTF-8 at byte"),
        "the file, the line and why: {stderr}"
    );
    let output = flowtrace()
        .args(["tail", "-o", "json", "--source"])
        .arg(format!("file:{}", file.display()))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(json_lines(&stdout_of(&output)).len(), lines.len() - 1);
    let stderr = stderr_of(&output);
    assert!(stderr.contains(":3: invalid UTF-8 at byte"), "{stderr}");
    assert!(
        stderr.contains("1 malformed record(s) from"),
        "a summary, as eval gives: {stderr}"
    );
}

#[test]
fn a_manifest_with_a_byte_that_is_not_utf8_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ns.yaml"),
        b"apiVersion: v1\nkind: Namespace\n# caf\xe9\nmetadata: {name: a}\n",
    )
    .unwrap();
    let output = flowtrace()
        .args(["eval", "-m"])
        .arg(dir.path())
        .args(["--flows", "docs/examples/bank/flows.jsonl"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("ns.yaml: cannot read: line 3, column 6: a byte that is not UTF-8"),
        "{stderr}"
    );
}

/// A flag written before a subcommand belongs to the TUI: refused with the flag named, never
/// silently dropped (`flowtrace -n payments tail` once printed every namespace).
#[test]
fn a_flag_before_a_subcommand_is_refused_not_ignored() {
    for (args, flag) in [
        (
            &["-n", "payments", "tail", "--source", "demo"][..],
            "--namespace",
        ),
        (&["--as", "bob", "auth"][..], "--as"),
        (&["--source", "demo", "tail"][..], "--source"),
    ] {
        let output = flowtrace().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {}", stdout_of(&output));
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("cannot be used with") && stderr.contains(flag),
            "{args:?}: {stderr}"
        );
    }
    // After the subcommand, the same flag is the subcommand's.
    let output = flowtrace()
        .args([
            "tail", "--source", "demo", "--since", "1m", "-n", "payments",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
}
