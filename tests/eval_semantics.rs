//! Table-style integration tests of the policy evaluator against Calico's semantics.
//!
//! Every test names the Calico behaviour it checks: `DESIGN.md` ("Semantics are Calico's, exactly"),
//! `notes/calico-semantics.md` (§ numbers below) or `shared/research/calico.md` (research §…), each of
//! which cites the Felix / libcalico-go source function.
//!
//! A test's manifests are in `tests/semantics/`, named after the test, or after what several tests
//! share (`fixture!`); the flows and the verdicts they must get are here, beside the behaviour
//! they check.
//!
//! Hits are rendered compactly as
//! `"<policy_index>|<tier>|<kind>|<ns/name or name>|<action>|<rule_index>"`, and EndOfTier hits add
//! `"|trigger=<kind>:<ns/name>"`.

use std::net::IpAddr;

use flowtrace::model::{
    Endpoint, EndpointType, Flow, HitAction, Labels, PolicyHit, PolicyKind, Protocol, Reporter,
    Verdict,
};
use flowtrace::policy::endpoint::Need;
use flowtrace::policy::{load_str, Evaluator, LoadReport, PolicySet};

/// Manifests from `tests/semantics/NAME.yaml`.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("semantics/", $name, ".yaml"))
    };
}

// Builders

fn labels(items: &[&str]) -> Labels {
    Labels::from_kv_strings(items.iter().copied())
}

fn endpoint(
    kind: EndpointType,
    ns: Option<&str>,
    name: &str,
    l: Option<&[&str]>,
    ip: Option<&str>,
) -> Endpoint {
    Endpoint {
        kind,
        name: name.into(),
        namespace: ns.map(Into::into),
        labels: l.map(labels),
        ip: ip.map(|i| i.parse::<IpAddr>().expect("test IP")),
        port: None,
    }
}

/// A workload endpoint whose flow record carries these labels.
fn pod(ns: &str, name: &str, l: &[&str]) -> Endpoint {
    endpoint(
        EndpointType::WorkloadEndpoint,
        Some(ns),
        name,
        Some(l),
        None,
    )
}

/// A workload endpoint with an IP.
fn pod_ip(ns: &str, name: &str, l: &[&str], ip: &str) -> Endpoint {
    endpoint(
        EndpointType::WorkloadEndpoint,
        Some(ns),
        name,
        Some(l),
        Some(ip),
    )
}

/// A workload endpoint whose labels come from a Pod manifest.
fn bare_pod(ns: &str, name: &str) -> Endpoint {
    endpoint(EndpointType::WorkloadEndpoint, Some(ns), name, None, None)
}

fn hep(name: &str, l: &[&str]) -> Endpoint {
    endpoint(EndpointType::HostEndpoint, None, name, Some(l), None)
}

/// An external peer (Goldmane type `Network`) with an IP.
fn network(ip: &str) -> Endpoint {
    endpoint(EndpointType::Network, None, "pub", None, Some(ip))
}

/// A NetworkSet / GlobalNetworkSet peer as Goldmane names it (labels from the manifest).
fn netset(ns: Option<&str>, name: &str) -> Endpoint {
    endpoint(EndpointType::NetworkSet, ns, name, None, None)
}

fn proto(name: &str) -> Protocol {
    Protocol::parse(name).expect("test protocol")
}

fn flow(src: Endpoint, dst: Endpoint, protocol: &str, port: u16, reporter: Reporter) -> Flow {
    Flow {
        source: src,
        dest: dst,
        protocol: proto(protocol),
        dest_port: Some(port),
        dest_service: None,
        reporter,
        reported_action: None,
        reported_policies: None,
    }
}

fn ingress(src: Endpoint, dst: Endpoint, protocol: &str, port: u16) -> Flow {
    flow(src, dst, protocol, port, Reporter::Dst)
}

fn egress(src: Endpoint, dst: Endpoint, protocol: &str, port: u16) -> Flow {
    flow(src, dst, protocol, port, Reporter::Src)
}

// Evaluation helpers

fn load(yaml: &str) -> PolicySet {
    let (set, report) = load_str("test.yaml", yaml);
    assert!(
        report.errors.is_empty(),
        "unexpected load errors: {:#?}",
        report.errors
    );
    set
}

fn load_report(yaml: &str) -> LoadReport {
    load_str("manifests/bad.yaml", yaml).1
}

fn policy_name(hit: &PolicyHit) -> String {
    if hit.namespace.is_empty() {
        hit.name.clone()
    } else {
        format!("{}/{}", hit.namespace, hit.name)
    }
}

fn render(hit: &PolicyHit) -> String {
    let action = match hit.action {
        HitAction::Allow => "Allow",
        HitAction::Deny => "Deny",
        HitAction::Pass => "Pass",
    };
    let mut text = format!(
        "{}|{}|{}|{}|{}|{}",
        hit.policy_index,
        hit.tier,
        hit.kind,
        policy_name(hit),
        action,
        hit.rule_index
    );
    if hit.kind == PolicyKind::EndOfTier {
        assert_eq!(
            hit.rule_index, -1,
            "EndOfTier hits have rule index -1: {hit:?}"
        );
        assert!(
            hit.name.is_empty() && hit.namespace.is_empty(),
            "EndOfTier hit names nothing itself: {hit:?}"
        );
        let trigger = hit.trigger.as_ref().expect("EndOfTier hit has a trigger");
        assert_eq!(
            trigger.tier, hit.tier,
            "trigger is in the same tier: {hit:?}"
        );
        text.push_str(&format!(
            "|trigger={}:{}",
            trigger.kind,
            policy_name(trigger)
        ));
    } else {
        assert!(
            hit.trigger.is_none(),
            "only EndOfTier hits have a trigger: {hit:?}"
        );
    }
    text
}

/// One evaluated flow: both verdicts, their hits rendered, and what was missing.
#[derive(Debug)]
struct Traced {
    enforced: Verdict,
    enforced_hits: Vec<String>,
    enforced_need: Option<Need>,
    pending: Verdict,
    pending_hits: Vec<String>,
    pending_need: Option<Need>,
}

fn trace_in(set: &PolicySet, f: &Flow) -> Traced {
    let mut evaluator = Evaluator::new(set);
    let evaluation = evaluator.evaluate(f);
    let enforced_hits = evaluator
        .policy_hits(f, &evaluation.enforced.hits)
        .iter()
        .map(render)
        .collect();
    let pending_hits = evaluator
        .policy_hits(f, &evaluation.pending.hits)
        .iter()
        .map(render)
        .collect();
    Traced {
        enforced: evaluation.enforced.verdict,
        enforced_hits,
        enforced_need: evaluation.enforced.undetermined.map(|u| u.need),
        pending: evaluation.pending.verdict,
        pending_hits,
        pending_need: evaluation.pending.undetermined.map(|u| u.need),
    }
}

fn trace(yaml: &str, f: &Flow) -> Traced {
    trace_in(&load(yaml), f)
}

/// For each case (a label for failures, a flow, its enforced verdict and its one hit): traces the
/// flow and asserts the enforced verdict and hit.
#[track_caller]
fn expect_each(
    set: &PolicySet,
    cases: impl IntoIterator<Item = (String, Flow, Verdict, &'static str)>,
) {
    for (label, flow, verdict, hit) in cases {
        let t = trace_in(set, &flow);
        assert_eq!(
            (t.enforced, t.enforced_hits.clone()),
            (verdict, vec![hit.to_string()]),
            "{label}: {t:#?}"
        );
    }
}

/// [`expect_each`] for flows into `a/web` (`app=web`) on port 80: each case a source, the
/// protocol, the enforced verdict and its one hit.
#[track_caller]
fn expect_into_web(
    set: &PolicySet,
    cases: impl IntoIterator<Item = (Endpoint, &'static str, Verdict, &'static str)>,
) {
    expect_each(
        set,
        cases.into_iter().map(|(src, protocol, verdict, hit)| {
            let name = src.display_name();
            (
                format!("{name} {protocol}"),
                ingress(src, pod("a", "web", &["app=web"]), protocol, 80),
                verdict,
                hit,
            )
        }),
    );
}

/// Asserts the enforced verdict and hits, and that pending equals enforced (no staged policies).
#[track_caller]
fn expect(t: &Traced, verdict: Verdict, hits: &[&str]) {
    assert_eq!(
        (t.enforced, &t.enforced_hits),
        (verdict, &hits.iter().map(|s| s.to_string()).collect()),
        "enforced: {t:#?}"
    );
    assert_eq!(
        (t.pending, &t.pending_hits),
        (t.enforced, &t.enforced_hits),
        "pending differs from enforced: {t:#?}"
    );
}

#[track_caller]
fn expect_pending(t: &Traced, verdict: Verdict, hits: &[&str]) {
    assert_eq!(
        (t.pending, &t.pending_hits),
        (verdict, &hits.iter().map(|s| s.to_string()).collect()),
        "pending: {t:#?}"
    );
}

#[track_caller]
fn expect_enforced(t: &Traced, verdict: Verdict, hits: &[&str]) {
    assert_eq!(
        (t.enforced, &t.enforced_hits),
        (verdict, &hits.iter().map(|s| s.to_string()).collect()),
        "enforced: {t:#?}"
    );
}

const PROFILE_A: &str = "0|__PROFILE__|Profile|kns.a|Allow|0";

const NAMESPACES: &str = fixture!("namespaces");

fn with_namespaces(yaml: &str) -> String {
    format!("{NAMESPACES}---\n{yaml}")
}

/// A GlobalNetworkPolicy in `tier` with one ingress rule of `action` matching everything.
fn gnp(tier: &str, name: &str, order: Option<u32>, action: &str) -> String {
    let order = order.map(|o| format!("\n  order: {o}")).unwrap_or_default();
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  tier: {tier}{order}\n  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: {action}\n---\n"
    )
}

fn tier(name: &str, order: Option<u32>, default_action: Option<&str>) -> String {
    let mut spec = String::new();
    if let Some(o) = order {
        spec.push_str(&format!("\n  order: {o}"));
    }
    if let Some(a) = default_action {
        spec.push_str(&format!("\n  defaultAction: {a}"));
    }
    if spec.is_empty() {
        spec.push_str(" {}");
    }
    format!("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}}}\nspec:{spec}\n---\n")
}

fn web_flow() -> Flow {
    ingress(
        pod("a", "client", &["app=client"]),
        pod("a", "web", &["app=web"]),
        "tcp",
        80,
    )
}

// 1. Ordering

/// Tiers run in `order`, ties broken by tier name (research §4.1, `felix/calc/policy_sorter.go: TierLess`);
/// Pass moves on to the next tier, and after the last tier the `kns.<ns>` profile allows.
#[test]
fn tiers_run_by_order_then_name() {
    let yaml = [
        tier("b-tier", Some(100), None),
        tier("a-tier", Some(100), None),
        tier("security", Some(50), None),
        gnp("b-tier", "b-tier.p", None, "Pass"),
        gnp("a-tier", "a-tier.p", None, "Pass"),
        gnp("security", "security.p", None, "Pass"),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &[
            "0|security|GlobalNetworkPolicy|p|Pass|0",
            "1|a-tier|GlobalNetworkPolicy|p|Pass|0",
            "2|b-tier|GlobalNetworkPolicy|p|Pass|0",
            "3|__PROFILE__|Profile|kns.a|Allow|0",
        ],
    );
}

/// A Tier without `order` is stored with order 1,000,000 like `default` (research §4.1, commit #9189,
/// `libcalico-go/lib/resources/tier.go DefaultTierFields`), so it sorts with `default` by name:
/// `aaa` before `default`, `zzz` after.
#[test]
fn tier_without_order_sorts_with_default_by_name() {
    let yaml = [
        tier("zzz", None, None),
        tier("aaa", None, None),
        gnp("zzz", "zzz.p", None, "Pass"),
        gnp("aaa", "aaa.p", None, "Pass"),
        gnp("default", "default.p", None, "Pass"),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &[
            "0|aaa|GlobalNetworkPolicy|p|Pass|0",
            "1|default|GlobalNetworkPolicy|p|Pass|0",
            "2|zzz|GlobalNetworkPolicy|p|Pass|0",
            "3|__PROFILE__|Profile|kns.a|Allow|0",
        ],
    );
}

/// Within a tier: `order` ascending, ties by name, no `order` last (research §4.1, `PolKVLess`:
/// nil order = +Inf). Each case: the first policy in Felix's order decides the flow.
#[test]
fn policies_within_a_tier_by_order_then_name_missing_order_last() {
    let cases: &[(&str, String, &str)] = &[
        (
            "lower order first",
            [
                gnp("default", "p-allow", Some(20), "Allow"),
                gnp("default", "q-deny", Some(10), "Deny"),
            ]
            .concat(),
            "0|default|GlobalNetworkPolicy|q-deny|Deny|0",
        ),
        (
            "tie by name",
            [
                gnp("default", "b-allow", Some(10), "Allow"),
                gnp("default", "a-deny", Some(10), "Deny"),
            ]
            .concat(),
            "0|default|GlobalNetworkPolicy|a-deny|Deny|0",
        ),
        (
            "no order is last",
            [
                gnp("default", "a-allow", None, "Allow"),
                gnp("default", "z-deny", Some(999_999), "Deny"),
            ]
            .concat(),
            "0|default|GlobalNetworkPolicy|z-deny|Deny|0",
        ),
        (
            "two without order by name",
            [
                gnp("default", "n2", None, "Allow"),
                gnp("default", "n1", None, "Deny"),
            ]
            .concat(),
            "0|default|GlobalNetworkPolicy|n1|Deny|0",
        ),
    ];
    for (case, yaml, hit) in cases {
        let t = trace(yaml, &web_flow());
        assert_eq!(t.enforced_hits, vec![hit.to_string()], "{case}: {t:#?}");
    }
}

/// Kubernetes NetworkPolicy sits in tier `default` at order 1000 (§3 "Policy envelope", `order = 1000.0`):
/// a Calico policy at order 500 runs before it, one at order 2000 after it.
#[test]
fn kubernetes_policy_has_order_1000_in_default_tier() {
    let set = load(fixture!("kubernetes-policy-has-order-1000-in-default-tier"));
    let t = trace_in(&set, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &["0|default|NetworkPolicy|a/web|Allow|0"],
    );
    let ssh = ingress(
        pod("a", "client", &["app=client"]),
        pod("a", "web", &["app=web"]),
        "tcp",
        22,
    );
    expect(
        &trace_in(&set, &ssh),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/early|Deny|0"],
    );
}

/// Ties at equal order are broken by the 3.30/3.31 backend key (research §4.1 `PolKVLess`): a Calico NP
/// `zzz` in the default tier is keyed `a/default.zzz`, the Kubernetes NP `web` `a/knp.default.web`, so at
/// the same order 1000 the Calico policy runs first (`d` < `k`).
#[test]

fn equal_order_tie_break_uses_backend_key_with_tier_prefix() {
    let yaml = fixture!("equal-order-tie-break-uses-backend-key-with-tier-prefix");
    let t = trace(yaml, &web_flow());
    expect(
        &t,
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/zzz|Deny|0"],
    );
}

// 2. Actions

/// Allow and Deny end evaluation, Log continues with the next rule (research §4.2 step 1,
/// `felix/rules/endpoints.go`, `app-policy/checker/check.go: checkTiers`).
#[test]
fn allow_deny_end_evaluation_and_log_continues() {
    let set = load(fixture!("allow-deny-end-evaluation-and-log-continues"));
    let cases = [
        (
            80,
            Verdict::Deny,
            "0|default|CalicoNetworkPolicy|a/web|Deny|1",
        ),
        (
            81,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|2",
        ),
    ];
    for (port, verdict, hit) in cases {
        let f = ingress(
            pod("a", "client", &[]),
            pod("a", "web", &["app=web"]),
            "tcp",
            port,
        );
        expect(&trace_in(&set, &f), verdict, &[hit]);
    }
}

/// Pass skips the remaining policies of the tier and continues with the next tier (research §4.2 step 1).
#[test]
fn pass_skips_rest_of_tier() {
    let yaml = [
        tier("security", Some(10), None),
        gnp("security", "security.first", Some(1), "Pass"),
        gnp("security", "security.second", Some(2), "Deny"),
        gnp("default", "allow-all", None, "Allow"),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &[
            "0|security|GlobalNetworkPolicy|first|Pass|0",
            "1|default|GlobalNetworkPolicy|allow-all|Allow|0",
        ],
    );
}

/// A policy whose rules don't match falls through to the next policy in the tier (research §4.2 step 1);
/// the deciding policy is reported at policy_index 0 (indexes count reported hits, §6).
#[test]
fn non_matching_policy_falls_through_to_next_policy() {
    let yaml = fixture!("non-matching-policy-falls-through-to-next-policy");
    let t = trace(yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &["0|default|GlobalNetworkPolicy|web|Allow|1"],
    );
}

// 3. End of tier

/// A tier that selected the endpoint but decided nothing applies defaultAction Deny (research §4.2 step 2),
/// reported as EndOfTier with rule index -1; the trigger is the *last* applicable enforced policy in the
/// enforced trace (`endpoint_lookup_cache.go`) and the *first* in the pending trace (`checker/check.go`)
/// (research §1.7, §4.8).
#[test]
fn end_of_tier_deny_triggers_last_enforced_first_pending() {
    let yaml = fixture!("end-of-tier-deny-triggers-last-enforced-first-pending");
    let t = trace(yaml, &web_flow());
    expect_enforced(
        &t,
        Verdict::Deny,
        &["0|security|EndOfTier||Deny|-1|trigger=GlobalNetworkPolicy:second"],
    );
    expect_pending(
        &t,
        Verdict::Deny,
        &["0|security|EndOfTier||Deny|-1|trigger=GlobalNetworkPolicy:first"],
    );
}

/// defaultAction Pass: an end-of-tier `pass|-1` hit (3.30+, PR #10001, research §1.7) and evaluation goes on.
#[test]
fn end_of_tier_pass_continues_to_next_tier() {
    let yaml = [
        tier("platform", Some(20), Some("Pass")),
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: platform.dns, namespace: a}\nspec:\n  tier: platform\n  selector: all()\n  ingress:\n  - action: Allow\n    protocol: UDP\n    destination: {ports: [53]}\n---\n".to_string(),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &[
            "0|platform|EndOfTier||Pass|-1|trigger=CalicoNetworkPolicy:a/dns",
            "1|__PROFILE__|Profile|kns.a|Allow|0",
        ],
    );
}

/// Tiers with no policy selecting the endpoint (or not applying in this direction) are skipped, including
/// their default action (research §4.1, `tiered-policy.mdx`, `rules/endpoints.go`).
#[test]
fn tiers_selecting_nothing_are_skipped() {
    let yaml = fixture!("tiers-selecting-nothing-are-skipped");
    let t = trace(yaml, &web_flow());
    expect(&t, Verdict::Allow, &[PROFILE_A]);
}

/// With no applicable policy at all a workload is allowed by its `kns.<ns>` profile, rule 0
/// (§6 "Profile hit", §8); a host endpoint without policy and profiles is denied (§8, `endpoints.go`
/// "Drop if no profiles matched").
#[test]
fn profiles_allow_workloads_and_hosts_without_policy_are_denied() {
    let set = load(NAMESPACES);
    let to_b = ingress(
        pod("a", "client", &[]),
        pod("b", "web", &["app=web"]),
        "tcp",
        80,
    );
    expect(
        &trace_in(&set, &to_b),
        Verdict::Allow,
        &["0|__PROFILE__|Profile|kns.b|Allow|0"],
    );
    let to_host = ingress(
        pod("a", "client", &[]),
        hep("node1-eth0", &["role=node"]),
        "tcp",
        80,
    );
    expect(&trace_in(&set, &to_host), Verdict::Deny, &[]);
}

// 5. Selectors and namespace scoping

/// A Calico NetworkPolicy's `selector` is ANDed with `projectcalico.org/namespace == '<ns>'` (§2.3
/// `ConvertNetworkPolicyV3ToV1Value`): `all()` in namespace a does not select a pod in b.
#[test]
fn calico_network_policy_selector_is_namespace_scoped() {
    let yaml = with_namespaces(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: a}\nspec:\n  selector: all()\n  ingress:\n  - action: Deny\n",
    );
    let set = load(&yaml);
    expect(
        &trace_in(&set, &web_flow()),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/deny-all|Deny|0"],
    );
    let in_b = ingress(
        pod("a", "client", &[]),
        pod("b", "web", &["app=web"]),
        "tcp",
        80,
    );
    expect(
        &trace_in(&set, &in_b),
        Verdict::Allow,
        &["0|__PROFILE__|Profile|kns.b|Allow|0"],
    );
}

/// Rule `selector` in a namespaced policy only matches peers in the policy's namespace; `namespaceSelector`
/// (pcns.-prefixed namespace labels) replaces that restriction and is ANDed with `selector` (§2.2 steps 1–4).
#[test]
fn rule_selector_is_namespace_scoped_and_namespace_selector_widens_it() {
    let yaml = with_namespaces(fixture!(
        "rule-selector-is-namespace-scoped-and-namespace-selector-widens-it"
    ));
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            pod("a", "client", &["app=client"]),
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        (pod("b", "client", &["app=client"]), Verdict::Deny, eot),
        (
            pod("b", "monitor", &["app=monitor"]),
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (pod("b", "other", &["app=other"]), Verdict::Deny, eot),
        (pod("a", "monitor", &["app=monitor"]), Verdict::Deny, eot),
        (
            pod("c", "anything", &["app=x"]),
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|2",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(src, verdict, hit)| {
            let name = src.display_name();
            (
                format!("source {name}"),
                ingress(src, pod("a", "web", &["app=web"]), "tcp", 80),
                verdict,
                hit,
            )
        }),
    );
}

/// `namespaceSelector: all()` → `has(projectcalico.org/namespace)` (any namespaced endpoint, not hosts);
/// `global()` → `!has(projectcalico.org/namespace)` (hosts and global network sets, not the own namespace)
/// (§2.2 step 1, research §4.8).
#[test]
fn namespace_selector_all_and_global() {
    let yaml = with_namespaces(fixture!("namespace-selector-all-and-global"));
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            pod("c", "x", &[]),
            "tcp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        (hep("node1", &["role=node"]), "tcp", Verdict::Deny, eot),
        (
            hep("node1", &["role=node"]),
            "udp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (pod("a", "same-ns", &[]), "udp", Verdict::Deny, eot),
    ];
    expect_into_web(&set, cases);
}

/// `notSelector` is copied unchanged, not namespace-scoped (§2.2 step 5): with `namespaceSelector: all()`
/// a peer in another namespace carrying the excluded label is excluded. Alone, it still triggers the
/// restriction to the policy's own namespace (§2.2 step 4).
#[test]
fn not_selector_is_not_namespace_scoped() {
    let yaml = with_namespaces(fixture!("not-selector-is-not-namespace-scoped"));
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (pod("b", "bad", &["app=bad"]), "tcp", Verdict::Deny, eot),
        (
            pod("b", "good", &["app=good"]),
            "tcp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        (
            pod("a", "good", &["app=good"]),
            "udp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (pod("a", "bad", &["app=bad"]), "udp", Verdict::Deny, eot),
        (pod("b", "good", &["app=good"]), "udp", Verdict::Deny, eot),
    ];
    expect_into_web(&set, cases);
}

const SERVICE_ACCOUNT_MANIFESTS: &str = fixture!("service-account-manifests");

/// `serviceAccounts.names` → `projectcalico.org/serviceaccount in {…}` (the pod's serviceAccountName),
/// `serviceAccounts.selector` → `pcsa.`-prefixed ServiceAccount labels; both namespace-scoped in a
/// namespaced policy (§2.2 step 2, §2.1 label names).
#[test]
fn rule_service_accounts_by_name_and_selector() {
    let yaml = format!(
        "{SERVICE_ACCOUNT_MANIFESTS}---\n{}",
        fixture!("rule-service-accounts-by-name-and-selector")
    );
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            bare_pod("a", "api"),
            "tcp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        (bare_pod("a", "batch"), "tcp", Verdict::Deny, eot),
        (bare_pod("b", "api"), "tcp", Verdict::Deny, eot),
        (
            bare_pod("a", "batch"),
            "udp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (bare_pod("a", "api"), "udp", Verdict::Deny, eot),
    ];
    expect_into_web(&set, cases);
}

/// GlobalNetworkPolicy `namespaceSelector` (pcns.-prefixed, ANDed with `selector`) and
/// `serviceAccountSelector` (pcsa.-prefixed) at policy level (§2.3 `ConvertGlobalNetworkPolicyV3ToV1Value`).
#[test]
fn gnp_namespace_selector_and_service_account_selector() {
    let yaml = with_namespaces(&format!(
        "{SERVICE_ACCOUNT_MANIFESTS}---\n{}",
        fixture!("gnp-namespace-selector-and-service-account-selector")
    ));
    let set = load(&yaml);
    let client = || pod("c", "client", &[]);
    let cases = [
        (
            pod("b", "web", &[]),
            Verdict::Deny,
            "0|default|GlobalNetworkPolicy|beta-deny|Deny|0",
        ),
        (
            pod("c", "web", &[]),
            Verdict::Allow,
            "0|__PROFILE__|Profile|kns.c|Allow|0",
        ),
        (
            bare_pod("a", "api"),
            Verdict::Deny,
            "0|default|GlobalNetworkPolicy|frontend-deny|Deny|0",
        ),
        (
            bare_pod("a", "batch"),
            Verdict::Allow,
            "0|__PROFILE__|Profile|kns.a|Allow|0",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(dst, verdict, hit)| {
            let name = dst.display_name();
            (
                name.to_string(),
                ingress(client(), dst, "tcp", 80),
                verdict,
                hit,
            )
        }),
    );
}

/// GNP `namespaceSelector: all()` is rewritten to `has(projectcalico.org/namespace)` (§2.3), so it selects
/// workloads but not host endpoints, while `selector: all()` alone selects hosts too.
#[test]
fn gnp_namespace_selector_all_does_not_select_hosts() {
    let set = load(fixture!("gnp-namespace-selector-all-does-not-select-hosts"));
    let to_pod = ingress(pod("c", "client", &[]), pod("a", "web", &[]), "tcp", 80);
    expect(
        &trace_in(&set, &to_pod),
        Verdict::Deny,
        &["0|default|GlobalNetworkPolicy|pods-only|Deny|0"],
    );
    let to_host = ingress(pod("c", "client", &[]), hep("node1", &[]), "tcp", 80);
    expect(
        &trace_in(&set, &to_host),
        Verdict::Allow,
        &["0|default|GlobalNetworkPolicy|everything|Allow|0"],
    );
}

// 6. nets / notNets

/// `nets`/`notNets` match the peer IP; a rule with only nets has no namespace restriction (§2.2
/// "Consequences"). Without an IP the verdict is Unknown and says which IP is needed.
#[test]
fn nets_and_not_nets_match_peer_ip() {
    let set = load(fixture!("nets-and-not-nets-match-peer-ip"));
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            network("10.1.2.3"),
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        (network("10.1.9.3"), Verdict::Deny, eot),
        (network("10.2.0.1"), Verdict::Deny, eot),
        (
            pod_ip("b", "other-ns", &[], "10.1.0.7"),
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(src, verdict, hit)| {
            let name = format!("{:?}", src.ip);
            (
                name.to_string(),
                ingress(src, pod("a", "web", &["app=web"]), "tcp", 80),
                verdict,
                hit,
            )
        }),
    );
}

/// Without the IP a `nets` rule cannot be decided: Unknown with `Need::SourceIp` (ingress, source nets)
/// or `Need::DestIp` (egress, destination nets); hits decided before the rule are kept.
#[test]
fn nets_without_ip_is_unknown() {
    let yaml = [
        tier("security", Some(10), None),
        gnp("security", "security.pass", None, "Pass"),
        fixture!("nets-without-ip-is-unknown").to_string(),
    ]
    .concat();
    let set = load(&yaml);
    let t = trace_in(&set, &web_flow());
    assert_eq!(
        (t.enforced, t.enforced_need),
        (Verdict::Unknown, Some(Need::SourceIp)),
        "{t:#?}"
    );
    assert_eq!(
        t.enforced_hits,
        vec!["0|security|GlobalNetworkPolicy|pass|Pass|0".to_string()]
    );
    assert_eq!(
        (t.pending, t.pending_need),
        (Verdict::Unknown, Some(Need::SourceIp))
    );
    let out = egress(
        pod("a", "web", &["app=web"]),
        pod("b", "db", &[]),
        "tcp",
        5432,
    );
    let t = trace_in(&set, &out);
    assert_eq!(
        (t.enforced, t.enforced_need),
        (Verdict::Unknown, Some(Need::DestIp)),
        "{t:#?}"
    );
    // With the IP it is decided.
    let out = egress(
        pod("a", "web", &["app=web"]),
        pod_ip("b", "db", &[], "10.3.0.1"),
        "tcp",
        5432,
    );
    expect(
        &trace_in(&set, &out),
        Verdict::Allow,
        &["0|default|CalicoNetworkPolicy|a/web|Allow|0"],
    );
}

// 7. Ports and protocols

/// `ports` (numbers and `"min:max"` ranges), `notPorts`, source ports (research §4.6 EntityRule).
#[test]
fn ports_ranges_and_not_ports() {
    let set = load(fixture!("ports-ranges-and-not-ports"));
    let cases = [
        (
            80,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (
            443,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (
            8000,
            Verdict::Deny,
            "0|default|CalicoNetworkPolicy|a/web|Deny|0",
        ),
        (
            8100,
            Verdict::Deny,
            "0|default|CalicoNetworkPolicy|a/web|Deny|0",
        ),
        (
            8080,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (
            8101,
            Verdict::Deny,
            "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(port, verdict, hit)| {
            (
                format!("port {port}"),
                ingress(
                    pod("a", "c", &[]),
                    pod("a", "web", &["app=web"]),
                    "tcp",
                    port,
                ),
                verdict,
                hit,
            )
        }),
    );
}

/// Named ports resolve against the destination pod's container ports of that protocol (Felix named-port
/// IP sets); without a Pod manifest they are Unknown (`Need::DestNamedPorts`).
#[test]
fn named_ports_from_pod_manifest() {
    let set = load(fixture!("named-ports-from-pod-manifest"));
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            "tcp",
            8080,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|0",
        ),
        ("tcp", 80, Verdict::Deny, eot),
        (
            "udp",
            5353,
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        ("tcp", 5353, Verdict::Deny, eot),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(protocol, port, verdict, hit)| {
            (
                format!("{protocol}/{port}"),
                ingress(pod("a", "c", &[]), bare_pod("a", "web"), protocol, port),
                verdict,
                hit,
            )
        }),
    );
    // A destination no Pod manifest describes: its named ports are unknown.
    let t = trace_in(
        &set,
        &ingress(
            pod("a", "c", &[]),
            pod("a", "web-2", &["app=web"]),
            "tcp",
            8080,
        ),
    );
    assert_eq!(
        (t.enforced, t.enforced_need, t.enforced_hits.len()),
        (Verdict::Unknown, Some(Need::DestNamedPorts), 0),
        "{t:#?}"
    );
}

/// `protocol`, `notProtocol`, `icmp` (type given → needs ICMP type/code), `ipVersion` (research §4.6 Rule).
#[test]
fn protocol_not_protocol_icmp_and_ip_version() {
    let set = load(fixture!("protocol-not-protocol-icmp-and-ip-version"));
    let web = || pod_ip("a", "web", &["app=web"], "10.0.0.2");
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let cases = [
        (
            pod_ip("a", "c", &[], "10.0.0.1"),
            "icmp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|1",
        ),
        (
            pod_ip("a", "c", &[], "10.0.0.1"),
            "tcp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|3",
        ),
        (pod_ip("a", "c", &[], "10.0.0.1"), "udp", Verdict::Deny, eot),
        (
            pod_ip("a", "c", &[], "10.0.0.1"),
            "sctp",
            Verdict::Allow,
            "0|default|CalicoNetworkPolicy|a/web|Allow|3",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(src, protocol, verdict, hit)| {
            (
                protocol.to_string(),
                ingress(src, web(), protocol, 0),
                verdict,
                hit,
            )
        }),
    );
    // IPv6: the first rule denies.
    let v6 = ingress(
        pod_ip("a", "c", &[], "fd00::1"),
        pod_ip("a", "web", &["app=web"], "fd00::2"),
        "tcp",
        80,
    );
    expect(
        &trace_in(&set, &v6),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/web|Deny|0"],
    );
    // ICMPv6 from IPv6 addresses: the ipVersion 6 rule comes first and decides.
    let icmp6 = ingress(
        pod_ip("a", "c", &[], "fd00::1"),
        pod_ip("a", "web", &["app=web"], "fd00::2"),
        "icmpv6",
        0,
    );
    expect(
        &trace_in(&set, &icmp6),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/web|Deny|0"],
    );
    // ipVersion without any IP cannot be decided.
    let no_ip = ingress(
        pod("a", "c", &[]),
        pod("a", "web-x", &["app=web"]),
        "tcp",
        80,
    );
    let t = trace_in(&set, &no_ip);
    assert_eq!(
        (t.enforced, t.enforced_need),
        (Verdict::Unknown, Some(Need::DestIp)),
        "{t:#?}"
    );
}

/// An ICMP rule with a type cannot be decided from a flow record without type/code.
#[test]
fn icmp_type_needs_type_and_code() {
    let set = load(fixture!("icmp-type-needs-type-and-code"));
    let t = trace_in(
        &set,
        &ingress(pod("a", "c", &[]), pod("a", "web", &["app=web"]), "icmp", 0),
    );
    assert_eq!(
        (t.enforced, t.enforced_need),
        (Verdict::Unknown, Some(Need::IcmpTypeCode)),
        "{t:#?}"
    );
    // TCP: neither rule matches → end of tier.
    let t = trace_in(
        &set,
        &ingress(pod("a", "c", &[]), pod("a", "web", &["app=web"]), "tcp", 80),
    );
    expect(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web"],
    );
}

// 8. Network sets

const NETWORK_SETS: &str = fixture!("network-sets");

/// Selectors match NetworkSets (§2.2 "Selectors also match NetworkSets"): by labels when the flow peer is
/// the set itself (type NetworkSet), and by IP-set membership when the peer is a Network whose IP lies in
/// a matching set. Namespaced sets carry `projectcalico.org/namespace` (namespace-scoped rule selector);
/// global sets do not (`global()`), research §4.8.
#[test]
fn network_sets_as_rule_peers_by_labels_and_by_ip() {
    let yaml = format!(
        "{NETWORK_SETS}---\n{}",
        fixture!("network-sets-as-rule-peers-by-labels-and-by-ip")
    );
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/web";
    let allow = "0|default|CalicoNetworkPolicy|a/web|Allow|1";
    let deny = "0|default|CalicoNetworkPolicy|a/web|Deny|0";
    let cases = [
        (
            "netset a/partners",
            netset(Some("a"), "partners"),
            Verdict::Allow,
            allow,
        ),
        (
            "netset b/partners-b (other namespace)",
            netset(Some("b"), "partners-b"),
            Verdict::Deny,
            eot,
        ),
        (
            "global netset blocked",
            netset(None, "blocked"),
            Verdict::Deny,
            deny,
        ),
        (
            "IP in a/partners",
            network("198.51.100.7"),
            Verdict::Allow,
            allow,
        ),
        (
            "IP in b/partners-b",
            network("192.0.2.7"),
            Verdict::Deny,
            eot,
        ),
        ("IP in blocked", network("203.0.113.9"), Verdict::Deny, deny),
        ("IP in no set", network("8.8.8.8"), Verdict::Deny, eot),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(case, src, verdict, hit)| {
            (
                case.to_string(),
                ingress(src, pod("a", "web", &["app=web"]), "tcp", 80),
                verdict,
                hit,
            )
        }),
    );
}

/// A selector (even `all()`) never matches an external IP that belongs to no endpoint or network set
/// (§2.2: Felix matches selectors through IP sets); GlobalNetworkSets match a GNP rule selector by IP.
#[test]
fn selectors_never_match_unknown_external_ips() {
    let yaml = format!(
        "{NETWORK_SETS}---\n{}",
        fixture!("selectors-never-match-unknown-external-ips")
    );
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=GlobalNetworkPolicy:egress";
    let cases = [
        (
            network("203.0.113.1"),
            Verdict::Deny,
            "0|default|GlobalNetworkPolicy|egress|Deny|0",
        ),
        (
            network("198.51.100.1"),
            Verdict::Allow,
            "0|default|GlobalNetworkPolicy|egress|Allow|1",
        ),
        (network("8.8.8.8"), Verdict::Deny, eot),
        (
            pod("c", "anything", &[]),
            Verdict::Allow,
            "0|default|GlobalNetworkPolicy|egress|Allow|1",
        ),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(dst, verdict, hit)| {
            let name = dst.display_name();
            (
                name.to_string(),
                egress(pod("a", "web", &["app=web"]), dst, "tcp", 443),
                verdict,
                hit,
            )
        }),
    );
}

// 9. Kubernetes NetworkPolicy

/// Peers: `podSelector` + `namespaceSelector` in one peer are ANDed; several peers are ORed; `podSelector`
/// alone is scoped to the policy's namespace; `namespaceSelector: {}` means every namespace (§3
/// `k8sSelectorToCalico`, `k8sPeerToCalicoFields`).
#[test]
fn kubernetes_peers_and_within_or_across() {
    let yaml = with_namespaces(fixture!("kubernetes-peers-and-within-or-across"));
    let set = load(&yaml);
    let eot = "0|default|EndOfTier||Deny|-1|trigger=NetworkPolicy:a/web";
    let cases = [
        (
            pod("b", "monitor", &["app=monitor"]),
            80,
            Verdict::Allow,
            "0|default|NetworkPolicy|a/web|Allow|0",
        ),
        (
            pod("c", "monitor", &["app=monitor"]),
            80,
            Verdict::Deny,
            eot,
        ),
        (pod("b", "other", &["app=other"]), 80, Verdict::Deny, eot),
        (
            pod("a", "cli", &["app=cli"]),
            80,
            Verdict::Allow,
            "0|default|NetworkPolicy|a/web|Allow|1",
        ),
        (pod("b", "client", &["app=client"]), 80, Verdict::Deny, eot),
        (
            pod("c", "admin", &["role=admin"]),
            22,
            Verdict::Allow,
            "0|default|NetworkPolicy|a/web|Allow|2",
        ),
        (pod("c", "admin", &["role=admin"]), 80, Verdict::Deny, eot),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(src, port, verdict, hit)| {
            let name = src.display_name();
            (
                format!("{name}:{port}"),
                ingress(src, pod("a", "web", &["app=web"]), "tcp", port),
                verdict,
                hit,
            )
        }),
    );
    // A Kubernetes pod selector starts with the orchestrator term: a host never matches, and a pod in
    // another namespace is not selected by the policy at all.
    let t = trace_in(
        &set,
        &ingress(
            hep("node1", &["role=admin"]),
            pod("a", "web", &["app=web"]),
            "tcp",
            22,
        ),
    );
    expect(&t, Verdict::Deny, &[eot]);
    let t = trace_in(
        &set,
        &ingress(
            pod("a", "cli", &["app=cli"]),
            pod("b", "web", &["app=web"]),
            "tcp",
            80,
        ),
    );
    expect(&t, Verdict::Allow, &["0|__PROFILE__|Profile|kns.b|Allow|0"]);
}

/// `ipBlock` → `nets: [cidr]`, `notNets: except` (§3 `k8sPeerToCalicoFields`); `endPort` → port range.
#[test]
fn kubernetes_ip_block_except_and_end_port() {
    let set = load(fixture!("kubernetes-ip-block-except-and-end-port"));
    let eot = "0|default|EndOfTier||Deny|-1|trigger=NetworkPolicy:a/web";
    let allow = "0|default|NetworkPolicy|a/web|Allow|0";
    let cases = [
        ("172.16.1.1", 8080, Verdict::Allow, allow),
        ("172.31.255.1", 8090, Verdict::Allow, allow),
        ("172.16.5.9", 8085, Verdict::Deny, eot),
        ("172.16.1.1", 8091, Verdict::Deny, eot),
        ("172.15.0.1", 8080, Verdict::Deny, eot),
    ];
    expect_each(
        &set,
        cases.into_iter().map(|(ip, port, verdict, hit)| {
            (
                format!("{ip}:{port}"),
                ingress(network(ip), pod("a", "web", &[]), "tcp", port),
                verdict,
                hit,
            )
        }),
    );
    // UDP is not allowed: the port entry defaults to TCP (§3 k8sRuleToCalico step 1).
    let t = trace_in(
        &set,
        &ingress(network("172.16.1.1"), pod("a", "web", &[]), "udp", 8080),
    );
    expect(&t, Verdict::Deny, &[eot]);
}

/// policyTypes inference: the API server defaults `policyTypes` to Ingress plus Egress when egress rules
/// exist (research §4.8 `SetDefaults_NetworkPolicy`) — so egress is enforced, and ingress (no rules) denies.
#[test]
fn kubernetes_policy_types_inferred_from_egress_rules() {
    let set = load(fixture!(
        "kubernetes-policy-types-inferred-from-egress-rules"
    ));
    let out = |protocol, port| {
        egress(
            pod("a", "web", &["app=web"]),
            pod("b", "x", &[]),
            protocol,
            port,
        )
    };
    expect(
        &trace_in(&set, &out("udp", 53)),
        Verdict::Allow,
        &["0|default|NetworkPolicy|a/dns-only|Allow|0"],
    );
    expect(
        &trace_in(&set, &out("tcp", 443)),
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=NetworkPolicy:a/dns-only"],
    );
    let t = trace_in(&set, &web_flow());
    expect(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=NetworkPolicy:a/dns-only"],
    );
}

/// One Kubernetes rule becomes one Calico rule per (protocol, peer), protocols sorted by name outer,
/// peers inner, indexes cumulated across rules (§3 k8sRuleToCalico steps 4–5):
/// UDP 53 + TCP 80 with peers A, B → TCP/A=0, TCP/B=1, UDP/A=2, UDP/B=3; the next rule starts at 4.
#[test]
fn kubernetes_rule_index_expansion_is_protocol_major() {
    let set = load(fixture!(
        "kubernetes-rule-index-expansion-is-protocol-major"
    ));
    let cases = [
        ("a", "tcp", 80, 0),
        ("b", "tcp", 80, 1),
        ("a", "udp", 53, 2),
        ("b", "udp", 53, 3),
        ("c", "sctp", 9, 4),
        ("c", "tcp", 8443, 5),
    ];
    for (peer, protocol, port, rule) in cases {
        let src = pod("a", &format!("peer-{peer}"), &[&format!("peer={peer}")]);
        let t = trace_in(&set, &ingress(src, pod("a", "web", &[]), protocol, port));
        assert_eq!(
            t.enforced_hits,
            vec![format!("0|default|NetworkPolicy|a/web|Allow|{rule}")],
            "{peer} {protocol}/{port}: {t:#?}"
        );
    }
}

// 10. Staged policies

/// Staged policies (`stagedAction: Set`, the default) count only for the pending verdict (DESIGN.md;
/// research §4.5); the enforced trace's policy_index skips them while the pending one includes them
/// (`felix/collector/flowlog/types.go: newPolicySet`).
#[test]
fn staged_network_policy_changes_only_pending() {
    let yaml = [
        tier("security", Some(10), None),
        gnp("security", "security.pass", Some(10), "Pass"),
        fixture!("staged-network-policy-changes-only-pending").to_string(),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect_enforced(
        &t,
        Verdict::Allow,
        &[
            "0|security|GlobalNetworkPolicy|pass|Pass|0",
            "1|default|CalicoNetworkPolicy|a/allow-web|Allow|0",
        ],
    );
    expect_pending(
        &t,
        Verdict::Deny,
        &["0|security|StagedNetworkPolicy|a/staged-deny|Deny|0"],
    );
}

/// A candidate added to a built set with `with_staged` is evaluated exactly as the same document
/// written as a staged policy and loaded with the rest: the enforced verdict is unchanged, the
/// pending one is the preview. An enforced kind is taken as its staged kind.
#[test]
fn with_staged_previews_a_candidate_as_a_staged_policy() {
    let base_yaml = [
        tier("security", Some(10), None),
        gnp("security", "security.pass", Some(10), "Pass"),
        gnp("default", "deny-all", Some(2000), "Deny"),
    ]
    .concat();
    let candidate = fixture!("with-staged-previews-a-candidate-as-a-staged-policy");
    let base = load(&base_yaml);
    let (previewed, report) = flowtrace::policy::with_staged(&base, "candidate.yaml", candidate);
    assert!(report.errors.is_empty(), "{report:?}");
    let t = trace_in(&previewed, &web_flow());
    let staged_written = candidate.replace("kind: NetworkPolicy", "kind: StagedNetworkPolicy");
    let reference = trace(&format!("{base_yaml}{staged_written}"), &web_flow());
    assert_eq!(format!("{t:?}"), format!("{reference:?}"));
    expect_enforced(
        &t,
        Verdict::Deny,
        &[
            "0|security|GlobalNetworkPolicy|pass|Pass|0",
            "1|default|GlobalNetworkPolicy|deny-all|Deny|0",
        ],
    );
    expect_pending(
        &t,
        Verdict::Allow,
        &[
            "0|security|GlobalNetworkPolicy|pass|Pass|0",
            "1|default|StagedNetworkPolicy|a/allow-web|Allow|0",
        ],
    );
    // The base set is untouched.
    expect(
        &trace_in(&base, &web_flow()),
        t.enforced,
        &reference
            .enforced_hits
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
}

/// A Kubernetes NetworkPolicy candidate becomes a StagedKubernetesNetworkPolicy; what is not a
/// policy cannot be staged and is reported by file and object.
#[test]
fn with_staged_takes_kubernetes_policies_and_refuses_other_kinds() {
    let base = load(&gnp("default", "deny-all", Some(2000), "Deny"));
    let candidate = fixture!("with-staged-takes-kubernetes-policies-and-refuses-other-kinds");
    let (previewed, report) = flowtrace::policy::with_staged(&base, "fix.yaml", candidate);
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(
        report.errors[0]
            .to_string()
            .starts_with("fix.yaml:10: Tier extra: only network policies can be staged"),
        "{report:?}"
    );
    assert!(previewed.tiers().iter().all(|t| t.name != "extra"));
    let t = trace_in(&previewed, &web_flow());
    assert_eq!(t.enforced, Verdict::Deny);
    expect_pending(
        &t,
        Verdict::Allow,
        &["0|default|StagedKubernetesNetworkPolicy|a/allow-web|Allow|0"],
    );
}

/// Enforced policy_index numbering skips staged policies: a staged policy that passes in an earlier tier
/// shows in the pending trace only, and enforced hits are numbered 0,1,… contiguously (§6).
#[test]
fn enforced_policy_index_skips_staged() {
    let yaml = [
        tier("security", Some(10), None),
        "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: security.staged-pass}\nspec:\n  tier: security\n  selector: all()\n  ingress:\n  - action: Pass\n---\n".to_string(),
        gnp("default", "deny-all", None, "Deny"),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect_enforced(
        &t,
        Verdict::Deny,
        &["0|default|GlobalNetworkPolicy|deny-all|Deny|0"],
    );
    expect_pending(
        &t,
        Verdict::Deny,
        &[
            "0|security|StagedGlobalNetworkPolicy|staged-pass|Pass|0",
            "1|default|GlobalNetworkPolicy|deny-all|Deny|0",
        ],
    );
}

/// `stagedAction: Delete` staged policies are dropped before Felix (research §4.5,
/// `stagednetworkpolicyprocessor.go`): they change neither verdict.
#[test]
fn staged_delete_is_ignored() {
    let yaml = fixture!("staged-delete-is-ignored");
    let t = trace(yaml, &web_flow());
    expect(&t, Verdict::Allow, &[PROFILE_A]);
}

/// StagedKubernetesNetworkPolicy: converted like a Kubernetes NP (default tier, order 1000, kind
/// StagedKubernetesNetworkPolicy, bare name, §6 table) and counted only in the pending trace; without
/// `policyTypes` it is Ingress only — its egress rules have no effect (§1 "StagedKubernetesNetworkPolicy").
#[test]
fn staged_kubernetes_network_policy() {
    let set = load(fixture!("staged-kubernetes-network-policy"));
    let t = trace_in(&set, &web_flow());
    expect_enforced(&t, Verdict::Allow, &[PROFILE_A]);
    expect_pending(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=StagedKubernetesNetworkPolicy:a/web"],
    );
    let tls = ingress(
        pod("a", "client", &[]),
        pod("a", "web", &["app=web"]),
        "tcp",
        443,
    );
    let t = trace_in(&set, &tls);
    expect_pending(
        &t,
        Verdict::Allow,
        &["0|default|StagedKubernetesNetworkPolicy|a/web|Allow|0"],
    );
    // Egress is not enforced by the staged policy even in pending mode.
    let out = egress(
        pod("a", "web", &["app=web"]),
        pod("b", "x", &[]),
        "tcp",
        443,
    );
    expect(&trace_in(&set, &out), Verdict::Allow, &[PROFILE_A]);
}

// 11. Admin policies

/// AdminNetworkPolicy (v1alpha1) → tier `adminnetworkpolicy` (order 1,000, defaultAction Pass),
/// order = priority (§4, research §6). Pass moves on to the default tier; a selecting ANP that decides
/// nothing yields an end-of-tier Pass.
#[test]
fn admin_network_policy_tier_priority_and_pass() {
    let yaml = with_namespaces(fixture!("admin-network-policy-tier-priority-and-pass"));
    let set = load(&yaml);
    let to_a = |src: Endpoint, port| ingress(src, pod("a", "web", &["app=web"]), "tcp", port);
    expect(
        &trace_in(&set, &to_a(pod("b", "x", &[]), 80)),
        Verdict::Deny,
        &[
            "0|adminnetworkpolicy|AdminNetworkPolicy|high|Pass|0",
            "1|default|CalicoNetworkPolicy|a/web|Deny|0",
        ],
    );
    expect(
        &trace_in(&set, &to_a(pod("c", "x", &[]), 22)),
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|high|Deny|1"],
    );
    expect(
        &trace_in(&set, &to_a(pod("c", "x", &[]), 80)),
        Verdict::Allow,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|low|Allow|0"],
    );
    // An external peer matches no rule: the tier ends with Pass (trigger: last enforced policy = low,
    // first policy in the pending trace = high).
    let t = trace_in(&set, &to_a(network("8.8.8.8"), 80));
    expect_enforced(
        &t,
        Verdict::Deny,
        &[
            "0|adminnetworkpolicy|EndOfTier||Pass|-1|trigger=AdminNetworkPolicy:low",
            "1|default|CalicoNetworkPolicy|a/web|Deny|0",
        ],
    );
    expect_pending(
        &t,
        Verdict::Deny,
        &[
            "0|adminnetworkpolicy|EndOfTier||Pass|-1|trigger=AdminNetworkPolicy:high",
            "1|default|CalicoNetworkPolicy|a/web|Deny|0",
        ],
    );
}

/// BaselineAdminNetworkPolicy → tier `baselineadminnetworkpolicy` (order 10,000,000, after `default`,
/// defaultAction Pass); it decides only when the default tier has no applicable policy (§4, research §6).
#[test]
fn baseline_admin_network_policy_runs_after_default() {
    let set = load(fixture!("baseline-admin-network-policy-runs-after-default"));
    expect(
        &trace_in(&set, &web_flow()),
        Verdict::Allow,
        &["0|default|NetworkPolicy|a/allow-web|Allow|0"],
    );
    let other = ingress(
        pod("b", "client", &[]),
        pod("b", "db", &["app=db"]),
        "tcp",
        5432,
    );
    expect(
        &trace_in(&set, &other),
        Verdict::Deny,
        &["0|baselineadminnetworkpolicy|BaselineAdminNetworkPolicy|default|Deny|0"],
    );
    // An external peer is not in any namespace: end of the baseline tier (Pass), then the profile.
    let external = ingress(network("8.8.8.8"), pod("b", "db", &["app=db"]), "tcp", 5432);
    expect(
        &trace_in(&set, &external),
        Verdict::Allow,
        &[
            "0|baselineadminnetworkpolicy|EndOfTier||Pass|-1|trigger=BaselineAdminNetworkPolicy:default",
            "1|__PROFILE__|Profile|kns.b|Allow|0",
        ],
    );
}

/// ClusterNetworkPolicy v1alpha2 (3.32): `tier: Admin` → `kube-admin` (order 1,000), `Baseline` →
/// `kube-baseline` (10,000,000), order = priority, `Accept` → Allow (§5 `K8sClusterNetworkPolicyToCalico`).
/// Named-port entries sort first (protocol key `""`).
#[test]
fn cluster_network_policy_tiers_and_accept() {
    let set = load(fixture!("cluster-network-policy-tiers-and-accept"));
    let to_web = |port| ingress(pod("b", "c", &[]), bare_pod("a", "web"), "tcp", port);
    expect(
        &trace_in(&set, &to_web(443)),
        Verdict::Allow,
        &["0|kube-admin|ClusterNetworkPolicy|admin-accept|Allow|1"],
    );
    expect(
        &trace_in(&set, &to_web(9090)),
        Verdict::Allow,
        &["0|kube-admin|ClusterNetworkPolicy|admin-accept|Allow|0"],
    );
    expect(
        &trace_in(&set, &to_web(80)),
        Verdict::Deny,
        &[
            "0|kube-admin|EndOfTier||Pass|-1|trigger=ClusterNetworkPolicy:admin-accept",
            "1|kube-baseline|ClusterNetworkPolicy|baseline-deny|Deny|0",
        ],
    );
}

// 12. Reporter

/// Reporter Src evaluates the source endpoint's egress policies, Reporter Dst the destination's ingress
/// (Goldmane `reporter`; research §4.1 "for that direction, per types").
#[test]
fn reporter_selects_endpoint_and_direction() {
    let set = load(fixture!("reporter-selects-endpoint-and-direction"));
    let (client, web) = (
        pod("a", "client", &["app=client"]),
        pod("a", "web", &["app=web"]),
    );
    let src = flow(client.clone(), web.clone(), "tcp", 80, Reporter::Src);
    expect(
        &trace_in(&set, &src),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/client-egress|Deny|0"],
    );
    let dst = flow(client.clone(), web.clone(), "tcp", 80, Reporter::Dst);
    expect(
        &trace_in(&set, &dst),
        Verdict::Allow,
        &["0|default|CalicoNetworkPolicy|a/web-ingress|Allow|0"],
    );
    // The reverse direction: web's egress has no policy, client's ingress has none either.
    let back_src = flow(web.clone(), client.clone(), "tcp", 80, Reporter::Src);
    expect(&trace_in(&set, &back_src), Verdict::Allow, &[PROFILE_A]);
    let back_dst = flow(web, client, "tcp", 80, Reporter::Dst);
    expect(&trace_in(&set, &back_dst), Verdict::Allow, &[PROFILE_A]);
}

/// Calico `types` defaulting (§1 `defaultPolicyTypesField`): egress rules only → `[Egress]` (ingress not
/// affected); no rules at all → `[Ingress]`.
#[test]
fn calico_policy_types_default_from_rules() {
    let set = load(fixture!("calico-policy-types-default-from-rules"));
    expect(&trace_in(&set, &web_flow()), Verdict::Allow, &[PROFILE_A]);
    let out = egress(pod("a", "web", &["app=web"]), pod("a", "x", &[]), "tcp", 80);
    expect(
        &trace_in(&set, &out),
        Verdict::Deny,
        &["0|default|CalicoNetworkPolicy|a/egress-only|Deny|0"],
    );
    let to_db = ingress(pod("a", "x", &[]), pod("a", "db", &["app=db"]), "tcp", 5432);
    expect(
        &trace_in(&set, &to_db),
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/no-rules"],
    );
    let from_db = egress(pod("a", "db", &["app=db"]), pod("a", "x", &[]), "tcp", 80);
    expect(&trace_in(&set, &from_db), Verdict::Allow, &[PROFILE_A]);
}

// 13. Manifest errors

fn single_error(report: &LoadReport) -> String {
    assert_eq!(report.errors.len(), 1, "{report:#?}");
    report.errors[0].to_string()
}

/// A bad selector names file, document line, object, field and the column (§7 tokenizer/parser errors).
#[test]
fn bad_selector_reports_file_line_field_and_column() {
    let report = load_report(fixture!("bad-selector-reports-file-line-field-and-column"));
    let error = single_error(&report);
    for part in [
        "manifests/bad.yaml:5",
        "NetworkPolicy a/web",
        "spec.ingress[0].source.selector",
        "column 5",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error:?}");
    }
}

/// A bad CIDR in `nets` (research §4.6) is an error naming the field; the rest of the file still loads.
#[test]
fn bad_cidr_is_reported_and_other_objects_still_load() {
    let (set, report) = load_str(
        "manifests/bad.yaml",
        fixture!("bad-cidr-is-reported-and-other-objects-still-load"),
    );
    let error = single_error(&report);
    for part in [
        "manifests/bad.yaml:1",
        "GlobalNetworkPolicy broken",
        "spec.ingress[0].source.nets[0]",
        "10.0.0.0/33",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error:?}");
    }
    expect(
        &trace_in(&set, &web_flow()),
        Verdict::Deny,
        &["0|default|GlobalNetworkPolicy|fine|Deny|0"],
    );
}

/// A port range with min > max or a non-number is rejected (Calico `numorstring.PortFromString`).
#[test]
fn bad_port_range_is_reported() {
    let cases = [
        ("\"100:50\"", "spec.ingress[0].destination.ports[0]"),
        ("\"1:x\"", "spec.ingress[0].destination.ports[0]"),
        ("70000", "spec.ingress[0].destination.ports[0]"),
    ];
    for (port, field) in cases {
        let report = load_report(&format!(
            "# leading comment\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: web, namespace: a}}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {{ports: [{port}]}}\n"
        ));
        let error = single_error(&report);
        for part in ["manifests/bad.yaml:3", "NetworkPolicy a/web", field] {
            assert!(
                error.contains(part),
                "{port}: {part:?} missing from {error:?}"
            );
        }
    }
    // Kubernetes endPort below port.
    let report = load_report(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 90, endPort: 80}]\n",
    );
    let error = single_error(&report);
    assert!(
        error.contains("manifests/bad.yaml:1")
            && error.contains("spec.ingress[0].ports[0].endPort"),
        "{error:?}"
    );
}

/// Unknown fields (a typo) are errors naming the field path, instead of a silently wider policy
/// (DESIGN.md; `resources.rs` deny_unknown_fields).
#[test]
fn unknown_field_names_the_path() {
    let report = load_report(fixture!("unknown-field-names-the-path"));
    let error = single_error(&report);
    for part in [
        "manifests/bad.yaml:1",
        "NetworkPolicy a/web",
        "spec.ingress[0].source",
        "namspaceSelector",
    ] {
        assert!(error.contains(part), "{part:?} missing from {error:?}");
    }
    let report = load_report(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podselector: {}\n",
    );
    let error = single_error(&report);
    assert!(
        error.contains("spec.ingress[0].from[0]") && error.contains("podselector"),
        "{error:?}"
    );
}

/// Kinds flowtrace does not evaluate produce one warning each (with file and line) and no error.
#[test]
fn unknown_kinds_warn_once_each() {
    let report = load_report(fixture!("unknown-kinds-warn-once-each"));
    assert!(report.errors.is_empty(), "{report:#?}");
    assert_eq!(report.warnings.len(), 3, "{report:#?}");
    assert!(
        report.warnings[0]
            .to_string()
            .starts_with("manifests/bad.yaml:1: Deployment a/web: skipped"),
        "{report:#?}"
    );
    assert!(
        report.warnings[1]
            .to_string()
            .starts_with("manifests/bad.yaml:5: Service a/web: skipped"),
        "{report:#?}"
    );
    assert!(
        report.warnings[2]
            .to_string()
            .contains("manifests/bad.yaml:9 (items[0])")
            && report.warnings[2].object.as_deref() == Some("ConfigMap cfg"),
        "{report:#?}"
    );
}

// Further edge cases

/// Policies naming a tier that no Tier resource defines sort after every defined tier (research §4.1
/// `TierLess`: valid tiers before invalid ones), even after an unordered `zzz`.
#[test]
fn undefined_tier_sorts_after_defined_tiers() {
    let yaml = [
        tier("zzz", None, None),
        gnp("ghost", "ghost.p", None, "Pass"),
        gnp("zzz", "zzz.p", None, "Pass"),
        gnp("default", "p", None, "Pass"),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &[
            "0|default|GlobalNetworkPolicy|p|Pass|0",
            "1|zzz|GlobalNetworkPolicy|p|Pass|0",
            "2|ghost|GlobalNetworkPolicy|p|Pass|0",
            "3|__PROFILE__|Profile|kns.a|Allow|0",
        ],
    );
}

/// End of tier with staged and enforced policies in the tier: the enforced trigger is the last *enforced*
/// policy, the pending trigger the first policy of the tier, staged included (research §1.7, §4.8).
#[test]
fn end_of_tier_trigger_with_staged_policies() {
    let yaml = fixture!("end-of-tier-trigger-with-staged-policies");
    let t = trace(yaml, &web_flow());
    expect_enforced(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=CalicoNetworkPolicy:a/middle"],
    );
    expect_pending(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=StagedNetworkPolicy:a/early"],
    );
}

/// ANP peers: `namespaces` becomes a bare namespaceSelector (no orchestrator term), so it also matches
/// namespaced NetworkSets; a Kubernetes `podSelector` peer never does (§4 "Ingress peer", §3).
#[test]
fn admin_namespaces_peer_matches_network_sets_kubernetes_pod_peer_does_not() {
    let yaml = with_namespaces(&format!(
        "{NETWORK_SETS}---\n{}",
        fixture!("admin-namespaces-peer-matches-network-sets-kubernetes-pod-peer-does-not")
    ));
    let set = load(&yaml);
    let t = trace_in(
        &set,
        &ingress(
            netset(Some("a"), "partners"),
            pod("b", "web", &[]),
            "tcp",
            80,
        ),
    );
    expect(
        &t,
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|alpha|Deny|0"],
    );
    let t = trace_in(
        &set,
        &ingress(network("198.51.100.1"), pod("b", "web", &[]), "tcp", 80),
    );
    expect(
        &t,
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|alpha|Deny|0"],
    );
    let t = trace_in(
        &set,
        &ingress(
            netset(Some("a"), "partners"),
            pod("a", "web", &[]),
            "tcp",
            80,
        ),
    );
    expect(
        &t,
        Verdict::Deny,
        &["0|default|EndOfTier||Deny|-1|trigger=NetworkPolicy:a/web"],
    );
    let t = trace_in(
        &set,
        &ingress(pod("a", "x", &[]), pod("a", "web", &[]), "tcp", 80),
    );
    expect(
        &t,
        Verdict::Allow,
        &["0|default|NetworkPolicy|a/web|Allow|0"],
    );
}

/// ANP rules Calico cannot convert (§4 "Failure handling", `k8sANPHandleFailedRules`): an Allow rule is
/// dropped, a Deny/Pass rule becomes one deny-everything rule in its place; v1alpha1 `namedPort` is not
/// supported and leaves the rule without port criteria (§4 "Ports"). Each produces a warning.
#[test]
fn admin_policy_unconvertible_rules() {
    let yaml = fixture!("admin-policy-unconvertible-rules");
    let (set, report) = load_str("anp.yaml", yaml);
    assert!(report.errors.is_empty(), "{report:#?}");
    assert_eq!(report.warnings.len(), 3, "{report:#?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_string().contains("spec.egress[0]") && w.to_string().contains("drops")),
        "{report:#?}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_string().contains("spec.egress[2]")
                && w.to_string().contains("denies everything")),
        "{report:#?}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_string().contains("spec.ingress[0]")
                && w.to_string().contains("namedPort")),
        "{report:#?}"
    );
    let out = |ip, port| egress(pod("a", "web", &[]), network(ip), "tcp", port);
    expect(
        &trace_in(&set, &out("10.1.1.1", 5432)),
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|egress|Deny|0"],
    );
    expect(
        &trace_in(&set, &out("8.8.8.8", 443)),
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|egress|Deny|1"],
    );
    let t = trace_in(
        &set,
        &ingress(pod("b", "x", &[]), pod("a", "web", &[]), "tcp", 12345),
    );
    expect(
        &t,
        Verdict::Deny,
        &["0|adminnetworkpolicy|AdminNetworkPolicy|named|Deny|0"],
    );
}

/// The endpoint's `projectcalico.org/serviceaccount` label is only set for SA names shorter than 63
/// characters (§2.1), while the `pcsa.*` profile labels are always inherited.
#[test]
fn long_service_account_names_have_no_serviceaccount_label() {
    let long = "s".repeat(63);
    let yaml = format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {long}, namespace: a, labels: {{role: long}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: a}}
spec: {{serviceAccountName: {long}}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: web, namespace: a}}
spec:
  selector: app == 'web'
  ingress:
  - action: Deny
    protocol: TCP
    source: {{serviceAccounts: {{names: [{long}]}}}}
  - action: Allow
    protocol: TCP
    source: {{serviceAccounts: {{selector: role == 'long'}}}}
"#
    );
    let t = trace(
        &yaml,
        &ingress(
            bare_pod("a", "client"),
            pod("a", "web", &["app=web"]),
            "tcp",
            80,
        ),
    );
    expect(
        &t,
        Verdict::Allow,
        &["0|default|CalicoNetworkPolicy|a/web|Allow|1"],
    );
}

/// An AdminNetworkPolicy without rules gets `Types: nil`, which Felix reads as both directions
/// (§4 `calculateANPPolicyTypes`, §1 "Felix fallback"): it selects the pod in both directions and its
/// tier ends with Pass.
#[test]
fn admin_policy_without_rules_applies_both_directions() {
    let set = load(fixture!(
        "admin-policy-without-rules-applies-both-directions"
    ));
    let hits = [
        "0|adminnetworkpolicy|EndOfTier||Pass|-1|trigger=AdminNetworkPolicy:empty",
        "1|__PROFILE__|Profile|kns.a|Allow|0",
    ];
    expect(&trace_in(&set, &web_flow()), Verdict::Allow, &hits);
    let out = egress(pod("a", "web", &["app=web"]), pod("b", "x", &[]), "tcp", 80);
    expect(&trace_in(&set, &out), Verdict::Allow, &hits);
    // Not the subject: no hit from the admin tier.
    let other = ingress(pod("b", "x", &[]), pod("a", "db", &["app=db"]), "tcp", 80);
    expect(&trace_in(&set, &other), Verdict::Allow, &[PROFILE_A]);
}

/// Staged policies sort together with enforced ones by the 3.31 backend key (research §4.1), and a
/// StagedNetworkPolicy `security.a` is keyed `a/security.staged:a` (§6 table: `n/tier1.staged:p`), which
/// sorts *after* the enforced `a/security.b` at the same order. The pending trace therefore decides with
/// `b` (Allow), not with the staged Deny.
#[test]

fn staged_policy_tie_break_uses_staged_key() {
    let yaml = [
        tier("security", Some(10), None),
        fixture!("staged-policy-tie-break-uses-staged-key").to_string(),
    ]
    .concat();
    let t = trace(&yaml, &web_flow());
    expect(
        &t,
        Verdict::Allow,
        &["0|security|CalicoNetworkPolicy|a/b|Allow|0"],
    );
}
