//! `flowtrace fix` and `flowtrace impact` end to end, on the demo's export: a fix proposed for a
//! denied flow is applied the way a GitOps pipeline would, and `impact` must then agree with what
//! the fix's preview promised.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn flowtrace() -> Command {
    Command::cargo_bin("flowtrace").expect("the flowtrace binary")
}

/// The demo's manifests and flows in a fresh directory.
fn exported() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = flowtrace()
        .args(["demo", "--export"])
        .arg(dir.path())
        .args(["--flows", "400"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    dir
}

fn flows(dir: &Path) -> PathBuf {
    dir.join("flows.jsonl")
}

/// The 1-based number of the first line with every one of `needles`.
fn line_with(dir: &Path, needles: &[&str]) -> usize {
    let text = std::fs::read_to_string(flows(dir)).unwrap();
    text.lines()
        .position(|line| needles.iter().all(|n| line.contains(n)))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line with {needles:?}"))
}

fn run(command: &mut Command) -> (String, String, i32) {
    let output = command.output().unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
        output.status.code().unwrap_or(-1),
    )
}

fn fix(dir: &Path, line: usize, extra: &[&str]) -> (String, String, i32) {
    run(flowtrace()
        .arg("fix")
        .arg("-m")
        .arg(dir)
        .arg("--flows")
        .arg(flows(dir))
        .args(["--line", &line.to_string()])
        .args(extra))
}

fn impact(dir: &Path, with: &Path, extra: &[&str]) -> (String, String, i32) {
    run(flowtrace()
        .arg("impact")
        .arg("--flows")
        .arg(flows(dir))
        .arg("-m")
        .arg(dir)
        .arg("--with")
        .arg(with)
        .args(extra))
}

/// The demo's manifests plus `extra` (a file's text) in a new directory: the pull request's tree.
fn with_file(dir: &Path, extra: &str) -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, tree.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(tree.path().join("60-change.yaml"), extra).unwrap();
    tree
}

const METRICS: [&str; 3] = [
    "\"source_namespace\":\"customer\"",
    "\"dest_port\":9090",
    "\"reporter\":\"Dst\"",
];

#[test]
fn a_fix_applied_as_written_changes_exactly_what_its_preview_said() {
    let dir = exported();
    let line = line_with(dir.path(), &METRICS);
    let (text, stderr, code) = fix(dir.path(), line, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("Ingress at summary/"), "{text}");
    assert!(text.contains("[exact]"), "{text}");
    let preview = text
        .lines()
        .find(|l| l.contains("preview over the"))
        .expect("a preview line");
    let fixed: usize = preview
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{preview}"));
    assert!(fixed > 0, "{preview}");
    assert!(
        preview.contains("0 newly allowed · 0 newly denied"),
        "{preview}"
    );

    // The enforced form, applied in a pull request: `impact` finds the same flows newly allowed.
    let (yaml, stderr, code) = fix(dir.path(), line, &["-o", "yaml", "--enforced"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(yaml.contains("kind: NetworkPolicy"), "{yaml}");
    let tree = with_file(dir.path(), &yaml);
    let (json, stderr, code) = impact(dir.path(), tree.path(), &["-o", "json"]);
    assert_eq!(code, 1, "a change exits 1, like kubectl diff: {stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["enforced"]["newly_allowed"], fixed, "{json}");
    assert_eq!(report["enforced"]["newly_denied"], 0);
    for change in report["changes"].as_array().unwrap() {
        assert!(
            change["flow"].as_str().unwrap().contains(":9090/tcp"),
            "{change}"
        );
        assert_eq!(
            change["decided_by"],
            "tier application: CalicoNetworkPolicy summary/summary"
        );
    }
    // Nothing newly denied: a gate on denies passes.
    let (_, _, code) = impact(dir.path(), tree.path(), &["--fail-on", "deny"]);
    assert_eq!(code, 0);

    // The staged form changes pending verdicts only.
    let (staged, _, _) = fix(dir.path(), line, &["-o", "yaml"]);
    assert!(staged.contains("kind: StagedNetworkPolicy"), "{staged}");
    let tree = with_file(dir.path(), &staged);
    let (json, _, _) = impact(dir.path(), tree.path(), &["-o", "json"]);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["enforced"]["newly_allowed"], 0, "{json}");
}

#[test]
fn a_guardrail_deny_gets_an_exception_request_and_no_yaml() {
    let dir = exported();
    let line = line_with(
        dir.path(),
        &[
            "\"source_namespace\":\"customer\"",
            "\"dest_port\":5432",
            "\"reporter\":\"Dst\"",
        ],
    );
    let (text, _, code) = fix(dir.path(), line, &[]);
    assert_eq!(code, 0);
    assert!(
        text.contains("Tier security is not one you may write (yours: application, default)"),
        "{text}"
    );
    assert!(
        text.contains("## Network policy exception request: tier `security`"),
        "{text}"
    );

    let (yaml, stderr, code) = fix(dir.path(), line, &["-o", "yaml"]);
    assert_eq!(code, 1);
    assert!(yaml.is_empty());
    assert!(stderr.contains("tiers you may not write"), "{stderr}");

    let (markdown, _, code) = fix(dir.path(), line, &["-o", "markdown"]);
    assert_eq!(code, 0);
    assert!(
        markdown.starts_with("## Network policy exception request"),
        "{markdown}"
    );
    assert!(markdown.contains("```yaml"), "{markdown}");
    assert!(
        markdown.contains("Enforced verdict: Deny"),
        "the trace: {markdown}"
    );

    // The security team may write its tier: for them it is a fix.
    let (yaml, _, code) = fix(
        dir.path(),
        line,
        &["-o", "yaml", "--writable-tiers", "security"],
    );
    assert_eq!(code, 0);
    assert!(yaml.contains("security.database-backends-only"), "{yaml}");
}

#[test]
fn a_flow_denied_on_both_sides_gets_a_fix_for_each_side_in_its_own_shape() {
    let dir = exported();
    let line = line_with(dir.path(), &["\"dest_port\":5433"]);
    let (json, stderr, code) = fix(dir.path(), line, &["-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let proposal: Value = serde_json::from_str(&json).unwrap();
    let sides = proposal["sides"].as_array().unwrap();
    assert_eq!(sides.len(), 2);
    // Each candidate carries its preview over the file, as the text says it.
    let preview = &sides[0]["candidates"][0]["preview"];
    let lines = std::fs::read_to_string(flows(dir.path()))
        .unwrap()
        .lines()
        .count();
    assert_eq!(preview["flows"], lines, "{preview}");
    assert!(preview["tally"]["fixes"].as_u64().unwrap() > 0, "{preview}");
    // Denied at the source, the flow never reached the destination: no recorded flow is
    // from that side, and the text says so instead of a bare "0 fixed".
    let (text, _, _) = fix(dir.path(), line, &[]);
    assert!(
        text.contains("no recorded flow is from this side"),
        "{text}"
    );
    for side in sides {
        assert_eq!(side["outcome"], "fixable", "{side}");
    }
    let shapes: Vec<&str> = sides
        .iter()
        .map(|s| s["candidates"][0]["documents"]["staged"].as_str().unwrap())
        .collect();
    assert!(shapes
        .iter()
        .any(|y| y.contains("kind: StagedNetworkPolicy")));
    assert!(shapes
        .iter()
        .any(|y| y.contains("kind: StagedKubernetesNetworkPolicy")));

    // Both staged, the pending verdict of both sides becomes Allow. Denied at its source, the
    // flow never reached the destination, which reported nothing: its side is checked on the
    // record as the destination would have written it.
    let (yaml, _, _) = fix(dir.path(), line, &["-o", "yaml"]);
    assert_eq!(yaml.matches("\n---\n").count(), 2, "{yaml}");
    let tree = with_file(dir.path(), &yaml);
    let record = std::fs::read_to_string(flows(dir.path()))
        .unwrap()
        .lines()
        .nth(line - 1)
        .unwrap()
        .to_string();
    let both = format!(
        "{record}\n{}\n",
        record.replace("\"reporter\":\"Src\"", "\"reporter\":\"Dst\"")
    );
    let sides_file = tempfile::tempdir().unwrap();
    std::fs::write(flows(sides_file.path()), both).unwrap();
    let (json, _, _) = run(flowtrace()
        .arg("impact")
        .arg("--flows")
        .arg(flows(sides_file.path()))
        .arg("-m")
        .arg(dir.path())
        .arg("--with")
        .arg(tree.path())
        .args(["-o", "json"]));
    let report: Value = serde_json::from_str(&json).unwrap();
    let reporters: std::collections::BTreeSet<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdicts"] == "pending")
        .map(|c| {
            c["flow"]
                .as_str()
                .unwrap()
                .rsplit("reported by ")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reporters.len(), 2, "{json}");
}

#[test]
fn impact_reports_breakage_by_policy_and_exits_like_kubectl_diff() {
    let dir = exported();
    let (text, _, code) = impact(dir.path(), dir.path(), &[]);
    assert_eq!(code, 0, "no change: {text}");
    let (markdown, _, _) = impact(dir.path(), dir.path(), &["-o", "markdown"]);
    assert!(markdown.contains("No verdict changes"), "{markdown}");

    // A policy that denies customer's calls to summary: breakage, grouped under it.
    let deny_summary = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.no-summary, namespace: customer}
spec:
  tier: application
  order: 1
  selector: app == 'customer'
  types: [Egress]
  egress:
  - action: Deny
    protocol: TCP
    destination: {ports: [8080]}
  - action: Pass
";
    let tree = with_file(dir.path(), deny_summary);
    let (text, _, code) = impact(dir.path(), tree.path(), &["--fail-on", "deny"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "tier application: CalicoNetworkPolicy customer/no-summary · namespace customer"
        ),
        "{text}"
    );
    assert!(text.contains("NEWLY DENIED"), "{text}");
    assert!(text.contains("Allow → Deny"), "{text}");

    // A malformed flow line is reported with file and line, and the run exits 2.
    let broken = tempfile::tempdir().unwrap();
    let mut lines = std::fs::read_to_string(flows(dir.path())).unwrap();
    lines.push_str("{\"source_name\": \n");
    std::fs::write(flows(broken.path()), &lines).unwrap();
    let (_, stderr, code) = run(flowtrace()
        .arg("impact")
        .arg("--flows")
        .arg(flows(broken.path()))
        .arg("-m")
        .arg(dir.path())
        .arg("--with")
        .arg(tree.path()));
    assert_eq!(code, 2);
    let total = lines.lines().count();
    assert!(
        stderr.contains(&format!("flows.jsonl:{total}:")),
        "{stderr}"
    );
}

#[test]
fn fix_says_what_is_wrong_with_its_input() {
    let dir = exported();
    let (_, stderr, code) = fix(dir.path(), 100_000, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has no line 100000 (it has "), "{stderr}");
    let (_, stderr, code) = run(flowtrace()
        .arg("fix")
        .arg("-m")
        .arg(dir.path())
        .args(["--flow", "{not json"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--flow:"), "{stderr}");
    let (_, stderr, code) = fix(dir.path(), 1, &["--calico-version", "latest"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--calico-version"), "{stderr}");
    // An allowed flow: nothing to fix, said plainly.
    let line = line_with(
        dir.path(),
        &[
            "\"dest_port\":8080",
            "\"action\":\"Allow\"",
            "\"reporter\":\"Src\"",
        ],
    );
    let (text, _, code) = fix(dir.path(), line, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        text.matches("nothing to fix on this side").count(),
        2,
        "{text}"
    );
}

#[test]
fn a_candidate_that_fails_a_governance_rule_is_marked_and_not_exported() {
    let dir = exported();
    let line = line_with(dir.path(), &METRICS);
    let rules = dir.path().join("rules.toml");
    // New policies are named allow-…: the staged copy of application.summary fails, the new
    // policy passes.
    std::fs::write(&rules, "name_pattern = \"^allow-\"\n").unwrap();
    let rules = rules.to_str().unwrap();
    let (text, stderr, code) = fix(dir.path(), line, &["--rules", rules]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("lint: FAIL name-pattern: name \"summary\" does not match ^allow-"),
        "{text}"
    );
    let (yaml, _, code) = fix(dir.path(), line, &["--rules", rules, "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(
        yaml.contains("name: application.allow-from-customer-tcp-metrics"),
        "{yaml}"
    );
    assert!(!yaml.contains("name: application.summary\n"), "{yaml}");

    // When every candidate fails, nothing is exported and the reason is given.
    std::fs::write(
        dir.path().join("rules.toml"),
        "name_pattern = \"^never$\"\n",
    )
    .unwrap();
    let (yaml, stderr, code) = fix(dir.path(), line, &["--rules", rules, "-o", "yaml"]);
    assert_eq!(code, 1);
    assert!(yaml.is_empty(), "{yaml}");
    assert!(
        stderr.contains("no candidate passes the governance rules"),
        "{stderr}"
    );
}

#[test]
fn fix_and_impact_compute_nothing_from_manifests_that_did_not_all_load() {
    let dir = exported();
    let line = line_with(dir.path(), &METRICS);
    let broken = with_file(dir.path(), "apiVersion: projectcalico.org/v3\nkind: [\n");
    let (text, stderr, code) = run(flowtrace()
        .arg("fix")
        .arg("-m")
        .arg(broken.path())
        .arg("--flows")
        .arg(flows(dir.path()))
        .args(["--line", &line.to_string()]));
    assert_eq!(code, 2);
    assert!(text.is_empty(), "{text}");
    assert!(
        stderr.contains("60-change.yaml:2: invalid YAML"),
        "{stderr}"
    );
    assert!(stderr.contains("no fix proposed"), "{stderr}");
    let (text, stderr, code) = impact(dir.path(), broken.path(), &["-o", "markdown"]);
    assert_eq!(code, 2);
    assert!(text.is_empty(), "no comment that reads as a result: {text}");
    assert!(stderr.contains("no impact computed"), "{stderr}");
}
