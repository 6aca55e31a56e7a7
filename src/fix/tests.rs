//! Candidate generation on the demo bank and on small sets built for one tricky case each. Every
//! candidate offered must be proven here again, independently: staged over the enforced policies,
//! the flow's pending verdict on its side is Allow.

use super::*;
use crate::flows::parse_flow_line;
use crate::model::Flow;
use crate::policy::{load_str, with_staged, PolicySet};
use crate::source::demo::DemoCluster;

fn demo_set() -> PolicySet {
    DemoCluster::new(1).policy_set().clone()
}

fn flow(source: (&str, &str, &str), dest: (&str, &str, &str), port: u16, reporter: &str) -> Flow {
    let line = format!(
        r#"{{"source_name":"{}","source_namespace":"{}","source_labels":"{}","dest_name":"{}","dest_namespace":"{}","dest_labels":"{}","protocol":"tcp","dest_port":{port},"reporter":"{reporter}","action":"Deny"}}"#,
        source.0, source.1, source.2, dest.0, dest.1, dest.2
    );
    parse_flow_line(&line).unwrap().flow
}

const CUSTOMER: (&str, &str, &str) = (
    "customer-6d8f9c7b5-*",
    "customer",
    "app=customer | pod-template-hash=6d8f9c7b5",
);
const SUMMARY: (&str, &str, &str) = ("summary-7c9d8b6f4-*", "summary", "app=summary");
const DATABASE: (&str, &str, &str) = ("database-0", "database", "app=database");

/// Checks a candidate the way a reviewer would: its staged document, on its own over the
/// enforced policies, allows the flow on the given side.
fn assert_proven(set: &PolicySet, flow: &Flow, reporter: Reporter, candidate: &Candidate) {
    let (with, report) = with_staged(&set.without_staged(), "check", &candidate.documents.staged);
    assert!(report.errors.is_empty(), "{report:?}");
    let side = Flow {
        reporter,
        ..flow.clone()
    };
    let verdict = Evaluator::new(&with).evaluate(&side).pending.verdict;
    assert_eq!(verdict, Verdict::Allow, "{}", candidate.documents.staged);
    // Its enforced form loads as written, too.
    let (_, report) = load_str("enforced", &candidate.documents.enforced);
    assert!(report.errors.is_empty(), "{report:?}");
}

fn candidates(side: &SideProposal) -> &[Candidate] {
    match &side.outcome {
        SideOutcome::Fixable { candidates } => candidates,
        other => panic!("not fixable: {other:?}"),
    }
}

#[test]
fn an_end_of_tier_deny_in_a_writable_tier_gets_a_named_port_rule_in_a_staged_copy_first() {
    let set = demo_set();
    let flow = flow(CUSTOMER, SUMMARY, 9090, "Dst");
    let proposal = propose(&set, &flow, &Persona::demo(), Naming::TierPrefix);
    assert_eq!(proposal.sides.len(), 2);
    let ingress = &proposal.sides[0];
    assert!(ingress.reported);
    assert_eq!(ingress.direction, "Ingress");
    assert_eq!(ingress.verdict, Verdict::Deny);
    let denial = ingress.denial.as_ref().unwrap();
    assert_eq!(denial.tier, "application");
    assert_eq!(
        denial.policy.as_deref(),
        // Named as the trace and the table name it: without the `<tier>.` prefix.
        Some("summary/summary")
    );
    assert!(
        denial.describe.contains("end of tier application"),
        "{}",
        denial.describe
    );

    let found = candidates(ingress);
    let first = &found[0];
    assert_eq!(first.breadth, Breadth::Exact);
    assert_eq!(first.policy, "summary/summary");
    assert!(
        first.rationale.contains("staged copy"),
        "{}",
        first.rationale
    );
    let staged = &first.documents.staged;
    assert!(staged.contains("kind: StagedNetworkPolicy"), "{staged}");
    assert!(
        staged.contains("- metrics"),
        "the pod's name for 9090: {staged}"
    );
    assert!(staged.contains("app == 'customer'"), "{staged}");
    assert!(
        staged.contains("namespaceSelector: projectcalico.org/name == 'customer'"),
        "{staged}"
    );
    assert!(!staged.contains("pod-template-hash"), "{staged}");
    // Staged ahead of the policy it copies (order 100), behind the staged policy at 50.
    assert!(staged.contains("order: 75"), "{staged}");
    let enforced = &first.documents.enforced;
    assert!(enforced.contains("kind: NetworkPolicy"), "{enforced}");
    assert!(enforced.contains("order: 100"), "{enforced}");

    // Then a new policy in the same tier, then broader ones, labelled as such.
    assert!(
        found[1]
            .rationale
            .contains("new policy summary/allow-from-customer-tcp-metrics"),
        "{}",
        found[1].rationale
    );
    assert!(found.iter().any(|c| c.breadth == Breadth::PeerNamespace));
    assert!(found.iter().any(|c| c.breadth == Breadth::AllPorts));
    for candidate in found {
        assert_proven(&set, &flow, Reporter::Dst, candidate);
    }

    // The other side allows it: nothing to fix there.
    let egress = &proposal.sides[1];
    assert_eq!(egress.direction, "Egress");
    assert!(!egress.reported);
    assert!(matches!(egress.outcome, SideOutcome::Allowed));
}

#[test]
fn a_deny_in_a_guardrail_tier_is_an_exception_request_not_a_fix() {
    let set = demo_set();
    let flow = flow(CUSTOMER, DATABASE, 5432, "Dst");
    let proposal = propose(&set, &flow, &Persona::demo(), Naming::TierPrefix);
    let ingress = &proposal.sides[0];
    let SideOutcome::Guardrail { exception } = &ingress.outcome else {
        panic!("{:?}", ingress.outcome);
    };
    assert_eq!(exception.denial.tier, "security");
    assert_eq!(exception.denial.rule, Some(1));
    assert!(exception
        .denial
        .describe
        .contains("database/database-backends-only"));
    // What the owners could add, proven like any candidate, placed before the denying rule.
    let proposed = exception.proposed.as_ref().expect("a rule for the owners");
    assert!(
        proposed.rationale.contains("before its rule 1 (Deny)"),
        "{}",
        proposed.rationale
    );
    assert_proven(&set, &flow, Reporter::Dst, proposed);
    assert_eq!(exception.trace.enforced.action, Verdict::Deny);
    // An Allow in security would also skip the default tier, whose Kubernetes policy selects
    // the database: the request says so.
    assert_eq!(exception.skips_tiers, ["default"]);
    // Nothing in a writable tier before security could bypass it: no candidates are offered.
    assert!(proposal.narrowest().is_empty());

    // The same deny for a persona that writes the security tier is a fix.
    let owner = Persona::new(["security".to_string()]);
    let proposal = propose(&set, &flow, &owner, Naming::TierPrefix);
    assert!(!candidates(&proposal.sides[0]).is_empty());
}

#[test]
fn both_sides_denying_get_a_fix_each_and_a_kubernetes_deny_gets_a_kubernetes_shaped_fix() {
    let set = demo_set();
    let flow = flow(SUMMARY, DATABASE, 5433, "Src");
    let proposal = propose(&set, &flow, &Persona::demo(), Naming::TierPrefix);
    assert_eq!(proposal.narrowest().len(), 2, "{proposal:#?}");

    let egress = &proposal.sides[0];
    assert_eq!(egress.direction, "Egress");
    let first = &candidates(egress)[0];
    assert!(first.documents.staged.contains("kind: StagedNetworkPolicy"));
    assert!(
        first.documents.staged.contains("- 5433"),
        "{}",
        first.documents.staged
    );
    assert_proven(&set, &flow, Reporter::Src, first);

    let ingress = &proposal.sides[1];
    assert_eq!(ingress.denial.as_ref().unwrap().tier, "default");
    let found = candidates(ingress);
    let copy = &found[0];
    assert!(
        copy.documents
            .staged
            .contains("kind: StagedKubernetesNetworkPolicy"),
        "{}",
        copy.documents.staged
    );
    assert!(copy
        .documents
        .enforced
        .contains("apiVersion: networking.k8s.io/v1"));
    assert!(copy
        .documents
        .staged
        .contains("kubernetes.io/metadata.name: summary"));
    let new = &found[1];
    assert!(
        new.rationale
            .contains("new Kubernetes NetworkPolicy database/allow-from-summary-tcp-5433"),
        "{}",
        new.rationale
    );
    for candidate in found {
        assert_proven(&set, &flow, Reporter::Dst, candidate);
    }
}

#[test]
fn names_follow_the_calico_version() {
    assert_eq!(Naming::for_version("3.31"), Some(Naming::TierPrefix));
    assert_eq!(Naming::for_version("v3.30.2"), Some(Naming::TierPrefix));
    assert_eq!(Naming::for_version("3.32"), Some(Naming::Bare));
    assert_eq!(Naming::for_version("v3.33.0"), Some(Naming::Bare));
    assert_eq!(Naming::for_version("latest"), None);

    let set = demo_set();
    let flow = flow(CUSTOMER, SUMMARY, 9090, "Dst");
    let bare = propose(&set, &flow, &Persona::demo(), Naming::Bare);
    let new = &candidates(&bare.sides[0])[1];
    assert_eq!(new.policy, "summary/allow-from-customer-tcp-metrics");
}

#[test]
fn a_rule_deny_in_a_writable_tier_is_fixed_before_the_denying_rule() {
    let (set, report) = load_str(
        "t.yaml",
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: default.web, namespace: shop}
spec:
  order: 10
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
  - action: Deny
    source: {selector: app == 'batch'}
  - action: Allow
",
    );
    assert!(report.errors.is_empty(), "{report:?}");
    let batch = ("batch-1", "shop", "app=batch");
    let web = ("web-1", "shop", "app=web");
    let flow = flow(batch, web, 8443, "Dst");
    let proposal = propose(&set, &flow, &Persona::demo(), Naming::TierPrefix);
    let ingress = &proposal.sides[0];
    assert_eq!(ingress.denial.as_ref().unwrap().rule, Some(1));
    let first = &candidates(ingress)[0];
    // Inserted before the Deny: the Deny is now the third rule of the copy.
    let staged = &first.documents.staged;
    let deny = staged.find("action: Deny").unwrap();
    assert!(staged[..deny].contains("8443"), "{staged}");
    assert_eq!(staged.matches("action: Allow").count(), 3, "{staged}");
    assert!(staged.contains("order: 5"), "{staged}");
    assert_proven(&set, &flow, Reporter::Dst, first);
}

#[test]
fn a_pass_that_falls_through_on_a_host_endpoint_is_fixed_in_a_later_writable_tier_ending_with_pass()
{
    let (set, report) = load_str(
        "t.yaml",
        "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: guard}
spec: {order: 10}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: app}
spec: {order: 20}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: guard.pass}
spec:
  tier: guard
  selector: all()
  ingress: [{action: Pass}]
  egress: [{action: Pass}]
",
    );
    assert!(report.errors.is_empty(), "{report:?}");
    let line = r#"{"source_name":"client","source_namespace":"shop","source_labels":"app=client","dest_name":"node-1","dest_namespace":"","dest_labels":"role=node","dest_type":"hep","protocol":"tcp","dest_port":9100,"reporter":"Dst"}"#;
    let flow = parse_flow_line(line).unwrap().flow;
    let persona = Persona::new(["app".to_string()]);
    let proposal = propose(&set, &flow, &persona, Naming::TierPrefix);
    let ingress = proposal
        .sides
        .iter()
        .find(|s| s.direction == "Ingress")
        .unwrap();
    assert_eq!(ingress.verdict, Verdict::Deny);
    assert!(ingress
        .denial
        .as_ref()
        .unwrap()
        .describe
        .contains("after tier guard passed"));
    let found = candidates(ingress);
    let new = &found[0];
    assert!(
        new.documents
            .staged
            .contains("kind: StagedGlobalNetworkPolicy"),
        "{}",
        new.documents.staged
    );
    assert!(new.documents.staged.contains("tier: app"));
    assert!(
        new.documents.staged.contains("action: Pass"),
        "{}",
        new.documents.staged
    );
    assert_proven(&set, &flow, Reporter::Dst, new);

    // With no writable tier after the guard, nothing is proposed, and the reason says so.
    let proposal = propose(
        &set,
        &flow,
        &Persona::new(["guard".to_string()]),
        Naming::TierPrefix,
    );
    let ingress = proposal
        .sides
        .iter()
        .find(|s| s.direction == "Ingress")
        .unwrap();
    let SideOutcome::Unfixable { reason } = &ingress.outcome else {
        panic!("{:?}", ingress.outcome);
    };
    assert!(reason.contains("no tier you may write"), "{reason}");
}

#[test]
fn a_peer_known_only_by_its_address_is_allowed_by_address() {
    let set = demo_set();
    let line = r#"{"source_name":"pub","source_namespace":"","dest_name":"customer-6d8f9c7b5-*","dest_namespace":"customer","dest_labels":"app=customer","source_type":"net","source_ip":"198.51.100.20","protocol":"tcp","dest_port":8080,"reporter":"Dst"}"#;
    let flow = parse_flow_line(line).unwrap().flow;
    let proposal = propose(&set, &flow, &Persona::demo(), Naming::TierPrefix);
    assert_eq!(
        proposal.sides.len(),
        1,
        "a network has no policies of its own"
    );
    let found = candidates(&proposal.sides[0]);
    assert!(
        found[0].documents.staged.contains("198.51.100.20/32"),
        "{}",
        found[0].documents.staged
    );
    assert!(found.iter().all(|c| c.breadth != Breadth::PeerNamespace));
    for candidate in found {
        assert_proven(&set, &flow, Reporter::Dst, candidate);
    }
}

/// The preview of `candidate` (its staged document) over `flows`, for the fix of `target`.
fn preview_effects(
    set: &PolicySet,
    staged: &str,
    target: &Flow,
    flows: &[Flow],
) -> Vec<(String, impact::Effect)> {
    let (with, report) = with_staged(&set.without_staged(), "candidate", staged);
    assert!(report.errors.is_empty(), "{report:?}");
    let mut comparer = impact::Comparer::new(
        &with,
        impact::Comparison::Candidate(impact::Target::of(target)),
    );
    let mut before = Evaluator::new(set);
    let mut changes = Vec::new();
    for flow in flows {
        comparer.compare(
            flow,
            &before.evaluate(flow),
            || flow.summary(),
            &mut changes,
        );
    }
    changes.into_iter().map(|c| (c.flow, c.effect)).collect()
}

#[test]
fn a_preview_tells_the_fixed_flow_from_over_broad_breakage_and_undetermined_ones() {
    let set = demo_set();
    let target = flow(CUSTOMER, SUMMARY, 9090, "Dst");
    let other_customer_pod = flow(
        ("customer-batch-1", "customer", "app=customer-batch"),
        SUMMARY,
        9090,
        "Dst",
    );
    let proposal = propose(&set, &target, &Persona::demo(), Naming::TierPrefix);
    let found = candidates(&proposal.sides[0]);
    let flows = [target.clone(), other_customer_pod.clone()];

    // The exact candidate fixes its flow and nothing else.
    let exact = preview_effects(&set, &found[0].documents.staged, &target, &flows);
    assert_eq!(exact, [(target.summary(), impact::Effect::Fixes)]);

    // The namespace-wide one also opens the other pod of the namespace: over-broad.
    let namespace = found
        .iter()
        .find(|c| c.breadth == Breadth::PeerNamespace)
        .unwrap();
    let broad = preview_effects(&set, &namespace.documents.staged, &target, &flows);
    assert_eq!(
        broad,
        [
            (target.summary(), impact::Effect::Fixes),
            (other_customer_pod.summary(), impact::Effect::NewlyAllowed)
        ]
    );

    // A candidate that denies what was allowed breaks it; one whose rule needs an address the flow
    // lacks (a pod no manifest gives an IP) leaves it undetermined.
    let allowed = flow(CUSTOMER, SUMMARY, 8080, "Dst");
    let breaking = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.block, namespace: summary}
spec:
  tier: application
  order: 1
  selector: app == 'summary'
  types: [Ingress]
  ingress:
  - action: Deny
    protocol: TCP
    destination: {ports: [8080]}
  - action: Allow
    source: {nets: [10.0.0.0/8]}
";
    let effects = preview_effects(
        &set,
        breaking,
        &target,
        &[allowed.clone(), other_customer_pod.clone()],
    );
    assert_eq!(
        effects,
        [
            (allowed.summary(), impact::Effect::NewlyDenied),
            (other_customer_pod.summary(), impact::Effect::Undetermined)
        ]
    );
}

/// Where RBAC says the user may create staged policies only in some namespaces, a fix that would
/// be staged elsewhere is not offered, and says why; one staged where they may stays offered.
#[test]
fn a_fix_is_offered_only_where_the_user_may_stage_it() {
    let set = demo_set();
    let flow = flow(CUSTOMER, SUMMARY, 9090, "Dst");
    let rights = |stage_in: &[&str]| WriteAccess {
        tiers: vec!["application".into()],
        stage_namespaces: stage_in.iter().map(|n| n.to_string()).collect(),
        stage_global_tiers: Vec::new(),
    };
    let elsewhere = Persona::chosen(Some(&rights(&["customer"])), None);
    let proposal = propose(&set, &flow, &elsewhere, Naming::TierPrefix);
    let ingress = &proposal.sides[0];
    let SideOutcome::Unfixable { reason } = &ingress.outcome else {
        panic!(
            "offered where the user may not stage: {:?}",
            ingress.outcome
        );
    };
    assert!(
        reason.contains("may not create staged policies"),
        "{reason}"
    );
    assert!(
        ingress
            .dropped
            .iter()
            .any(|d| d.contains("in namespace summary")),
        "{:?}",
        ingress.dropped
    );

    let there = Persona::chosen(Some(&rights(&["summary"])), None);
    let proposal = propose(&set, &flow, &there, Naming::TierPrefix);
    assert!(!candidates(&proposal.sides[0]).is_empty());

    // A global policy is staged by tier: writing the tier is not staging in it.
    let metadata = parse_flow_line(r#"{"source_name":"summary-7c9d8b6f4-*","source_namespace":"summary","source_labels":"app=summary","dest_name":"pub","dest_type":"Network","dest_ip":"169.254.169.254","protocol":"tcp","dest_port":80,"reporter":"Src","action":"Deny"}"#)
        .unwrap()
        .flow;
    let security = |stage_global: &[&str]| WriteAccess {
        tiers: vec!["security".into()],
        stage_namespaces: Vec::new(),
        stage_global_tiers: stage_global.iter().map(|t| t.to_string()).collect(),
    };
    let writer = Persona::chosen(Some(&security(&[])), None);
    let proposal = propose(&set, &metadata, &writer, Naming::TierPrefix);
    let egress = &proposal.sides[0];
    assert!(
        egress
            .dropped
            .iter()
            .any(|d| d.contains("you may not create staged global policies in tier security")),
        "{:?}",
        egress.dropped
    );
    assert!(matches!(egress.outcome, SideOutcome::Unfixable { .. }));
    let stager = Persona::chosen(Some(&security(&["security"])), None);
    let proposal = propose(&set, &metadata, &stager, Naming::TierPrefix);
    assert!(candidates(&proposal.sides[0])
        .iter()
        .all(|c| !c.policy.contains('/')));
}

/// A rule added to a copy of a policy that selects every workload (`block-metadata`:
/// `selector: all()`) names the workload the flow was denied at: "exact" opens for it alone,
/// where the bare rule would open the metadata service to every pod. The copy's earlier order
/// is said, with why.
#[test]
fn a_rule_in_a_copy_of_a_policy_for_every_workload_names_the_denied_workload() {
    let set = demo_set();
    let metadata = |source: (&str, &str, &str)| {
        let line = format!(
            r#"{{"source_name":"{}","source_namespace":"{}","source_labels":"{}","source_type":"WorkloadEndpoint","dest_name":"pub","dest_namespace":"","dest_labels":"","dest_type":"Network","dest_ip":"169.254.169.254","protocol":"tcp","dest_port":80,"reporter":"Src","action":"Deny"}}"#,
            source.0, source.1, source.2
        );
        parse_flow_line(&line).unwrap().flow
    };
    let target = metadata(CUSTOMER);
    let security = Persona::new(["security".to_string()]);
    let proposal = propose(&set, &target, &security, Naming::TierPrefix);
    let found = candidates(&proposal.sides[0]);
    let first = &found[0];
    assert_eq!(first.breadth, Breadth::Exact);
    assert!(first.policy.ends_with("block-metadata"), "{}", first.policy);
    assert!(
        first.rationale.contains("(for customer/app=customer only)"),
        "{}",
        first.rationale
    );
    assert!(
        first
            .rationale
            .contains("to come before the original (order 10)"),
        "{}",
        first.rationale
    );
    let staged = &first.documents.staged;
    assert!(
        staged.contains("source:\n      selector: app == 'customer'\n      namespaceSelector: projectcalico.org/name == 'customer'"),
        "{staged}"
    );
    assert_proven(&set, &target, Reporter::Src, first);
    let other = metadata(SUMMARY);
    let effects = preview_effects(&set, staged, &target, &[target.clone(), other]);
    assert_eq!(
        effects.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
        [impact::Effect::Fixes],
        "only the denied workload's flow changes: {effects:?}"
    );
}
