//! Stored flows decided again, in place: against a new policy set (a watched change, an enforced
//! fix), or previewed against a candidate staged on top of the current set (what a fix would
//! change). Each distinct conversation is evaluated once, and the work goes a slice of rows at a
//! time so that a caller (the TUI) reads input between slices.

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::flow_store::{Conversation, Decided, DecidedId, FlowStore, RowId};
use crate::model::{PolicyHit, Verdict};
use crate::policy::{Evaluation, Evaluator, SetHandle};

/// A flow's verdicts and hits as computed (without Calico's record, which is the row's own).
#[derive(Debug, Clone)]
struct Computed {
    action: Verdict,
    pending: Verdict,
    enforced: Vec<PolicyHit>,
    pending_hits: Vec<PolicyHit>,
}

/// Re-decides stored rows against one policy set. Rows are shared out to a worker per core by
/// the endpoint that decides them (its policies and selector answers then stay with one worker,
/// in its cache); the store is written on the calling thread.
pub struct Redecider<S> {
    workers: Vec<Worker<S>>,
    /// The new verdicts of a row, by its computed result and its verdicts before (which hold
    /// Calico's record): few distinct pairs, so each `Decided` is built and interned once.
    decisions: FxHashMap<(u32, DecidedId), DecidedId>,
    /// Slices of fewer rows are decided on the calling thread.
    parallel_from: usize,
}

/// Below this many rows a slice is decided on the calling thread: starting threads would cost
/// more than they save.
const PARALLEL_FROM: usize = 4_096;

impl<S: SetHandle + Send> Redecider<S> {
    pub fn new(policies: S) -> Redecider<S> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Redecider {
            workers: (0..cores).map(|_| Worker::new(policies.clone())).collect(),
            decisions: FxHashMap::default(),
            parallel_from: PARALLEL_FROM,
        }
    }

    /// Decides the rows of `range` again; returns the ids of those whose verdicts or hits
    /// changed. Calico's recorded trace stays with each row.
    pub fn slice(&mut self, store: &mut FlowStore, range: Range<RowId>) -> Vec<RowId> {
        let range = store.clamp(range);
        let results = self.results(store, range.clone());
        let mut changed = Vec::new();
        for (id, result) in range.zip(results) {
            let (Some(result), Some(before)) = (result, store.decided_id(id)) else {
                continue;
            };
            let decided = match self.decisions.get(&(result, before)) {
                Some(&decided) => decided,
                None => {
                    let decided = self.decide(store, result, before);
                    self.decisions.insert((result, before), decided);
                    decided
                }
            };
            if store.set_decided(id, decided) {
                changed.push(id);
            }
        }
        changed
    }

    /// The computed result of each row of `range` (numbered as `decide` reads them).
    fn results(&mut self, store: &FlowStore, range: Range<RowId>) -> Vec<Option<u32>> {
        let count = self.workers.len();
        for worker in &mut self.workers {
            if worker.conversations.is_empty() {
                // Most rows are conversations of their own: growing by rehashing costs more.
                worker.conversations.reserve(store.len() / count * 9 / 8);
            }
        }
        let mut shares: Vec<Vec<Row>> = vec![Vec::new(); count];
        for (place, id) in range.clone().enumerate() {
            if let Some(conversation) = store.conversation(id) {
                let deciding = conversation.deciding_endpoint();
                shares[deciding as usize % count].push(Row {
                    deciding,
                    place: place as u32,
                    id,
                    conversation,
                });
            }
        }
        let parts: Vec<Vec<u32>> = if range.end - range.start < self.parallel_from as u64 {
            let workers = self.workers.iter_mut();
            workers
                .zip(&mut shares)
                .map(|(worker, rows)| worker.results(store, rows))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let running: Vec<_> = self
                    .workers
                    .iter_mut()
                    .zip(&mut shares)
                    .map(|(worker, rows)| scope.spawn(move || worker.results(store, rows)))
                    .collect();
                running
                    .into_iter()
                    .map(|worker| worker.join().expect("an evaluator does not panic"))
                    .collect()
            })
        };
        let mut results = vec![None; (range.end - range.start) as usize];
        for (worker, (rows, part)) in shares.iter().zip(parts).enumerate() {
            for (row, local) in rows.iter().zip(part) {
                results[row.place as usize] = Some(local * count as u32 + worker as u32);
            }
        }
        results
    }

    /// The verdicts of a computed result for a row that had `before`, with Calico's record kept.
    fn decide(&self, store: &mut FlowStore, result: u32, before: DecidedId) -> DecidedId {
        let count = self.workers.len() as u32;
        let computed = &self.workers[(result % count) as usize].computed[(result / count) as usize];
        let before = store.decided(before);
        // What Calico recorded: kept beside a computed trace that differs, else the trace.
        let calico = before.recorded.as_ref().unwrap_or(&before.enforced);
        let recorded = (!calico.is_empty() && *calico != computed.enforced).then(|| calico.clone());
        let decided = Decided {
            action: computed.action,
            pending: computed.pending,
            enforced: computed.enforced.clone(),
            pending_hits: computed.pending_hits.clone(),
            recorded,
        };
        store.intern_decided(&decided)
    }
}

/// A row given to a worker: its conversation, and its place in the slice.
#[derive(Clone, Copy)]
struct Row {
    deciding: u32,
    place: u32,
    id: RowId,
    conversation: Conversation,
}

/// One core's evaluator, the conversations it has decided and the distinct results they had (a
/// result is known to the `Redecider` as its index here times the number of workers, plus the
/// worker's).
struct Worker<S> {
    evaluator: Evaluator<S>,
    /// Each conversation is evaluated once.
    conversations: FxHashMap<Conversation, u32>,
    /// By evaluation and the namespace of the deciding endpoint (a profile's name says it):
    /// building hits allocates, evaluating does not.
    results: FxHashMap<(Evaluation, Option<Arc<str>>), u32>,
    computed: Vec<Computed>,
}

impl<S: SetHandle> Worker<S> {
    fn new(policies: S) -> Worker<S> {
        Worker {
            evaluator: Evaluator::new(policies),
            conversations: FxHashMap::default(),
            results: FxHashMap::default(),
            computed: Vec::new(),
        }
    }

    /// The (local) result of each of `rows`, which it sorts by deciding endpoint: that
    /// endpoint's policies and selector answers stay in cache while its rows are evaluated.
    fn results(&mut self, store: &FlowStore, rows: &mut [Row]) -> Vec<u32> {
        rows.sort_unstable_by_key(|row| row.deciding);
        rows.iter()
            .map(|row| match self.conversations.get(&row.conversation) {
                Some(&result) => result,
                None => {
                    let result = self.evaluate(store, row.id);
                    self.conversations.insert(row.conversation, result);
                    result
                }
            })
            .collect()
    }

    fn evaluate(&mut self, store: &FlowStore, id: RowId) -> u32 {
        let stored = store.get(id).expect("a stored row");
        let flow = stored.to_flow();
        let evaluation = self.evaluator.evaluate_keyed(&flow, stored.endpoint_keys());
        let key = (evaluation, flow.local().namespace.clone());
        if let Some(&result) = self.results.get(&key) {
            return result;
        }
        let evaluation = &key.0;
        let computed = Computed {
            action: evaluation.enforced.verdict,
            pending: evaluation.pending.verdict,
            enforced: self.evaluator.policy_hits(&flow, &evaluation.enforced.hits),
            pending_hits: self.evaluator.policy_hits(&flow, &evaluation.pending.hits),
        };
        let result = self.computed.len() as u32;
        self.computed.push(computed);
        self.results.insert(key, result);
        result
    }
}

/// A stored row whose verdict the candidate changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub id: RowId,
    /// The row's enforced verdict under the policies as they are now (as stored, for a row the
    /// candidate cannot change).
    pub enforced: Verdict,
    /// Its pending verdict without the candidate, as stored.
    pub pending: Verdict,
    /// Its pending verdict with the candidate staged (`Unknown`: the flow lacks what a rule
    /// needs, e.g. an address).
    pub staged: Verdict,
}

/// Previews a candidate over stored rows: the set it is given holds the candidate as staged
/// policies over the enforced ones only (`policy::with_staged` on `PolicySet::without_staged`), so
/// the preview is Calico's own pending evaluation and a change is the candidate's alone: a row
/// changes when its verdict with the candidate differs from its enforced verdict. Rows whose
/// deciding endpoint the candidate does not select cannot change and are not evaluated, nor can
/// rows with an end withheld from the user (its labels are gone): those are counted.
pub struct Previewer<S> {
    evaluator: Evaluator<S>,
    conversations: FxHashMap<Conversation, (Verdict, Verdict)>,
    /// Rows not previewed because an end of theirs is withheld.
    pub withheld: usize,
}

impl<S: SetHandle> Previewer<S> {
    pub fn new(with_candidate: S) -> Previewer<S> {
        Previewer {
            evaluator: Evaluator::new(with_candidate),
            conversations: FxHashMap::default(),
            withheld: 0,
        }
    }

    /// Appends to `out` the rows of `range` whose verdict the candidate changes.
    pub fn slice(&mut self, store: &FlowStore, range: Range<RowId>, out: &mut Vec<Change>) {
        for id in store.clamp(range) {
            let (Some(conversation), Some(stored)) = (store.conversation(id), store.get(id)) else {
                continue;
            };
            if stored.source.is_withheld() || stored.dest.is_withheld() {
                self.withheld += 1;
                continue;
            }
            // Before and after, both under the policies as they are now: a row stored before a
            // policy change keeps the verdicts it had then, which are not the candidate's doing.
            let (now, staged) = match self.conversations.get(&conversation) {
                Some(&verdicts) => verdicts,
                None => {
                    let flow = stored.to_flow();
                    let verdicts = if self.evaluator.staged_policies_select(&flow) {
                        let evaluation = self.evaluator.evaluate(&flow);
                        (evaluation.enforced.verdict, evaluation.pending.verdict)
                    } else {
                        (stored.decided.action, stored.decided.action)
                    };
                    self.conversations.insert(conversation, verdicts);
                    verdicts
                }
            };
            if staged != now {
                out.push(Change {
                    id,
                    enforced: now,
                    pending: stored.decided.pending,
                    staged,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Pipeline, Scope};
    use crate::policy::{with_staged, PolicySet};
    use crate::source::demo::fixtures::OPEN_EVERYTHING;
    use crate::source::demo::DemoCluster;

    /// An hour of demo traffic, decided by the demo's policies, in a store.
    fn demo_store() -> (FlowStore, Arc<PolicySet>, DemoCluster) {
        let mut demo = DemoCluster::new(4);
        let set = Arc::new(demo.policy_set().clone());
        let mut pipeline = Pipeline::new(Some(set.clone()), Scope::unrestricted());
        let mut store = FlowStore::new(100_000);
        for window in 0..240 {
            for observed in demo.flows(1_000 + window * 15, 40) {
                let item = pipeline.flow(observed).unwrap();
                let decided = pipeline.decided(&item);
                store.ingest(item.observed, &decided);
            }
        }
        (store, set, demo)
    }

    /// Re-decides the demo store against `OPEN_EVERYTHING` in slices of `slice` rows and checks
    /// every row against a fresh evaluation; returns what is needed to go on.
    fn redecide_and_check(
        slice: u64,
        parallel_from: usize,
    ) -> (FlowStore, Arc<PolicySet>, Vec<RowId>) {
        let (mut store, _, mut demo) = demo_store();
        let ids: Vec<RowId> = store.iter().map(|f| f.id).collect();
        let denied_before = store
            .iter()
            .filter(|f| f.decided.action == Verdict::Deny)
            .count();
        assert!(denied_before > 0, "the demo has denied flows");
        assert!(demo
            .apply("99-open.yaml", OPEN_EVERYTHING)
            .errors
            .is_empty());
        let opened = Arc::new(demo.policy_set().clone());

        let mut redecider = Redecider::new(opened.clone());
        redecider.parallel_from = parallel_from;
        let mut changed = Vec::new();
        for start in (store.first_id()..store.end_id()).step_by(slice as usize) {
            changed.extend(redecider.slice(&mut store, start..start + slice));
        }
        assert_eq!(
            store.iter().map(|f| f.id).collect::<Vec<_>>(),
            ids,
            "no row moved"
        );
        assert!(
            changed.len() >= denied_before,
            "{} < {denied_before}",
            changed.len()
        );
        let mut fresh = Evaluator::new(opened.clone());
        for flow in store.iter() {
            let evaluation = fresh.evaluate(&flow.to_flow());
            assert_eq!(flow.decided.action, evaluation.enforced.verdict);
            assert_eq!(
                flow.decided.enforced,
                fresh.policy_hits(&flow.to_flow(), &evaluation.enforced.hits)
            );
            assert_eq!(
                changed.contains(&flow.id),
                flow.decided_before.is_some(),
                "a changed row says what it was"
            );
        }
        (store, opened, changed)
    }

    #[test]
    fn redeciding_on_every_core_agrees_with_a_fresh_evaluation() {
        // One slice of the whole store, shared out to the workers' threads.
        redecide_and_check(u64::MAX / 2, 1);
    }

    #[test]
    fn redeciding_changes_verdicts_in_place_as_a_fresh_evaluation_would() {
        // In small slices, as the TUI does between input.
        let (mut store, opened, changed) = redecide_and_check(7, PARALLEL_FROM);

        // A later window of a changed conversation, with the same record from Calico and decided
        // by the new policies, joins its row (as Goldmane keys flows by their recorded trace too).
        let row = store.get(changed[0]).unwrap();
        let recorded = row.decided.recorded.clone().expect("Calico's record kept");
        let mut observed = crate::model::ObservedFlow {
            flow: row.to_flow(),
            start_time: 1_000_000,
            end_time: 1_000_015,
            counters: Default::default(),
        };
        observed.flow.reported_policies = Some(crate::model::PolicyTrace {
            enforced: recorded,
            pending: Vec::new(),
        });
        let mut pipeline = Pipeline::new(Some(opened), Scope::unrestricted());
        let item = pipeline.flow(observed).unwrap();
        let decided = pipeline.decided(&item);
        let rows = store.len();
        assert_eq!(store.ingest(item.observed, &decided), changed[0]);
        assert_eq!(store.len(), rows);
    }

    #[test]
    fn a_preview_finds_exactly_the_rows_whose_verdict_the_candidate_alone_changes() {
        let (store, set, _) = demo_store();
        let candidate = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.allow-all-in-summary, namespace: summary}
spec:
  tier: application
  order: 1
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
";
        let (with_candidate, report) =
            with_staged(&set.without_staged(), "candidate.yaml", candidate);
        assert!(report.errors.is_empty(), "{report:?}");
        let with_candidate = Arc::new(with_candidate);
        let mut previewer = Previewer::new(with_candidate.clone());
        let mut changes = Vec::new();
        previewer.slice(&store, store.first_id()..store.end_id(), &mut changes);
        assert!(!changes.is_empty(), "the candidate changes something");

        // The same answer by evaluating every row in full, without pruning or memos.
        let mut fresh = Evaluator::new(with_candidate);
        let expected: Vec<Change> = store
            .iter()
            .filter_map(|flow| {
                let evaluation = fresh.evaluate(&flow.to_flow());
                let staged = evaluation.pending.verdict;
                (staged != evaluation.enforced.verdict).then_some(Change {
                    id: flow.id,
                    enforced: evaluation.enforced.verdict,
                    pending: flow.decided.pending,
                    staged,
                })
            })
            .collect();
        assert_eq!(changes, expected);
        for change in &changes {
            let flow = store.get(change.id).unwrap();
            assert_eq!(flow.to_flow().local().namespace.as_deref(), Some("summary"));
        }
    }

    #[test]
    fn a_preview_counts_only_what_the_candidate_changes_not_a_policy_change_since() {
        // Rows stored before the demo was opened up keep their old verdicts; a candidate previewed
        // against the open policies changes nothing, however different those rows are.
        let (store, _, mut demo) = demo_store();
        assert!(demo
            .apply("99-open.yaml", OPEN_EVERYTHING)
            .errors
            .is_empty());
        let opened = demo.policy_set().without_staged();
        let candidate = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: application.allow-summary, namespace: summary}
spec:
  tier: application
  order: 1
  selector: app == 'summary'
  ingress: [{action: Allow}]
";
        let (with_candidate, report) = with_staged(&opened, "candidate.yaml", candidate);
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(store.iter().any(|f| f.decided.action == Verdict::Deny));
        let mut previewer = Previewer::new(Arc::new(with_candidate));
        let mut changes = Vec::new();
        previewer.slice(&store, store.first_id()..store.end_id(), &mut changes);
        assert_eq!(changes, Vec::new());
    }
}
