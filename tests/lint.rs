//! `flowtrace lint` end to end on the governance example: Conftest's output shape, exit codes, and
//! nothing lost when one input is broken.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn example(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/governance")
        .join(path)
}

fn lint(args: &[&str]) -> (String, String, i32) {
    let output = Command::cargo_bin("flowtrace")
        .unwrap()
        .arg("lint")
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
        output.status.code().unwrap_or(-1),
    )
}

fn path(p: &str) -> String {
    example(p).display().to_string()
}

#[test]
fn findings_print_as_conftest_prints_them_and_a_failure_exits_1() {
    let (text, stderr, code) = lint(&[
        "--rules",
        &path("rules.toml"),
        "--policy",
        &path("policy"),
        "--data",
        &path("data"),
        &path("manifests.yaml"),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let manifests = path("manifests.yaml");
    assert!(text.contains(&format!(
        "FAIL - {manifests}:21 - NetworkPolicy summary/application.open-summary - main.deny_metadata - "
    )), "{text}");
    assert!(
        text.contains(&format!(
            "WARN - {manifests}:63 - GlobalNetworkSet payment-partners - global-network-set - "
        )),
        "{text}"
    );
    assert!(
        text.ends_with("6 object(s) checked: 11 failure(s), 1 warning(s)\n"),
        "{text}"
    );

    let (json, _, code) = lint(&[
        "-o",
        "json",
        "--rules",
        &path("rules.toml"),
        &path("manifests.yaml"),
    ]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["objects"], 6);
    assert_eq!(report["findings"].as_array().unwrap().len(), 10);
    assert_eq!(report["findings"][0]["rule"], "min-order");
    assert_eq!(report["findings"][0]["level"], "fail");
}

#[test]
fn clean_manifests_exit_0_and_broken_input_exits_2_without_losing_the_rest() {
    let bank =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/examples/bank/40-application.yaml");
    let (text, _, code) = lint(&[bank.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.ends_with("3 object(s) checked: 0 failure(s), 0 warning(s)\n"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: a}\nspec:\n  ingress: [{action: Allow}]\n---\nkind: [\n",
    )
    .unwrap();
    let (text, stderr, code) = lint(&[broken.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.yaml:7: invalid YAML"), "{stderr}");
    // The readable object was still checked.
    assert!(text.contains("namespace-required"), "{text}");
    assert!(text.contains("allow-all-ingress"), "{text}");

    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "selector_key = [\"app\"]\n").unwrap();
    let (_, stderr, code) = lint(&["--rules", rules.to_str().unwrap(), bank.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("rules.toml:1: unknown field `selector_key`"),
        "{stderr}"
    );

    let rego = dir.path().join("bad.rego");
    std::fs::write(&rego, "package main\ndeny[msg] { true; msg := \"x\" }\n").unwrap();
    let (_, stderr, code) = lint(&["--policy", rego.to_str().unwrap(), bank.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.rego: not valid Rego v1 (it is Rego v0: --rego-version v0)"),
        "{stderr}"
    );
    // The manifests are still checked, with the default rules, and the run still fails.
    assert!(
        stderr.contains("checked with the default rules only"),
        "{stderr}"
    );
    let (_, stderr, code) = lint(&[
        "--rego-version",
        "v0",
        "--policy",
        rego.to_str().unwrap(),
        bank.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");

    // Rego that is valid in neither syntax gets no hint.
    std::fs::write(&rego, "package main\ndeny contains msg if {\n").unwrap();
    let (_, stderr, code) = lint(&["--policy", rego.to_str().unwrap(), bank.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.rego: not valid Rego v1: "), "{stderr}");

    // A path without manifests is not a clean bill of health.
    let empty = tempfile::tempdir().unwrap();
    let (_, stderr, code) = lint(&[empty.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("nothing to check: no Kubernetes objects in"),
        "{stderr}"
    );
}
