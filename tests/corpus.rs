//! A corpus of realistic clusters with expected traces: each case is a directory of manifests plus a
//! `flows.jsonl`, run through the real `flowtrace eval`; the verdicts and traces are kept as insta
//! snapshots named after the case (`snapshots/<case>.snap`, beside `tests/`).
//!
//! Hits are rendered as `"<policy_index>|<tier>|<Kind>|<ns/name or name>|<Action>|<rule_index>"`;
//! EndOfTier hits add `"|trigger=<Kind>:<ns/name>"` (as in `eval_semantics.rs`).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn qualified(hit: &Value) -> String {
    let (ns, name) = (
        hit["namespace"].as_str().unwrap_or(""),
        hit["name"].as_str().unwrap(),
    );
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn compact(hit: &Value) -> String {
    let mut text = format!(
        "{}|{}|{}|{}|{}|{}",
        hit["policy_index"],
        hit["tier"].as_str().unwrap(),
        hit["kind"].as_str().unwrap(),
        qualified(hit),
        hit["action"].as_str().unwrap(),
        hit["rule_index"]
    );
    if let Some(trigger) = hit.get("trigger").filter(|t| !t.is_null()) {
        text.push_str(&format!(
            "|trigger={}:{}",
            trigger["kind"].as_str().unwrap(),
            qualified(trigger)
        ));
    }
    text
}

/// `flowtrace eval` of a case, reduced to what the snapshot keeps. Blank input lines are skipped by
/// eval, so output lines are matched to input lines by counting the non-blank ones.
fn eval_case(manifests: &Path, flows: &Path) -> Value {
    let output = Command::cargo_bin("flowtrace")
        .unwrap()
        .arg("eval")
        .arg("-m")
        .arg(manifests)
        .arg("--flows")
        .arg(flows)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(
        stderr.is_empty(),
        "no warnings or errors expected: {stderr}"
    );
    let input = std::fs::read_to_string(flows).unwrap();
    let lines: Vec<usize> = input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), lines.len(), "one result per flow");
    let reduced: Vec<Value> = lines
        .iter()
        .zip(&results)
        .map(|(line, r)| {
            let hits = |trace: &str| -> Vec<String> {
                r["policies"][trace]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(compact)
                    .collect()
            };
            let mut entry = json!({
                "line": line,
                "action": r["action"],
                "pending_action": r["pending_action"],
                "enforced": hits("enforced"),
                "pending": hits("pending"),
            });
            if let Some(reason) = r.get("undetermined") {
                entry["undetermined"] = reason.clone();
            }
            entry
        })
        .collect();
    Value::Array(reduced)
}

fn check(case: &str, manifests: PathBuf, flows: PathBuf) {
    let reduced = eval_case(&manifests, &flows);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(format!(
        "flowtrace eval -m {} --flows {}",
        manifests.strip_prefix(root()).unwrap().display(),
        flows.strip_prefix(root()).unwrap().display()
    ));
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_json_snapshot!(case, reduced));
}

fn corpus_case(case: &str) {
    let dir = root().join("tests/corpus").join(case);
    check(case, dir.clone(), dir.join("flows.jsonl"));
}

#[test]
fn bank() {
    let dir = root().join("docs/examples/bank");
    check("bank", dir.clone(), dir.join("flows.jsonl"));
}

#[test]
fn four_tiers() {
    corpus_case("four-tiers");
}

#[test]
fn calico_samples() {
    corpus_case("calico-samples");
}

#[test]
fn kubernetes_only() {
    corpus_case("kubernetes-only");
}

#[test]
fn admin_policies() {
    corpus_case("admin-policies");
}
