//! The built-in rules and Rego on the governance example of `docs/examples/governance/` (the
//! documentation's example is the test's input), and on small cases.

use std::path::{Path, PathBuf};

use super::*;
use crate::policy::load::{objects, read_objects};

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/governance")
        .join(path)
}

fn example_rules() -> Rules {
    let text = std::fs::read_to_string(example("rules.toml")).unwrap();
    Rules::parse("rules.toml", &text).unwrap()
}

fn example_objects() -> Vec<ManifestObject> {
    let (objects, errors) = read_objects(&[example("manifests.yaml")]);
    assert!(errors.is_empty(), "{errors:?}");
    objects
}

fn pairs(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.object.clone(), f.rule.clone()))
        .collect()
}

fn parsed(text: &str) -> Vec<ManifestObject> {
    let mut errors = Vec::new();
    let found = objects(Path::new("t.yaml"), text, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    found
}

#[test]
fn the_built_in_rules_find_what_the_example_breaks_and_nothing_else() {
    let findings = lint(&example_objects(), &example_rules(), None).unwrap();
    let open = "NetworkPolicy summary/application.open-summary";
    let database = "NetworkPolicy appid_bank_fra_database";
    let expected: Vec<(String, String)> = [
        (open, "min-order"),
        (open, "selector-keys"),
        (open, "mixed-environments"),
        (open, "allow-all-ingress"),
        (open, "name-pattern"),
        (
            "GlobalNetworkPolicy application.appid_bank_fra_everywhere",
            "cluster-wide-policy",
        ),
        (database, "namespace-required"),
        (database, "selector-keys"),
        (database, "allow-all-ingress"),
        ("GlobalNetworkSet payment-partners", "global-network-set"),
    ]
    .iter()
    .map(|(o, r)| (o.to_string(), r.to_string()))
    .collect();
    assert_eq!(pairs(&findings), expected, "{findings:#?}");
    let warn = findings.last().unwrap();
    assert_eq!(warn.level, Level::Warn);
    assert!(
        warn.message.contains("namespace summary"),
        "{}",
        warn.message
    );
    // The allow-all rule names the rule, and the finding its document's line.
    let allow_all = findings
        .iter()
        .find(|f| f.rule == "allow-all-ingress")
        .unwrap();
    assert_eq!(
        allow_all.message,
        "spec.ingress[0] allows every source on every port"
    );
    assert!(
        allow_all.at.ends_with("manifests.yaml:21"),
        "{}",
        allow_all.at
    );
}

#[test]
fn without_a_rules_file_only_the_two_universal_rules_apply() {
    let findings = lint(&example_objects(), &Rules::default(), None).unwrap();
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "allow-all-ingress",
            "namespace-required",
            "allow-all-ingress"
        ]
    );
}

#[test]
fn a_rules_file_with_a_typo_or_a_bad_pattern_says_where() {
    let error = Rules::parse(
        "r.toml",
        "require_namespace = true\nno_allow_all_ingres = true\n",
    )
    .unwrap_err();
    assert!(
        error.starts_with("r.toml:2: unknown field `no_allow_all_ingres`"),
        "{error}"
    );
    let error = Rules::parse("r.toml", "name_pattern = \"(\"\n").unwrap_err();
    assert!(
        error.contains("name_pattern is not a regular expression"),
        "{error}"
    );
}

#[test]
fn rego_v1_rules_with_data_and_the_cidr_built_ins_run_as_conftest_runs_them() {
    let mut rego = RegoRules::load(
        &[example("policy")],
        &[example("data")],
        false,
        Packages::Named(vec!["main".into()]),
    )
    .unwrap();
    let findings = lint(
        &example_objects(),
        &Rules {
            no_allow_all_ingress: false,
            require_namespace: false,
            ..Rules::default()
        },
        Some(&mut rego),
    )
    .unwrap();
    let found: Vec<(String, Level, String)> = findings
        .iter()
        .map(|f| (f.rule.clone(), f.level, f.message.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "main.deny".to_string(),
                Level::Fail,
                "NetworkPolicy application.open-summary: spec.ingress[1] allows 198.51.100.0/24, which is not a partner range".to_string()
            ),
            (
                "main.deny_metadata".to_string(),
                Level::Fail,
                "application.open-summary: spec.egress[0] allows 169.254.0.0/16, which reaches the cloud metadata service".to_string()
            ),
        ]
    );

    // A policy without an order is a warning (warn_ rules); a partner range is not a failure.
    let objects = parsed(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: ns}
spec:
  ingress:
  - action: Allow
    source: {nets: [203.0.113.128/25]}
",
    );
    let findings = lint(&objects, &Rules::default(), Some(&mut rego)).unwrap();
    assert_eq!(
        pairs(&findings),
        [(
            "NetworkPolicy ns/p".to_string(),
            "main.warn_order".to_string()
        )]
    );
    assert_eq!(findings[0].level, Level::Warn);
}

fn rego_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const V0: &str = "package main
deny[msg] {
  input.kind == \"GlobalNetworkPolicy\"
  not input.spec.tier
  msg := sprintf(\"%v has no tier\", [input.metadata.name])
}
";

#[test]
fn rego_v0_needs_the_flag_and_says_so_without_it() {
    let dir = rego_dir(&[("old.rego", V0), ("old_test.rego", "this is not rego")]);
    let error = RegoRules::load(
        &[dir.path().to_path_buf()],
        &[],
        false,
        Packages::Named(vec!["main".into()]),
    )
    .err()
    .unwrap();
    assert_eq!(error.len(), 1, "the _test file is not loaded: {error:?}");
    assert!(
        error[0].contains("old.rego: not valid Rego v1 (it is Rego v0: --rego-version v0)"),
        "{error:?}"
    );
    let mut rego = RegoRules::load(
        &[dir.path().to_path_buf()],
        &[],
        true,
        Packages::Named(vec!["main".into()]),
    )
    .unwrap();
    let objects = parsed(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec: {selector: all()}
",
    );
    let findings = lint(&objects, &Rules::default(), Some(&mut rego)).unwrap();
    assert_eq!(findings[0].message, "g has no tier");
    assert_eq!(findings[0].rule, "main.deny");
}

#[test]
fn packages_are_chosen_as_conftest_chooses_them() {
    let dir = rego_dir(&[
        ("a.rego", "package main\ndeny contains \"from main\" if input.kind == \"Tier\"\n"),
        (
            "b.rego",
            "package network.strict\nviolation contains {\"msg\": \"from strict\"} if input.kind == \"Tier\"\n",
        ),
    ]);
    let tier = parsed("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n");
    let run = |packages| {
        let mut rego = RegoRules::load(&[dir.path().to_path_buf()], &[], false, packages).unwrap();
        lint(&tier, &Rules::default(), Some(&mut rego))
            .unwrap()
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(Packages::Named(vec!["main".into()])), ["from main"]);
    assert_eq!(
        run(Packages::Named(vec!["network.strict".into()])),
        ["from strict"]
    );
    assert_eq!(run(Packages::All), ["from main", "from strict"]);
}

#[test]
fn the_cidr_built_ins_treat_an_address_as_its_own_network_and_never_mix_families() {
    let dir = rego_dir(&[(
        "n.rego",
        "package main
deny contains \"a\" if net.cidr_intersects(\"10.0.0.0/8\", \"10.1.2.3\")
deny contains \"b\" if net.cidr_intersects(\"10.0.0.0/8\", \"11.0.0.0/8\")
deny contains \"c\" if net.cidr_overlap(\"10.1.0.0/16\", \"10.0.0.0/8\")
deny contains \"d\" if net.cidr_intersects(\"::/0\", \"10.0.0.0/8\")
",
    )]);
    let mut rego = RegoRules::load(&[dir.path().to_path_buf()], &[], false, Packages::All).unwrap();
    let tier = parsed("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n");
    let messages: Vec<String> = lint(&tier, &Rules::default(), Some(&mut rego))
        .unwrap()
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert_eq!(messages, ["a", "c"]);
}

#[test]
fn an_object_defined_twice_fails_even_without_a_rules_file() {
    let objects = parsed(
        "apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: application.summary, namespace: summary}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.summary, namespace: summary}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: application.summary, namespace: summary}
spec: {selector: all()}
",
    );
    let findings = lint(&objects, &Rules::default(), None).unwrap();
    assert_eq!(
        pairs(&findings),
        [(
            "StagedNetworkPolicy summary/application.summary".to_string(),
            "duplicate-object".to_string()
        )]
    );
    assert_eq!(
        findings[0].message,
        "also defined at t.yaml:1: only one of the two takes effect"
    );
}
