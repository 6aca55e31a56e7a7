//! What a record from an older Calico says that is not so (anchors_2026-12.md, Calico 3.30–3.32):
//! flagged wherever the record is shown, never taken as the truth.

use serde::Serialize;

use super::{Counters, PolicyHit};

/// A known artefact of a flow record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "artefact", rename_all = "snake_case")]
pub enum Artefact {
    /// A deny recorded with no packets either way: Calico before 3.33 repeats a denied flow's
    /// last window after its traffic stopped.
    ZeroPacketDeny,
    /// The recorded verdict is a staged policy's, which enforces nothing: before 3.33 a staged
    /// hit could be reported as the verdict.
    StagedAsVerdict { hit: PolicyHit },
}

impl Artefact {
    /// The artefacts of a record whose enforced hits are `enforced`, whose verdict was a deny
    /// when `denied`, with `counters` (which prove nothing unless the record carried them).
    pub fn find(enforced: &[PolicyHit], denied: bool, counters: &Counters) -> Vec<Artefact> {
        let mut found = Vec::new();
        let silent = counters.packets_in == 0 && counters.packets_out == 0;
        if denied && counters.reported && silent {
            found.push(Artefact::ZeroPacketDeny);
        }
        if let Some(hit) = enforced.last().filter(|hit| hit.kind.is_staged()) {
            found.push(Artefact::StagedAsVerdict { hit: hit.clone() });
        }
        found
    }

    /// One sentence for the trace.
    pub fn describe(&self) -> String {
        match self {
            Artefact::ZeroPacketDeny => "Calico recorded this deny with no packets: before 3.33 \
                                         it repeats a denied flow after its traffic stopped, so \
                                         this may be no new traffic"
                .to_string(),
            Artefact::StagedAsVerdict { hit } => format!(
                "Calico recorded the verdict of staged policy {} ({}), which enforces nothing: a \
                 Calico bug before 3.33; the enforced verdict is what the other policies decide",
                hit.qualified_name(),
                hit.action
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HitAction, PolicyKind};

    fn hit(kind: PolicyKind, name: &str, action: HitAction) -> PolicyHit {
        PolicyHit {
            kind,
            name: name.into(),
            namespace: "shop".into(),
            tier: "application".into(),
            action,
            policy_index: 0,
            rule_index: 0,
            trigger: None,
        }
    }

    #[test]
    fn a_silent_deny_and_a_staged_verdict_are_flagged_and_nothing_else_is() {
        let deny = [hit(
            PolicyKind::CalicoNetworkPolicy,
            "lockdown",
            HitAction::Deny,
        )];
        let silent = Counters {
            reported: true,
            ..Counters::default()
        };
        let counted = Counters {
            packets_in: 3,
            ..silent
        };
        assert_eq!(
            Artefact::find(&deny, true, &silent),
            [Artefact::ZeroPacketDeny]
        );
        assert!(Artefact::find(&deny, true, &counted).is_empty());
        // A record without counters proves nothing about packets.
        assert!(Artefact::find(&deny, true, &Counters::default()).is_empty());
        // An allow with no packets is a connection that sent nothing yet.
        assert!(Artefact::find(&deny, false, &silent).is_empty());
        let staged = [hit(
            PolicyKind::StagedNetworkPolicy,
            "trial",
            HitAction::Allow,
        )];
        let found = Artefact::find(&staged, false, &counted);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .describe()
                .contains("staged policy shop/trial (Allow)"),
            "{}",
            found[0].describe()
        );
    }
}
