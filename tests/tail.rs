//! `flowtrace tail` and `flowtrace demo --export`, run as a user would.

#[path = "support/process.rs"]
mod process;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use process::{ChildLines, KilledOnDrop};

fn flowtrace() -> Command {
    Command::cargo_bin("flowtrace").expect("binary built")
}

fn bank(file: &str) -> String {
    format!("{}/docs/examples/bank/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = flowtrace().args(args).output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

/// Every record is a deny that the security tier decided (its last enforced hit).
fn assert_denied_by_security(records: &[serde_json::Value]) {
    for record in records {
        assert_eq!(record["action"], "Deny");
        let last = record["policies"]["enforced"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["tier"], "security", "{record}");
    }
}

#[test]
fn filters_a_file_by_the_filter_language() {
    let source = format!("file:{}", bank("flows.jsonl"));
    let (code, stdout, stderr) = run(&["tail", "--source", &source, "--filter", "action=deny"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        4,
        "the bank example has four denied flows:\n{stdout}"
    );
    assert!(rows.iter().all(|r| r.contains(" Deny ")), "{stdout}");
    assert!(stdout.lines().next().unwrap().starts_with("TIME"));

    // Decided by the manifests: the two flows the security tier denies.
    let manifests = bank("");
    let filter = "action=deny tier=security";
    let (_, stdout, _) = run(&[
        "tail", "--source", &source, "-m", &manifests, "--filter", filter, "-o", "json",
    ]);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{stdout}");
    assert_denied_by_security(&records);
}

#[test]
fn manifests_decide_flows_that_carry_no_verdict() {
    let source = format!("file:{}", bank("flows.jsonl"));
    let (code, stdout, stderr) = run(&[
        "tail",
        "--source",
        &source,
        "-m",
        &bank(""),
        "--filter",
        "pending=allow action=deny",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        1,
        "only the flow the staged fix would allow:\n{stdout}"
    );
    assert!(rows[0].contains(":9090/tcp"), "{stdout}");
}

#[test]
fn bad_filters_and_broken_lines_are_reported() {
    let (code, _, stderr) = run(&[
        "tail",
        "--source",
        "demo",
        "--filter",
        "action=deny prot=tcp",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--filter: column 13: unknown field 'prot'"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["tail", "--since", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--since"), "{stderr}");
    let (code, _, stderr) = run(&["tail", "--source", "kafka"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown source"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows.jsonl");
    let good = fs::read_to_string(bank("flows.jsonl")).unwrap();
    fs::write(
        &file,
        format!(
            "{}\n{{broken\n{}\n",
            good.lines().next().unwrap(),
            good.lines().nth(2).unwrap()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["tail", "--source", &format!("file:{}", file.display())]);
    assert_eq!(code, 2, "a malformed line is an input error");
    assert!(
        stderr.contains(&format!("{}:2: invalid JSON", file.display())),
        "{stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        3,
        "header and the two good flows:\n{stdout}"
    );
}

#[test]
fn the_demo_backfills_and_decides_with_its_own_policies() {
    let filter = "src.ns=customer dst.ns=database action=deny";
    let (code, stdout, stderr) = run(&[
        "tail", "--source", "demo", "--since", "1m", "--filter", filter, "-o", "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !records.is_empty(),
        "the demo's broken database access shows up"
    );
    for record in &records {
        assert_eq!(record["dest_namespace"], "database");
    }
    assert_denied_by_security(&records);
}

#[test]
fn minus_n_keeps_the_flows_of_one_namespace_as_kubectl_does() {
    let records = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["tail", "--source", "demo", "--since", "2m", "-o", "json"];
        all.extend(args);
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 0, "{stderr}");
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let everything = records(&[]);
    let database = records(&["-n", "database"]);
    assert!(!database.is_empty());
    assert!(everything
        .iter()
        .any(|r| { r["source_namespace"] != "database" && r["dest_namespace"] != "database" }));
    for record in &database {
        assert!(
            record["source_namespace"] == "database" || record["dest_namespace"] == "database",
            "{record}"
        );
    }
    // With a filter too: both apply.
    let denied = records(&["--namespace", "database", "--filter", "action=deny"]);
    assert!(!denied.is_empty());
    assert!(denied.iter().all(|r| r["action"] == "Deny"
        && (r["source_namespace"] == "database" || r["dest_namespace"] == "database")));
    // -n again adds a namespace: flows with an end in either.
    let two = records(&[
        "-n",
        "database",
        "-n",
        "customer",
        "--filter",
        "action=deny",
    ]);
    let in_either =
        |r: &serde_json::Value, ns: &str| r["source_namespace"] == ns || r["dest_namespace"] == ns;
    assert!(two.iter().any(|r| in_either(r, "customer")), "{two:?}");
    assert!(two.iter().any(|r| in_either(r, "database")), "{two:?}");
    assert!(two
        .iter()
        .all(|r| r["action"] == "Deny" && (in_either(r, "customer") || in_either(r, "database"))));
    // -A is every namespace, and cannot be asked with -n.
    assert!(records(&["-A"])
        .iter()
        .any(|r| { r["source_namespace"] != "database" && r["dest_namespace"] != "database" }));
    let (code, _, stderr) = run(&["tail", "--source", "demo", "-n", "x", "-A"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn demo_export_round_trips_through_eval_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let (code, _, stderr) = run(&["demo", "--export", out.to_str().unwrap(), "--flows", "300"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("20-security.yaml").exists() && out.join("flows.jsonl").exists());
    let flows = out.join("flows.jsonl");
    // The demo's recorded verdicts are the evaluator's: eval --check finds no difference.
    let (code, _, stderr) = run(&[
        "eval",
        "-m",
        out.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("0 of ")), "{stderr}");
    let (code, stdout, _) = run(&[
        "tail",
        "--source",
        &format!("file:{}", flows.display()),
        "--filter",
        "action=deny",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.lines().count() > 1, "{stdout}");
}

/// Each step of a followed output may take this long.
const STEP: Duration = Duration::from_secs(10);

fn wait_for(lines: &ChildLines, wanted: &str) -> String {
    lines.wait_for(wanted, Instant::now() + STEP)
}

fn append(path: &Path, line: &str) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

#[test]
fn follow_keeps_reading_through_truncation_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let template = fs::read_to_string(bank("flows.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let flow_to =
        |port: u16| template.replace("\"dest_port\":8080", &format!("\"dest_port\":{port}"));
    append(&path, &flow_to(1001));
    let mut child = KilledOnDrop(
        flowtrace()
            .args([
                "tail",
                "-f",
                "--source",
                &format!("file:{}", path.display()),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = ChildLines::of(&mut child);
    wait_for(&lines, ":1001/tcp");
    append(&path, &flow_to(1002));
    wait_for(&lines, ":1002/tcp");
    // Truncated in place (copytruncate): read again from the start.
    fs::write(&path, format!("{}\n", flow_to(1003))).unwrap();
    wait_for(&lines, ":1003/tcp");
    // Rotated: renamed away and created anew.
    fs::rename(&path, dir.path().join("flows.jsonl.1")).unwrap();
    append(&path, &flow_to(1004));
    wait_for(&lines, ":1004/tcp");
}

#[test]
fn follow_ended_by_a_signal_counts_bad_lines_by_the_file_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let flow = fs::read_to_string(bank("flows.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("\"dest_port\":8080", "\"dest_port\":1001");
    for _ in 0..3 {
        append(&path, &flow);
    }
    let mut child = flowtrace()
        .args(["tail", "-f", "--source"])
        .arg(format!("file:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = ChildLines::of(&mut child);
    wait_for(&lines, ":1001/tcp");
    // Rotated; the new file's second line is broken: it is line 2, not line 5.
    fs::rename(&path, dir.path().join("flows.jsonl.1")).unwrap();
    append(&path, &flow.replace("1001", "1002"));
    append(&path, "{\"source_name\": ");
    append(&path, &flow.replace("1001", "1003"));
    wait_for(&lines, ":1003/tcp");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("flows.jsonl:2:"), "{stderr}");
    assert!(
        stderr.contains("1 malformed record(s) from"),
        "the summary is printed on a signal too: {stderr}"
    );
}

#[test]
fn a_closed_pipe_ends_tail_quietly() {
    let mut child = flowtrace()
        .args([
            "tail", "--source", "demo", "--since", "30m", "--rate", "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("TIME"));
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn a_search_word_finds_flows_that_name_it() {
    let bank = format!("file:{}", bank("flows.jsonl"));
    for (source, word, named) in [
        (bank.as_str(), "deny", "deny"),
        ("demo", "deny", "deny"),
        ("demo", "paymnt", "payment"),
    ] {
        let mut args = vec!["tail", "--source", source, "--filter", word, "-o", "json"];
        if source == "demo" {
            args.extend(["--since", "5m"]);
        }
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(!lines.is_empty(), "{word}: nothing found");
        for line in lines {
            assert!(
                line.to_ascii_lowercase().contains(named),
                "{word} found a flow that does not name {named}: {line}"
            );
        }
    }
}

#[test]
fn a_filter_and_its_negation_partition_records_with_json_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows.jsonl");
    let escaped = r#"{"source_name":"web-*","source_namespace":"shop","source_labels":"app=web","dest_name":"api-*","dest_namespace":"p\u0061yments","dest_labels":"app=api","protocol":"tcp","dest_port":443,"reporter":"Src","action":"Allow"}"#;
    std::fs::write(&file, format!("{escaped}\n")).unwrap();
    let source = format!("file:{}", file.display());
    let count = |filter: &str| {
        let (code, stdout, stderr) = run(&[
            "tail", "--source", &source, "--filter", filter, "-o", "json",
        ]);
        assert_eq!(code, 0, "{stderr}");
        stdout.lines().count()
    };
    assert_eq!(count("dst.ns=payments"), 1);
    assert_eq!(count("not dst.ns=payments"), 0);
}

#[test]
fn a_file_source_without_a_path_says_so() {
    let (code, _, stderr) = run(&["tail", "--source", "file:"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("source file: names no file (file:PATH)"),
        "{stderr}"
    );
}

#[test]
fn on_a_pipe_the_wide_table_keeps_names_whole() {
    let (code, stdout, stderr) = run(&["tail", "--source", "demo", "--since", "5m", "-o", "wide"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ingress-nginx/ingress-nginx-controller-"),
        "a name longer than its column, whole: {stdout}"
    );
    assert!(!stdout.contains('…'), "{stdout}");
}
