//! The one ingest pipeline every consumer of flows runs (`tail`, the TUI's feed, `eval`'s workers):
//! decode where the source gave text → scope → decide → compare with what Calico recorded.
//! Network sources and the demo hand over typed `ObservedFlow`s, which skip the decoder, so
//! nothing a source gave (a destination service, IPs, ports) is lost on the way.
//!
//! Pure and synchronous: the caller owns the I/O and the loop, the pipeline one flow at a time.

pub mod ordered;
mod scope;

pub use scope::{Scope, Visibility, NOT_VISIBLE};

use std::borrow::Cow;
use std::sync::Arc;

use crate::flows::{FlowDecoder, RawObject};
use crate::model::{Endpoint, Flow, ObservedFlow, PolicyHit, Protocol, Reporter, Verdict};
use crate::policy::compare::undetermined_reason;
use crate::policy::{Evaluation, Evaluator, PolicySet, SetHandle};
use crate::store::filter::FilterTarget;
use crate::store::flow_store::Recorded;
use crate::store::Decided;

/// A line as read from a file or stdin: its text, or why it is not text. A byte that is not
/// UTF-8 makes only its own line bad.
pub type TextLine = Result<String, String>;

/// The line `bytes` (as read, with its newline) as text.
pub fn text_line(bytes: Vec<u8>) -> TextLine {
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "invalid UTF-8 at byte {} of the line",
            e.utf8_error().valid_up_to() + 1
        )
    })
}

/// What a source hands over at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Lines of a file or stdin, to be decoded; `first_line` is the 1-based number of the first.
    Lines {
        first_line: usize,
        lines: Vec<TextLine>,
    },
    /// Flows a server or the demo gave typed.
    Flows(Vec<ObservedFlow>),
}

/// A flow that came through the pipeline: the observation, the record as read (files and stdin,
/// so that output can copy its members), and its evaluation when flows are decided by policies.
#[derive(Debug)]
pub struct Ingested<'a> {
    pub observed: ObservedFlow,
    pub raw: Option<RawObject<'a>>,
    pub evaluation: Option<Evaluation>,
    /// The namespace of the endpoint the flow was decided at, as it arrived (a withheld end has
    /// none left): its profile is named after it.
    pub decided_in: Option<Arc<str>>,
}

/// A flow's verdicts and hits: computed (owned) or as Calico recorded them (borrowed).
#[derive(Debug, Clone)]
pub struct Verdicts<'a> {
    pub action: Verdict,
    pub pending: Verdict,
    pub enforced: Cow<'a, [PolicyHit]>,
    pub pending_hits: Cow<'a, [PolicyHit]>,
    /// Why the computed verdict is `Unknown`, when it is.
    pub undetermined: Option<String>,
}

/// A flow with its verdicts, as filters and printers see it.
pub struct Row<'a> {
    pub observed: &'a ObservedFlow,
    pub verdicts: Verdicts<'a>,
}

impl Row<'_> {
    pub fn flow(&self) -> &Flow {
        &self.observed.flow
    }
}

impl FilterTarget for Row<'_> {
    fn action(&self) -> Verdict {
        self.verdicts.action
    }
    fn pending_action(&self) -> Verdict {
        self.verdicts.pending
    }
    fn source(&self) -> &Endpoint {
        &self.observed.flow.source
    }
    fn dest(&self) -> &Endpoint {
        &self.observed.flow.dest
    }
    fn dest_port(&self) -> Option<u16> {
        self.observed.flow.dest_port
    }
    fn protocol(&self) -> Protocol {
        self.observed.flow.protocol
    }
    fn reporter(&self) -> Reporter {
        self.observed.flow.reporter
    }
    fn enforced_hits(&self) -> &[PolicyHit] {
        &self.verdicts.enforced
    }
    fn pending_hits(&self) -> &[PolicyHit] {
        &self.verdicts.pending_hits
    }
    fn last_seen(&self) -> i64 {
        self.observed.end_time
    }
}

/// Decodes, scopes and decides flows: by evaluation against a policy set, or as recorded.
pub struct Pipeline<S> {
    decoder: FlowDecoder,
    scope: Scope,
    evaluator: Option<Evaluator<S>>,
}

impl<S: SetHandle> Pipeline<S> {
    /// Flows decided against `policies` when given, else as Calico recorded them.
    pub fn new(policies: Option<S>, scope: Scope) -> Pipeline<S> {
        Pipeline {
            decoder: FlowDecoder::new(),
            scope,
            evaluator: policies.map(Evaluator::new),
        }
    }

    /// Decides the flows that follow against a new policy set (a watched change, an enforced fix).
    pub fn set_policies(&mut self, policies: S) {
        self.evaluator = Some(Evaluator::new(policies));
    }

    /// Shows the flows that follow as Calico recorded them (the policies can no longer stand for
    /// its verdicts).
    pub fn decide_as_recorded(&mut self) {
        self.evaluator = None;
    }

    /// Shows the flows that follow by another scope (the user's roles changed).
    pub fn set_scope(&mut self, scope: Scope) {
        self.scope = scope;
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether a user's scope is in force (a cluster is configured).
    pub fn is_scoped(&self) -> bool {
        self.scope.visibility().is_some()
    }

    pub fn evaluator(&self) -> Option<&Evaluator<S>> {
        self.evaluator.as_ref()
    }

    pub fn policy_set(&self) -> Option<&PolicySet> {
        self.evaluator.as_ref().map(Evaluator::policy_set)
    }

    /// One line of a flow file or stdin: `Ok(None)` for a blank line or a flow out of scope; the
    /// error names the field and what is wrong with it.
    pub fn line<'a>(&mut self, line: &'a str) -> Result<Option<Ingested<'a>>, String> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let (observed, raw) = self.decoder.decode(line)?.into_parts();
        Ok(self.admit(observed, Some(raw)))
    }

    /// Takes a source's batch through the pipeline: each flow in scope to `each`, and each line
    /// that cannot be read to `malformed` with its line number. Lines `wanted` refuses (it sees
    /// the text, e.g. a filter's pre-check) are skipped undecoded. Stops at the first error
    /// either returns.
    pub fn batch<E>(
        &mut self,
        batch: Batch,
        wanted: impl Fn(&str) -> bool,
        mut each: impl FnMut(&Self, Ingested<'_>) -> Result<(), E>,
        mut malformed: impl FnMut(usize, String) -> Result<(), E>,
    ) -> Result<(), E> {
        match batch {
            Batch::Lines { first_line, lines } => {
                for (offset, line) in lines.iter().enumerate() {
                    let line = match line {
                        Ok(line) => line,
                        Err(reason) => {
                            malformed(first_line + offset, reason.clone())?;
                            continue;
                        }
                    };
                    if !wanted(line) {
                        continue;
                    }
                    match self.line(line) {
                        Ok(Some(item)) => each(self, item)?,
                        Ok(None) => {}
                        Err(reason) => malformed(first_line + offset, reason)?,
                    }
                }
            }
            Batch::Flows(flows) => {
                for observed in flows {
                    if let Some(item) = self.flow(observed) {
                        each(self, item)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One flow a source handed over typed; `None` when it is out of scope.
    pub fn flow(&mut self, observed: ObservedFlow) -> Option<Ingested<'static>> {
        self.admit(observed, None)
    }

    /// Decides a flow in scope on all that was recorded, then withholds what the user may not
    /// see; a record with anything withheld is not copied to output (it is written from the
    /// withheld flow).
    fn admit<'a>(
        &mut self,
        mut observed: ObservedFlow,
        mut raw: Option<RawObject<'a>>,
    ) -> Option<Ingested<'a>> {
        if !self.scope.admits(&observed.flow) {
            return None;
        }
        let evaluation = self
            .evaluator
            .as_mut()
            .map(|evaluator| evaluator.evaluate(&observed.flow));
        let decided_in = observed.flow.local().namespace.clone();
        if self.scope.withhold(&mut observed.flow) {
            raw = None;
        }
        Some(Ingested {
            observed,
            raw,
            evaluation,
            decided_in,
        })
    }

    /// The verdicts of a flow that came through this pipeline.
    pub fn verdicts<'i>(&self, item: &'i Ingested) -> Verdicts<'i> {
        let flow = &item.observed.flow;
        if let (Some(evaluator), Some(evaluation)) = (&self.evaluator, &item.evaluation) {
            let hits =
                |hits| self.withheld(evaluator.policy_hits_in(item.decided_in.as_deref(), hits));
            return Verdicts {
                action: evaluation.enforced.verdict,
                pending: evaluation.pending.verdict,
                enforced: hits(&evaluation.enforced.hits).into(),
                pending_hits: hits(&evaluation.pending.hits).into(),
                undetermined: undetermined_reason(evaluator.policy_set(), &evaluation.enforced),
            };
        }
        let recorded = Recorded::of(flow);
        Verdicts {
            action: recorded.action,
            pending: recorded.pending,
            enforced: Cow::Borrowed(recorded.enforced),
            pending_hits: Cow::Borrowed(recorded.pending_hits),
            undetermined: None,
        }
    }

    fn withheld(&self, mut hits: Vec<PolicyHit>) -> Vec<PolicyHit> {
        self.scope.withhold_hits(&mut hits);
        hits
    }

    /// The flow with its verdicts, for filters and printers.
    pub fn row<'i>(&self, item: &'i Ingested) -> Row<'i> {
        Row {
            observed: &item.observed,
            verdicts: self.verdicts(item),
        }
    }

    /// The verdicts to store, with Calico's recorded trace kept when a computed one differs.
    pub fn decided(&self, item: &Ingested) -> Decided {
        let verdicts = self.verdicts(item);
        let recorded = item
            .observed
            .flow
            .reported_policies
            .as_ref()
            .map(|t| &t.enforced)
            .filter(|recorded| {
                item.evaluation.is_some() && recorded.as_slice() != verdicts.enforced.as_ref()
            })
            .cloned();
        Decided {
            action: verdicts.action,
            pending: verdicts.pending,
            enforced: verdicts.enforced.into_owned(),
            pending_hits: verdicts.pending_hits.into_owned(),
            recorded,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::load_str;

    const DENY_ALL: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all}
spec:
  selector: all()
  types: [Ingress]
  ingress: [{action: Deny}]
";

    const RECORDED_ALLOW: &str = r#"{"source_name":"web-*","source_namespace":"shop","source_labels":"app=web","dest_name":"api-*","dest_namespace":"shop","dest_labels":"app=api","protocol":"tcp","dest_port":80,"reporter":"Dst","action":"Allow","policies":{"enforced":[{"kind":"CalicoNetworkPolicy","name":"allow","namespace":"shop","tier":"default","action":"Allow","policy_index":0,"rule_index":0}],"pending":[]},"start_time":"2026-12-04T10:00:00Z","end_time":"2026-12-04T10:00:15Z"}"#;

    #[test]
    fn without_policies_a_flow_is_decided_as_recorded() {
        let mut pipeline: Pipeline<Arc<PolicySet>> = Pipeline::new(None, Scope::unrestricted());
        let item = pipeline.line(RECORDED_ALLOW).unwrap().unwrap();
        assert!(item.raw.is_some(), "a line keeps its record");
        let decided = pipeline.decided(&item);
        assert_eq!(decided.action, Verdict::Allow);
        assert_eq!(decided.enforced[0].name, "allow");
        assert_eq!(decided.recorded, None, "nothing was computed to differ");
        assert!(matches!(
            pipeline.verdicts(&item).enforced,
            Cow::Borrowed(_)
        ));
        assert!(pipeline.line("  \n").unwrap().is_none());
        assert!(pipeline.line("{").is_err());
    }

    #[test]
    fn with_policies_the_computed_trace_wins_and_the_record_is_kept_when_it_differs() {
        let (set, _) = load_str("deny.yaml", DENY_ALL);
        let mut pipeline = Pipeline::new(Some(Arc::new(set)), Scope::unrestricted());
        let item = pipeline.line(RECORDED_ALLOW).unwrap().unwrap();
        let decided = pipeline.decided(&item);
        assert_eq!(decided.action, Verdict::Deny);
        assert_eq!(decided.enforced[0].name, "deny-all");
        assert_eq!(decided.recorded.as_ref().unwrap()[0].name, "allow");

        // A typed flow takes the same path and meets the same policies.
        let observed = item.observed.clone();
        let typed = pipeline.flow(observed).unwrap();
        assert!(typed.raw.is_none());
        assert_eq!(pipeline.decided(&typed), decided);

        // New policies decide the flows that follow.
        pipeline.set_policies(Arc::new(PolicySet::default()));
        let again = pipeline.line(RECORDED_ALLOW).unwrap().unwrap();
        assert_eq!(pipeline.decided(&again).action, Verdict::Allow);
    }

    #[test]
    fn a_batch_gives_each_flow_in_scope_and_each_bad_line_with_its_number() {
        let mut pipeline: Pipeline<Arc<PolicySet>> = Pipeline::new(None, Scope::unrestricted());
        let lines = Batch::Lines {
            first_line: 10,
            lines: vec![
                Ok(RECORDED_ALLOW.to_string()),
                Ok("{oops".to_string()),
                Ok("\n".to_string()),
                Ok(RECORDED_ALLOW.replace("web-*", "skipped-*")),
                Ok("not json".to_string()),
                text_line(b"{\"source_name\":\"\xff\"}\n".to_vec()),
            ],
        };
        let (mut names, mut bad) = (Vec::new(), Vec::new());
        let result: Result<(), ()> = pipeline.batch(
            lines,
            |line| !line.contains("skipped"),
            |pipeline, item| {
                assert_eq!(pipeline.verdicts(&item).action, Verdict::Allow);
                names.push(item.observed.flow.source.name.to_string());
                Ok(())
            },
            |line, reason| {
                bad.push((line, reason));
                Ok(())
            },
        );
        assert!(result.is_ok());
        assert_eq!(names, ["web-*"]);
        let lines: Vec<usize> = bad.iter().map(|(line, _)| *line).collect();
        // A byte that is not UTF-8 is one bad line, with where it is.
        assert_eq!(lines, [11, 14, 15]);
        assert_eq!(bad[2].1, "invalid UTF-8 at byte 17 of the line");

        let observed = pipeline.line(RECORDED_ALLOW).unwrap().unwrap().observed;
        let flows = Batch::Flows(vec![observed.clone(), observed]);
        let mut seen = 0;
        // The first error stops the batch.
        let stopped = pipeline.batch(
            flows,
            |_| true,
            |_, _| {
                seen += 1;
                Err("stop")
            },
            |_, _| Ok(()),
        );
        assert_eq!((stopped, seen), (Err("stop"), 1));
    }

    /// A flow decided at an endpoint the user may not see keeps its profile's name: decided on
    /// all that arrived, named after the namespace it was decided in, not the marker's.
    #[test]
    fn a_withheld_decided_endpoint_keeps_its_profiles_name() {
        let visibility = Visibility {
            namespaces: Some(["web".to_string()].into()),
            ..Visibility::everything()
        };
        let flow = RECORDED_ALLOW.replace(
            r#""source_namespace":"shop""#,
            r#""source_namespace":"web""#,
        );
        let mut pipeline =
            Pipeline::new(Some(Arc::new(PolicySet::default())), Scope::of(visibility));
        let item = pipeline.line(&flow).unwrap().unwrap();
        assert!(
            item.observed.flow.dest.is_withheld(),
            "the decided end is withheld"
        );
        let verdicts = pipeline.verdicts(&item);
        assert_eq!(verdicts.action, Verdict::Allow);
        let names: Vec<&str> = verdicts.enforced.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["kns.shop"]);
    }
}
