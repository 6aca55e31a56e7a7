//! Fixes for a denied flow: for each side that denies it, the smallest change in a tier the user may
//! write, narrowest first, each proven by Calico's own preview semantics (staged, the flow's pending
//! verdict becomes Allow) before it is offered; for a deny in a tier the user may not write, an
//! exception request for that tier's owners instead. Pure: the caller gives the policy set, the flow
//! and who the user is.

pub mod document;
pub mod identity;
pub mod impact;
pub mod withhold;

use serde::Serialize;
use std::sync::Arc;

use self::document::{
    calico_rule, kubernetes_rule, local_selector, new_calico_policy, new_kubernetes_policy,
    pass_rule, staged_copy, AddedRule, Documents, NewCalicoPolicy, PeerScope, PortScope, RuleToAdd,
};
use self::identity::{identify, Identity};
use crate::lint::{Finding, Governance, Level};
use crate::model::{EndpointType, Flow, HitAction, PolicyKind, Reporter, Verdict};
use crate::policy::calico::namespace_equals;
use crate::policy::endpoint::{name_matches, resolve};
use crate::policy::eval::{Evaluation, HitSource};
use crate::policy::explain::{explain, Explanation};
use crate::policy::model::Direction;
use crate::policy::selector::Selector;
use crate::policy::{with_staged, Evaluator, Policy, PolicySet};

/// What RBAC lets a user write, as a cluster says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteAccess {
    pub tiers: Vec<String>,
    /// Where they may create staged policies.
    pub stage_namespaces: Vec<String>,
    /// The tiers where they may create staged global policies.
    pub stage_global_tiers: Vec<String>,
}

/// The tiers a user may write. Everything else is a guardrail: explained, never "fixed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    writable: Vec<String>,
    /// Where the user may create staged policies, when a cluster says; `None`: anywhere (the
    /// demo, files).
    stage: Option<WriteAccess>,
}

impl Persona {
    pub fn new(writable: impl IntoIterator<Item = String>) -> Persona {
        Persona {
            writable: writable.into_iter().collect(),
            stage: None,
        }
    }

    /// Why the user may not stage `candidate` (a policy named `namespace/name`, or a global
    /// one), if they may not.
    fn may_not_stage(&self, candidate: &Candidate) -> Option<String> {
        let stage = self.stage.as_ref()?;
        match candidate.policy.split_once('/') {
            Some((namespace, _)) => (!stage.stage_namespaces.iter().any(|n| n == namespace))
                .then(|| format!("you may not create staged policies in namespace {namespace}")),
            None => (!stage.stage_global_tiers.contains(&candidate.tier)).then(|| {
                format!(
                    "you may not create staged global policies in tier {}",
                    candidate.tier
                )
            }),
        }
    }

    /// The demo's developer: writes the application teams' tiers; security and platform are
    /// other teams' guardrails.
    pub fn demo() -> Persona {
        Persona::new(["application".to_string(), "default".to_string()])
    }

    /// Who the user is: the tiers RBAC lets them write when a cluster says, narrowed to those
    /// configured when both are, staging where RBAC lets them; those configured without a
    /// cluster; else the demo's developer.
    pub fn chosen(rbac: Option<&WriteAccess>, configured: Option<&[String]>) -> Persona {
        let persona = match (rbac, configured) {
            (Some(rbac), Some(configured)) => Persona::new(
                rbac.tiers
                    .iter()
                    .filter(|tier| configured.contains(tier))
                    .cloned(),
            ),
            (Some(rbac), None) => Persona::new(rbac.tiers.iter().cloned()),
            (None, Some(tiers)) => Persona::new(tiers.iter().cloned()),
            (None, None) => Persona::demo(),
        };
        Persona {
            stage: rbac.cloned(),
            ..persona
        }
    }

    pub fn may_write(&self, tier: &str) -> bool {
        self.writable.iter().any(|t| t == tier)
    }

    pub fn writable(&self) -> &[String] {
        &self.writable
    }
}

/// How policies in a tier are named: Calico up to 3.31 requires `<tier>.<name>` outside the
/// default tier; 3.32 drops the prefix (calico.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    TierPrefix,
    Bare,
}

impl Naming {
    /// The naming of a Calico version (`3.31`, `v3.32.1`); `None` when it is not a version.
    pub fn for_version(version: &str) -> Option<Naming> {
        let version = version.trim().trim_start_matches('v');
        let mut parts = version.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next().unwrap_or("0").parse().ok()?;
        Some(if (major, minor) >= (3, 32) {
            Naming::Bare
        } else {
            Naming::TierPrefix
        })
    }

    fn name(self, tier: &str, base: &str) -> String {
        match self {
            Naming::TierPrefix if tier != "default" => format!("{tier}.{base}"),
            _ => base.to_string(),
        }
    }
}

/// What denied one side of a flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denial {
    pub tier: String,
    /// The policy that owns the deny (for an end of tier, the last policy of the tier that
    /// selected the endpoint), as `namespace/name`.
    pub policy: Option<String>,
    /// The denying rule's index (0-based), when a rule denied.
    pub rule: Option<usize>,
    /// In words: "rule 2 (Deny) of …", "the end of tier …", "profile …".
    pub describe: String,
    /// The tier is one the user may not read: its policy and rule are withheld.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
}

/// How wide a candidate opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Breadth {
    /// Exactly this peer, port and protocol.
    Exact,
    /// Every workload of the peer's namespace.
    PeerNamespace,
    /// Every port of the protocol.
    AllPorts,
    /// Written by the user (edited from a candidate), then proven like the others.
    Edited,
}

impl Breadth {
    pub fn label(self) -> &'static str {
        match self {
            Breadth::Exact => "exact",
            Breadth::PeerNamespace => "broader: namespace",
            Breadth::AllPorts => "broader: all ports",
            Breadth::Edited => "your edit",
        }
    }
}

/// One proposed change, proven to allow the flow on its side when staged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub breadth: Breadth,
    /// One line: what it adds, where, and why there.
    pub rationale: String,
    /// The policy the documents define, `namespace/name`, named as everywhere else (without a
    /// `<tier>.` prefix: its manifest's `metadata.name` is in `documents`).
    pub policy: String,
    pub tier: String,
    pub documents: Documents,
    /// What the governance rules say about its staged document (`Proposal::check`).
    pub findings: Vec<Finding>,
    /// Where the rule it adds is, for a Calico-shaped candidate (the fix form edits it).
    #[serde(skip)]
    pub added: Option<AddedRule>,
    /// What it does to recorded flows, as if it alone were enforced, once previewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<CandidatePreview>,
}

/// A candidate's preview over recorded flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidatePreview {
    /// Where the flows came from (a file's name, "the store").
    pub over: String,
    pub flows: usize,
    pub tally: impact::Tally,
}

impl Candidate {
    /// Whether a governance rule fails it.
    pub fn fails_lint(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }
}

/// What the owners of a guardrail tier are asked for.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRequest {
    pub flow: String,
    pub denial: Denial,
    /// The rule the owners could add (computed as if the tier were writable), when one exists.
    pub proposed: Option<Candidate>,
    /// Tiers after the denying one whose policies select the endpoint: an Allow there is final,
    /// so they would no longer decide this flow.
    pub skips_tiers: Vec<String>,
    pub trace: Explanation,
}

/// What flowtrace offers for one side.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SideOutcome {
    /// The side allows the flow: nothing to fix.
    Allowed,
    Fixable {
        candidates: Vec<Candidate>,
    },
    /// The deny is in a tier the user may not write.
    Guardrail {
        exception: Box<ExceptionRequest>,
    },
    /// Nothing can be proposed; the reason says why.
    Unfixable {
        reason: String,
    },
}

/// One side of the flow: the source's egress or the destination's ingress.
#[derive(Debug, Clone, Serialize)]
pub struct SideProposal {
    pub direction: &'static str,
    /// The endpoint whose policies decide this side, `namespace/name`.
    pub endpoint: String,
    /// The enforced verdict of this side, computed.
    pub verdict: Verdict,
    /// Whether the flow record given was reported by this side.
    pub reported: bool,
    pub denial: Option<Denial>,
    #[serde(flatten)]
    pub outcome: SideOutcome,
    /// Candidates considered and dropped, with the reason (a named port the preview could not
    /// resolve, a peer nothing names).
    pub dropped: Vec<String>,
    /// A staged policy already in the cluster that allows the flow in the pending verdict: the
    /// flow is denied only until it is enforced, and staging a candidate changes no verdict the
    /// cluster reports.
    pub already_allowed_by: Option<StagedAllow>,
}

/// The staged policy that allows a flow in the pending verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagedAllow {
    /// `Kind namespace/name`.
    pub policy: String,
    pub tier: String,
}

impl std::fmt::Display for StagedAllow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in tier {}", self.policy, self.tier)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub flow: String,
    pub sides: Vec<SideProposal>,
    /// The enforced policies (staged ones left out) the candidates were proven over, built once
    /// for their previews and for edits proven again.
    #[serde(skip)]
    pub enforced: Arc<PolicySet>,
}

impl Proposal {
    /// Whether any side denies the flow.
    pub fn denied(&self) -> bool {
        self.sides.iter().any(|s| s.verdict == Verdict::Deny)
    }

    /// Previews every candidate over `recorded` flows (named `over`), as if each alone were
    /// enforced over the enforced policies, for the fix of `flow`.
    pub fn preview(&mut self, flow: &Flow, recorded: &impact::Recorded, over: &str) {
        let (enforced, target) = (self.enforced.clone(), impact::Target::of(flow));
        for candidate in self.candidates_mut() {
            candidate.preview = Some(CandidatePreview {
                over: over.to_string(),
                flows: recorded.len(),
                tally: recorded.preview(&enforced, &candidate.documents.staged, &target),
            });
        }
    }

    /// Every candidate offered, to fill in (their preview).
    pub fn candidates_mut(&mut self) -> impl Iterator<Item = &mut Candidate> {
        self.sides
            .iter_mut()
            .flat_map(|side| match &mut side.outcome {
                SideOutcome::Fixable { candidates } => candidates.as_mut_slice(),
                _ => &mut [],
            })
    }

    /// Every candidate offered, side by side.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.sides.iter().flat_map(|side| match &side.outcome {
            SideOutcome::Fixable { candidates } => candidates.as_slice(),
            _ => &[],
        })
    }

    /// The exception requests of the sides denied in a guardrail tier.
    pub fn exceptions(&self) -> Vec<&ExceptionRequest> {
        self.sides
            .iter()
            .filter_map(|side| match &side.outcome {
                SideOutcome::Guardrail { exception } => Some(&**exception),
                _ => None,
            })
            .collect()
    }

    /// The narrowest candidate of each side that no governance rule fails: what `fix -o yaml`
    /// prints.
    pub fn narrowest(&self) -> Vec<&Candidate> {
        self.sides
            .iter()
            .filter_map(|side| match &side.outcome {
                SideOutcome::Fixable { candidates } => candidates.iter().find(|c| !c.fails_lint()),
                _ => None,
            })
            .collect()
    }

    /// Checks every candidate's staged document (and a guardrail's proposed rule) against the
    /// governance rules, before anything is exported or staged.
    pub fn check(&mut self, governance: &mut Governance) -> Result<(), String> {
        for side in &mut self.sides {
            let candidates: Vec<&mut Candidate> = match &mut side.outcome {
                SideOutcome::Fixable { candidates } => candidates.iter_mut().collect(),
                SideOutcome::Guardrail { exception } => exception.proposed.iter_mut().collect(),
                _ => Vec::new(),
            };
            for candidate in candidates {
                let name = format!("candidate {}", candidate.policy);
                candidate.findings = governance.check_text(&name, &candidate.documents.staged)?;
            }
        }
        Ok(())
    }
}

/// The flow as one side decides it, without Calico's record (a fix is judged by computation).
fn side_flow(flow: &Flow, reporter: Reporter) -> Flow {
    Flow {
        reporter,
        reported_action: None,
        reported_policies: None,
        ..flow.clone()
    }
}

/// Proposes fixes for `flow` against `set`: both sides are decided (a connection needs both), the
/// side the record reported first.
pub fn propose(set: &PolicySet, flow: &Flow, persona: &Persona, naming: Naming) -> Proposal {
    let proof_base = Arc::new(set.without_staged());
    let mut reporters = vec![Reporter::Src, Reporter::Dst];
    if flow.reporter == Reporter::Dst {
        reporters.reverse();
    }
    let mut sides = Vec::new();
    for reporter in reporters {
        let side = side_flow(flow, reporter);
        if !matches!(
            side.local().kind,
            EndpointType::WorkloadEndpoint | EndpointType::HostEndpoint
        ) {
            continue;
        }
        let planner = Planner {
            set,
            proof_base: &proof_base,
            flow: &side,
            naming,
        };
        sides.push(planner.side(persona, reporter == flow.reporter));
    }
    Proposal {
        flow: flow.connection(),
        sides,
        enforced: proof_base,
    }
}

/// Whether `staged` (a candidate's staged document, or the user's edit of it), staged over the
/// enforced policies, allows `flow` on the side that reported it in Calico's pending evaluation;
/// `Err` says why not (it does not load, naming the line; it leaves the flow denied; or undecided).
pub fn prove_on(enforced: &PolicySet, flow: &Flow, staged: &str) -> Result<(), String> {
    let (with, report) = with_staged(enforced, "the candidate", staged);
    if let Some(error) = report.errors.first() {
        return Err(format!("it does not load: {error}"));
    }
    let outcome = Evaluator::new(&with).evaluate(flow).pending;
    match outcome.verdict {
        Verdict::Allow => Ok(()),
        Verdict::Deny => Err("staged, it leaves the flow denied".to_string()),
        Verdict::Unknown => Err(format!(
            "staged, it leaves the verdict unknown: {}",
            outcome.undetermined.map_or("", |u| u.need.describe())
        )),
    }
}

/// A side's flow as the side that decides it reports it: `Ingress` is the destination's.
pub fn flow_of_side(flow: &Flow, direction: &str) -> Flow {
    side_flow(
        flow,
        if direction == Direction::Ingress.as_str() {
            Reporter::Dst
        } else {
            Reporter::Src
        },
    )
}

/// Where a fix goes in the deciding tier.
struct Placement {
    tier: String,
    /// The policy that owns the deny, by index in the set.
    owner: Option<usize>,
    /// Where the rule goes in the owner's rules (`None`: appended).
    insert_at: Option<usize>,
    /// Whether the tier already applied to the endpoint (else a new policy there ends with Pass).
    tier_applied: bool,
}

struct Planner<'a> {
    set: &'a PolicySet,
    proof_base: &'a PolicySet,
    flow: &'a Flow,
    naming: Naming,
}

impl Planner<'_> {
    fn direction(&self) -> Direction {
        match self.flow.reporter {
            Reporter::Dst => Direction::Ingress,
            _ => Direction::Egress,
        }
    }

    fn side(&self, persona: &Persona, reported: bool) -> SideProposal {
        let mut evaluator = Evaluator::new(self.set);
        let evaluation = evaluator.evaluate(self.flow);
        let verdict = evaluation.enforced.verdict;
        let mut side = SideProposal {
            direction: self.direction().as_str(),
            endpoint: self.flow.local().display_name(),
            verdict,
            reported,
            denial: None,
            outcome: SideOutcome::Allowed,
            dropped: Vec::new(),
            already_allowed_by: None,
        };
        match verdict {
            Verdict::Allow => return side,
            Verdict::Unknown => {
                let reason = evaluation
                    .enforced
                    .undetermined
                    .map(|u| u.need.describe().to_string())
                    .unwrap_or_else(|| "the verdict cannot be computed".to_string());
                side.outcome = SideOutcome::Unfixable {
                    reason: format!("this side's verdict is unknown: {reason}"),
                };
                return side;
            }
            Verdict::Deny => {}
        }
        if evaluation.pending.verdict == Verdict::Allow {
            side.already_allowed_by =
                evaluation
                    .pending
                    .hits
                    .last()
                    .and_then(|hit| match hit.source {
                        HitSource::Rule { policy, .. } => {
                            let policy = self.policy(policy as usize);
                            Some(StagedAllow {
                                policy: format!("{} {}", policy.kind, policy.display_name()),
                                tier: policy.tier.clone(),
                            })
                        }
                        _ => None,
                    });
        }
        let (denial, placement) = match self.placement(&evaluation, persona) {
            Ok(found) => found,
            Err((denial, reason)) => {
                side.denial = Some(denial);
                side.outcome = SideOutcome::Unfixable { reason };
                return side;
            }
        };
        side.denial = Some(denial.clone());
        let mut candidates = self.candidates(&placement, &mut side.dropped);
        side.outcome = if persona.may_write(&placement.tier) {
            let mut refusals = Vec::new();
            candidates.retain(|c| match persona.may_not_stage(c) {
                Some(why) => {
                    refusals.push(format!(
                        "{}: {why} (`flowtrace auth` says where you may)",
                        c.rationale
                    ));
                    false
                }
                None => true,
            });
            side.dropped.extend(refusals.iter().cloned());
            if candidates.is_empty() && !refusals.is_empty() {
                SideOutcome::Unfixable {
                    reason: "you may not create staged policies where a fix would go (`flowtrace \
                             auth` says where you may)"
                        .to_string(),
                }
            } else if candidates.is_empty() {
                SideOutcome::Unfixable {
                    reason: "no candidate could be proven to allow the flow".to_string(),
                }
            } else {
                SideOutcome::Fixable { candidates }
            }
        } else {
            let trace = explain(&mut evaluator, self.flow);
            let skips_tiers = trace
                .enforced
                .tiers
                .iter()
                .skip_while(|t| t.name != placement.tier)
                .skip(1)
                .filter(|t| t.policies.iter().any(|p| p.selected && !p.staged))
                .map(|t| t.name.clone())
                .collect();
            SideOutcome::Guardrail {
                exception: Box::new(ExceptionRequest {
                    flow: self.flow.summary(),
                    denial,
                    proposed: candidates.into_iter().next(),
                    skips_tiers,
                    trace,
                }),
            }
        };
        side
    }

    fn policy(&self, index: usize) -> &Policy {
        self.set.policy(index)
    }

    /// What denied the flow, and where a fix would go; `Err` with the reason when nowhere.
    fn placement(
        &self,
        evaluation: &Evaluation,
        persona: &Persona,
    ) -> Result<(Denial, Placement), (Denial, String)> {
        let hits = &evaluation.enforced.hits;
        let tiers = self.set.tiers();
        // The deny decided by a hit, or (no hit denies) the flow passed every tier that applied
        // and the endpoint's default dropped it.
        let deciding = hits
            .last()
            .filter(|h| h.action == HitAction::Deny)
            .map_or(HitSource::Profile, |h| h.source);
        match deciding {
            HitSource::Rule { policy, rule } => {
                let owner = self.policy(policy as usize);
                Ok((
                    Denial {
                        tier: owner.tier.clone(),
                        policy: Some(owner.display_name()),
                        rule: Some(rule as usize),
                        describe: format!(
                            "rule {rule} (Deny) of {} in tier {}",
                            owner.display_name(),
                            owner.tier
                        ),
                        withheld: false,
                    },
                    Placement {
                        tier: owner.tier.clone(),
                        owner: Some(policy as usize),
                        insert_at: Some(rule as usize),
                        tier_applied: true,
                    },
                ))
            }
            HitSource::EndOfTier { tier, trigger } => {
                let tier = &tiers[tier as usize];
                let owner = self.policy(trigger as usize);
                Ok((
                    Denial {
                        tier: tier.name.clone(),
                        policy: Some(owner.display_name()),
                        rule: None,
                        describe: format!(
                            "the end of tier {}: no policy in it allowed the flow (the last to \
                             select {} was {})",
                            tier.name,
                            self.flow.local().display_name(),
                            owner.display_name()
                        ),
                        withheld: false,
                    },
                    Placement {
                        tier: tier.name.clone(),
                        owner: Some(trigger as usize),
                        insert_at: None,
                        tier_applied: true,
                    },
                ))
            }
            HitSource::Profile => {
                // The flow passed every tier that applied: a fix goes in a writable tier after
                // the last of them (before it would bypass that tier's decision).
                // The tiers that applied (each left a hit: a Pass, its end).
                let applied: Vec<usize> = hits
                    .iter()
                    .filter_map(|h| match h.source {
                        HitSource::Rule { policy, .. } => {
                            Some(self.set.tier_index_of_policy(policy as usize))
                        }
                        HitSource::EndOfTier { tier, .. } => Some(tier as usize),
                        HitSource::Profile => None,
                    })
                    .collect();
                let passed = applied.iter().copied().max();
                let denial = Denial {
                    tier: passed
                        .map(|t| tiers[t].name.clone())
                        .unwrap_or_else(|| "default".to_string()),
                    policy: None,
                    rule: None,
                    describe: match passed {
                        Some(t) => format!(
                            "the endpoint's default after tier {} passed the flow on: a host \
                             endpoint drops what no policy allows",
                            tiers[t].name
                        ),
                        None => "the endpoint's default: no policy selects it, and a host \
                                 endpoint drops what no policy allows"
                            .to_string(),
                    },
                    withheld: false,
                };
                let first = passed.map_or(0, |t| t + 1);
                let target = tiers
                    .iter()
                    .enumerate()
                    .skip(first)
                    .find(|(_, t)| persona.may_write(&t.name));
                match target {
                    Some((index, tier)) => Ok((
                        denial,
                        Placement {
                            tier: tier.name.clone(),
                            owner: None,
                            insert_at: None,
                            tier_applied: applied.contains(&index),
                        },
                    )),
                    None => {
                        let reason = format!(
                            "no tier you may write ({}) is evaluated after the tiers that passed \
                             the flow on",
                            persona.writable().join(", ")
                        );
                        Err((denial, reason))
                    }
                }
            }
        }
    }

    /// The destination's named port for the flow's port, when its pod names one.
    fn named_port(&self) -> Option<String> {
        let dest = &self.flow.dest;
        let port = self.flow.dest_port?;
        let namespace = dest.namespace.as_deref()?;
        self.set
            .pods_in(namespace)
            .iter()
            .filter(|pod| name_matches(&dest.name, &pod.name))
            .flat_map(|pod| pod.named_ports.iter())
            .find(|named| named.port == port && named.protocol == self.flow.protocol)
            .map(|named| named.name.clone())
    }

    /// Candidates, narrowest first, each proven; the unproven ones go to `dropped` with why.
    fn candidates(&self, placement: &Placement, dropped: &mut Vec<String>) -> Vec<Candidate> {
        let peer = identify(&resolve(self.set, self.flow.peer()), self.flow.peer().ip);
        let protocol = self.flow.protocol;
        let exact_port = if !protocol.has_ports() {
            PortScope::None
        } else {
            match self.flow.dest_port {
                Some(port) => PortScope::Number(port),
                None => PortScope::All,
            }
        };
        let mut variants = Vec::new();
        if let (Some(name), PortScope::Number(_)) = (self.named_port(), &exact_port) {
            variants.push((
                Breadth::Exact,
                PeerScope::Exact(peer.clone()),
                PortScope::Named(name),
            ));
        }
        variants.push((
            Breadth::Exact,
            PeerScope::Exact(peer.clone()),
            exact_port.clone(),
        ));
        if let Identity::Labeled {
            kind: EndpointType::WorkloadEndpoint,
            namespace: Some(ns),
            ..
        } = &peer
        {
            variants.push((
                Breadth::PeerNamespace,
                PeerScope::Namespace(ns.clone()),
                exact_port.clone(),
            ));
        }
        if matches!(exact_port, PortScope::Number(_)) {
            variants.push((
                Breadth::AllPorts,
                PeerScope::Exact(peer.clone()),
                PortScope::All,
            ));
        }
        if peer == Identity::Unnamed {
            dropped.push(format!(
                "{} carries neither labels nor an address: no rule can name it",
                self.flow.peer().display_name()
            ));
        }

        let mut candidates: Vec<Candidate> = Vec::new();
        for (breadth, peer_scope, port) in variants {
            // Of a narrowest kind, the named and numbered forms are one choice: the first proven.
            if breadth == Breadth::Exact && candidates.iter().any(|c| c.breadth == Breadth::Exact) {
                continue;
            }
            let rule = RuleToAdd {
                direction: self.direction(),
                peer: peer_scope,
                protocol,
                port,
                local: None,
            };
            let placed = [
                self.in_owner_copy(placement, &rule),
                self.in_new_policy(placement, &rule),
            ];
            let mut proven_here = 0;
            for candidate in placed.into_iter().flatten() {
                // Broader candidates are alternatives to weigh, not a menu: one placement each.
                if breadth != Breadth::Exact && proven_here > 0 {
                    break;
                }
                match self.prove(&candidate) {
                    Ok(()) => {
                        proven_here += 1;
                        candidates.push(candidate);
                    }
                    Err(why) => dropped.push(format!("{}: {why}", candidate.rationale)),
                }
            }
        }
        candidates
    }

    /// Whether the candidate, staged over the enforced policies, allows the flow in Calico's
    /// pending evaluation.
    fn prove(&self, candidate: &Candidate) -> Result<(), String> {
        prove_on(self.proof_base, self.flow, &candidate.documents.staged)
    }

    fn rule_words(&self, rule: &RuleToAdd) -> String {
        let port = match &rule.port {
            PortScope::Number(p) => format!(" {p}"),
            PortScope::Named(name) => format!(
                " {name} ({})",
                self.flow
                    .dest_port
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            ),
            PortScope::All => " (every port)".to_string(),
            PortScope::None => String::new(),
        };
        let peer = match &rule.peer {
            PeerScope::Exact(identity) => identity.describe(),
            PeerScope::Namespace(ns) => format!("every workload in namespace {ns}"),
        };
        let way = match rule.direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        let only = match &rule.local {
            Some(local) => format!(" (for {} only)", local.describe()),
            None => String::new(),
        };
        format!(
            "Allow {}{port} {way} {peer}{only}",
            rule.protocol.name().to_uppercase()
        )
    }

    /// The endpoint the flow was decided at, as a rule names it.
    fn local_identity(&self) -> Identity {
        identify(&resolve(self.set, self.flow.local()), None)
    }

    /// The endpoint the flow was decided at, when `owner` may select more than it (a global
    /// policy, or a selector other than the one naming it): a rule added to `owner` must name it.
    fn local_when_selecting_more(&self, owner: &Policy) -> Option<Identity> {
        let local = self.local_identity();
        let (namespace, labels) = local.labeled()?;
        // A namespaced policy's selector holds its namespace, as the loader reads it.
        let naming = match (Selector::parse(&local_selector(labels)), &owner.namespace) {
            (Ok(naming), Some(ns)) if Some(ns.as_str()) == namespace => {
                Some(naming.and(namespace_equals(ns)))
            }
            _ => None,
        };
        let same = naming.as_ref() == Some(self.set.selector(owner.selector));
        (!same).then_some(local)
    }

    /// The rule in a staged copy of the policy that owns the deny.
    fn in_owner_copy(&self, placement: &Placement, rule: &RuleToAdd) -> Option<Candidate> {
        let owner_index = placement.owner?;
        let owner = self.policy(owner_index);
        let kubernetes = is_kubernetes(owner.kind);
        let rule = &RuleToAdd {
            local: (!kubernetes)
                .then(|| self.local_when_selecting_more(owner))
                .flatten(),
            ..rule.clone()
        };
        let value = if kubernetes {
            kubernetes_rule(rule, owner.namespace.as_deref()?)?
        } else {
            serde_norway::to_value(calico_rule(rule, owner.namespace.as_deref())?).ok()?
        };
        let where_ = match placement.insert_at {
            Some(at) => format!("before its rule {at} (Deny), which denied the flow"),
            None => "after its last rule (the flow reached the end of the tier)".to_string(),
        };
        let at = if kubernetes {
            None
        } else {
            placement.insert_at
        };
        let staged_order = self.order_before(owner_index);
        let (documents, index) =
            staged_copy(owner, self.direction(), value, at, Some(staged_order)).ok()?;
        // Calico evaluates a staged policy besides the enforced one of the same name: the copy
        // must come first to show in the pending verdict.
        let order = match (kubernetes, owner.order) {
            (true, _) => String::new(),
            (false, Some(own)) => format!(
                "; staged at order {staged_order} to come before the original (order {own}), \
                 which it stands in for until enforced with order {own}"
            ),
            (false, None) => format!(
                "; staged at order {staged_order} to come before the original, which it \
                 stands in for until enforced"
            ),
        };
        let added = (!kubernetes).then_some(AddedRule {
            direction: self.direction(),
            index,
        });
        Some(Candidate {
            breadth: breadth_of(rule),
            rationale: format!(
                "{} in a staged copy of {}, {where_}{order}",
                self.rule_words(rule),
                owner.display_name()
            ),
            policy: owner.display_name(),
            tier: placement.tier.clone(),
            documents,
            findings: Vec::new(),
            added,
            preview: None,
        })
    }

    /// The rule in a new policy of the tier, ordered before the policy that owns the deny.
    fn in_new_policy(&self, placement: &Placement, rule: &RuleToAdd) -> Option<Candidate> {
        let local = self.local_identity();
        let (namespace, labels) = local.labeled()?;
        let base_name = self.new_name(rule);
        let kubernetes = placement
            .owner
            .is_some_and(|o| is_kubernetes(self.policy(o).kind));
        if kubernetes {
            let namespace = namespace?;
            let value = kubernetes_rule(rule, namespace)?;
            let documents =
                new_kubernetes_policy(&base_name, namespace, labels, self.direction(), value);
            return Some(Candidate {
                breadth: breadth_of(rule),
                rationale: format!(
                    "{} in a new Kubernetes NetworkPolicy {namespace}/{base_name} selecting {} \
                     (Kubernetes policies add up)",
                    self.rule_words(rule),
                    local.describe()
                ),
                policy: format!("{namespace}/{base_name}"),
                tier: placement.tier.clone(),
                documents,
                findings: Vec::new(),
                added: None,
                preview: None,
            });
        }
        let name = self.naming.name(&placement.tier, &base_name);
        let mut rules = vec![calico_rule(rule, namespace)?];
        if !placement.tier_applied {
            rules.push(pass_rule());
        }
        let order = match placement.owner {
            Some(owner) => self.order_before(owner),
            None => self.order_first(&placement.tier),
        };
        let documents = new_calico_policy(&NewCalicoPolicy {
            name: &name,
            namespace,
            tier: &placement.tier,
            order: Some(order),
            selector: local_selector(labels),
            direction: self.direction(),
            rules,
        });
        // Named as the trace will name it once staged (without a `<tier>.` prefix).
        let display = crate::model::qualified_name(namespace.unwrap_or(""), &base_name);
        let position = match placement.owner {
            Some(owner) => format!("ordered {order} before {}", self.policy(owner).display_name()),
            None if placement.tier_applied => format!("ordered {order}, first in its tier"),
            None => format!(
                "ordered {order}, ending with Pass so the endpoint's other traffic goes on as before"
            ),
        };
        Some(Candidate {
            breadth: breadth_of(rule),
            rationale: format!(
                "{} in a new policy {display} in tier {}, {position}",
                self.rule_words(rule),
                placement.tier
            ),
            policy: display,
            tier: placement.tier.clone(),
            documents,
            findings: Vec::new(),
            added: Some(AddedRule {
                direction: self.direction(),
                index: 0,
            }),
            preview: None,
        })
    }

    fn new_name(&self, rule: &RuleToAdd) -> String {
        let way = match rule.direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        let peer = match &rule.peer {
            PeerScope::Exact(Identity::Labeled {
                namespace, labels, ..
            }) => {
                let value = labels.first().map(|(_, v)| v.as_str()).unwrap_or("peer");
                match namespace {
                    Some(ns) if ns != value => format!("{ns}-{value}"),
                    _ => value.to_string(),
                }
            }
            PeerScope::Exact(Identity::Address(ip)) => ip.to_string(),
            PeerScope::Exact(Identity::Unnamed) => "peer".to_string(),
            PeerScope::Namespace(ns) => format!("ns-{ns}"),
        };
        let port = match &rule.port {
            PortScope::Number(p) => format!("-{p}"),
            PortScope::Named(name) => format!("-{name}"),
            PortScope::All => "-any".to_string(),
            PortScope::None => String::new(),
        };
        dns_label(&format!(
            "allow-{way}-{peer}-{}{port}",
            rule.protocol.name()
        ))
    }

    /// An order just before the policy's (halfway to the one before it), so that nothing else
    /// in the tier moves.
    fn order_before(&self, policy_index: usize) -> f64 {
        let policy = self.policy(policy_index);
        let tier = self.set.tier_index_of_policy(policy_index);
        let orders: Vec<f64> = self
            .set
            .tier_policy_range(tier)
            .filter(|&i| i != policy_index)
            .filter_map(|i| self.policy(i).order)
            .collect();
        match policy.order {
            None => orders
                .into_iter()
                .reduce(f64::max)
                .map_or(1000.0, |max| max + 10.0),
            Some(own) => match orders.into_iter().filter(|&o| o < own).reduce(f64::max) {
                Some(before) => (before + own) / 2.0,
                None => ahead_of(own),
            },
        }
    }

    /// An order ahead of every policy of the tier.
    fn order_first(&self, tier_name: &str) -> f64 {
        let Some(tier) = self.set.tiers().iter().position(|t| t.name == tier_name) else {
            return 100.0;
        };
        self.set
            .tier_policy_range(tier)
            .filter_map(|i| self.policy(i).order)
            .reduce(f64::min)
            .map_or(100.0, ahead_of)
    }
}

/// An order ahead of `order` with none between: halfway to zero, or one less at or below it.
fn ahead_of(order: f64) -> f64 {
    if order > 0.0 {
        order / 2.0
    } else {
        order - 1.0
    }
}

fn breadth_of(rule: &RuleToAdd) -> Breadth {
    match (&rule.peer, &rule.port) {
        (PeerScope::Namespace(_), _) => Breadth::PeerNamespace,
        (_, PortScope::All) => Breadth::AllPorts,
        _ => Breadth::Exact,
    }
}

fn is_kubernetes(kind: PolicyKind) -> bool {
    matches!(
        kind,
        PolicyKind::NetworkPolicy | PolicyKind::StagedKubernetesNetworkPolicy
    )
}

/// A name Kubernetes accepts: lowercase letters, digits, `-` and `.`, at most 253 characters.
fn dns_label(text: &str) -> String {
    let mut name = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('-');
    name.chars().take(200).collect()
}

#[cfg(test)]
mod tests;
