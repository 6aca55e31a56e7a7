//! Felix's flow-log policy-hit strings (`<index>|<tier>|<name>|<action>|<rule index>`) in every
//! syntax Calico has written them: 3.30/3.31 (`ns/tier.name`, `ns/knp.default.name`,
//! `tier.staged:name`), Calico Enterprise's (`ns/staged:tier.name`), and 3.32+ (`np:ns/name`).

use crate::model::{HitAction, PolicyHit, PolicyKind, PROFILE_TIER};

/// Parses one hit string into Goldmane's shape (an end-of-tier hit carries its trigger).
pub fn parse_hit_string(text: &str) -> Result<PolicyHit, String> {
    let fields: Vec<&str> = text.split('|').collect();
    let (index, tier, name, action, rule) = match fields.as_slice() {
        [index, tier, name, action, rule] => (*index, *tier, *name, *action, Some(*rule)),
        // Old `all_policies` entries have no rule index.
        [index, tier, name, action] => (*index, *tier, *name, *action, None),
        _ => {
            return Err(format!(
                "policy hit {text:?} does not have the form index|tier|name|action|rule"
            ))
        }
    };
    let policy_index: i64 = index
        .trim()
        .parse()
        .map_err(|_| format!("policy hit {text:?}: index {index:?} is not a number"))?;
    let action = HitAction::parse(action)
        .ok_or_else(|| format!("policy hit {text:?}: unknown action {action:?}"))?;
    let rule_index: i64 = match rule {
        Some(rule) => rule
            .trim()
            .parse()
            .map_err(|_| format!("policy hit {text:?}: rule index {rule:?} is not a number"))?,
        None => -2,
    };
    let (kind, namespace, name) = parse_name(tier, name)
        .ok_or_else(|| format!("policy hit {text:?}: unrecognised policy name {name:?}"))?;
    let tier = if kind == PolicyKind::Profile {
        PROFILE_TIER.to_string()
    } else {
        tier.to_string()
    };
    let hit = PolicyHit {
        kind,
        name,
        namespace,
        tier: tier.clone(),
        action,
        policy_index,
        rule_index,
        trigger: None,
    };
    if rule_index == -1 {
        return Ok(PolicyHit {
            kind: PolicyKind::EndOfTier,
            name: String::new(),
            namespace: String::new(),
            tier,
            action,
            policy_index,
            rule_index,
            trigger: Some(Box::new(hit)),
        });
    }
    Ok(hit)
}

/// Kind, namespace and bare name from the name part.
fn parse_name(tier: &str, name: &str) -> Option<(PolicyKind, String, String)> {
    if name.is_empty() || name == "*" {
        return None;
    }
    if let Some((short_kind, rest)) = name
        .split_once(':')
        .filter(|(k, _)| !k.contains('/') && !k.contains('.') && *k != "staged")
    {
        return parse_kind_prefixed(short_kind, rest);
    }
    if tier == PROFILE_TIER {
        return Some((
            PolicyKind::Profile,
            String::new(),
            name.strip_prefix("__PROFILE__.")
                .unwrap_or(name)
                .to_string(),
        ));
    }
    let (namespace, rest) = match name.split_once('/') {
        Some((ns, rest)) => (ns.to_string(), rest),
        None => (String::new(), name),
    };
    let staged = rest.contains("staged:");
    let rest = rest.replacen("staged:", "", 1);
    if let Some(bare) = rest.strip_prefix("knp.default.") {
        let kind = if staged {
            PolicyKind::StagedKubernetesNetworkPolicy
        } else {
            PolicyKind::NetworkPolicy
        };
        return Some((kind, namespace, bare.to_string()));
    }
    if let Some(bare) = rest.strip_prefix("kanp.adminnetworkpolicy.") {
        return Some((
            PolicyKind::AdminNetworkPolicy,
            String::new(),
            bare.to_string(),
        ));
    }
    if let Some(bare) = rest.strip_prefix("kbanp.baselineadminnetworkpolicy.") {
        return Some((
            PolicyKind::BaselineAdminNetworkPolicy,
            String::new(),
            bare.to_string(),
        ));
    }
    let bare = rest.split_once('.').map(|(_, n)| n).unwrap_or(&rest);
    let kind = match (namespace.is_empty(), staged) {
        (false, false) => PolicyKind::CalicoNetworkPolicy,
        (false, true) => PolicyKind::StagedNetworkPolicy,
        (true, false) => PolicyKind::GlobalNetworkPolicy,
        (true, true) => PolicyKind::StagedGlobalNetworkPolicy,
    };
    Some((kind, namespace, bare.to_string()))
}

/// 3.32+ `kind:ns/name` / `kind:name` (`felix/types/policy_id.go`).
fn parse_kind_prefixed(short_kind: &str, rest: &str) -> Option<(PolicyKind, String, String)> {
    let kind = match short_kind {
        "gnp" => PolicyKind::GlobalNetworkPolicy,
        "np" => PolicyKind::CalicoNetworkPolicy,
        "knp" => PolicyKind::NetworkPolicy,
        "sgnp" => PolicyKind::StagedGlobalNetworkPolicy,
        "snp" => PolicyKind::StagedNetworkPolicy,
        "sknp" => PolicyKind::StagedKubernetesNetworkPolicy,
        "kcnp" => PolicyKind::ClusterNetworkPolicy,
        "pro" => PolicyKind::Profile,
        _ => return None,
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, name)) if kind.is_namespaced() => (ns.to_string(), name.to_string()),
        _ => (String::new(), rest.to_string()),
    };
    (!name.is_empty()).then_some((kind, namespace, name))
}

/// Brings a Goldmane-reported hit into the shape flowtrace computes, so that the two compare:
/// 3.30/3.31 report admin policies as GlobalNetworkPolicy `kanp.adminnetworkpolicy.<name>`, and
/// Goldmane blanks the profile tier.
pub fn normalise_reported_hit(mut hit: PolicyHit) -> PolicyHit {
    if hit.kind == PolicyKind::GlobalNetworkPolicy {
        if let Some(bare) = hit.name.strip_prefix("kanp.adminnetworkpolicy.") {
            hit.name = bare.to_string();
            hit.kind = PolicyKind::AdminNetworkPolicy;
        } else if let Some(bare) = hit.name.strip_prefix("kbanp.baselineadminnetworkpolicy.") {
            hit.name = bare.to_string();
            hit.kind = PolicyKind::BaselineAdminNetworkPolicy;
        }
    }
    if hit.kind == PolicyKind::Profile && hit.tier.is_empty() {
        hit.tier = PROFILE_TIER.to_string();
    }
    hit.trigger = hit.trigger.map(|t| Box::new(normalise_reported_hit(*t)));
    hit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(text: &str) -> String {
        let hit = parse_hit_string(text).unwrap();
        let target = hit.trigger.as_deref().unwrap_or(&hit);
        format!(
            "{}|{}|{}|{}/{}|{}|{}",
            hit.policy_index,
            hit.kind,
            hit.tier,
            target.namespace,
            target.name,
            hit.action,
            hit.rule_index
        )
    }

    // Syntaxes from calico.md 1.6 (goldmane/proto/methods.go at v3.31.7 and HEAD).
    #[test]
    fn every_name_syntax() {
        assert_eq!(
            short("0|tier1|ns1/tier1.policy1|deny|-1"),
            "0|EndOfTier|tier1|ns1/policy1|Deny|-1"
        );
        assert_eq!(
            short("1|__PROFILE__|__PROFILE__.kns.default|allow|0"),
            "1|Profile|__PROFILE__|/kns.default|Allow|0"
        );
        assert_eq!(
            short("1|default|namespace/staged:knp.default.name|deny|3"),
            "1|StagedKubernetesNetworkPolicy|default|namespace/name|Deny|3"
        );
        assert_eq!(
            short("0|kube-admin|kcnp:name|deny|1"),
            "0|ClusterNetworkPolicy|kube-admin|/name|Deny|1"
        );
        assert_eq!(
            short("1|tier|snp:namespace/name|deny|0"),
            "1|StagedNetworkPolicy|tier|namespace/name|Deny|0"
        );
        assert_eq!(
            short("1|__PROFILE__|pro:kns.svc|allow|0"),
            "1|Profile|__PROFILE__|/kns.svc|Allow|0"
        );
        assert_eq!(
            short("0|tier|np:namespace/tier.name|allow|1"),
            "0|CalicoNetworkPolicy|tier|namespace/tier.name|Allow|1"
        );
        assert_eq!(
            short("1|tier2|ns2/staged:tier1.policy1|deny|1"),
            "1|StagedNetworkPolicy|tier2|ns2/policy1|Deny|1"
        );
        assert_eq!(
            short("2|platform|platform.staged:allow-dns|pass|0"),
            "2|StagedGlobalNetworkPolicy|platform|/allow-dns|Pass|0"
        );
        assert_eq!(
            short("0|adminnetworkpolicy|kanp.adminnetworkpolicy.guard|pass|2"),
            "0|AdminNetworkPolicy|adminnetworkpolicy|/guard|Pass|2"
        );
        assert_eq!(
            short("0|default|policy-demo/default.access-nginx|allow"),
            "0|CalicoNetworkPolicy|default|policy-demo/access-nginx|Allow|-2"
        );
        assert_eq!(
            short("3|default|default.default-deny|deny|0"),
            "3|GlobalNetworkPolicy|default|/default-deny|Deny|0"
        );
    }

    #[test]
    fn malformed_strings_say_why() {
        assert!(parse_hit_string("0|t|x")
            .unwrap_err()
            .contains("does not have the form"));
        assert!(parse_hit_string("a|t|ns/t.p|allow|0")
            .unwrap_err()
            .contains("index"));
        assert!(parse_hit_string("0|t|ns/t.p|maybe|0")
            .unwrap_err()
            .contains("unknown action"));
        assert!(parse_hit_string("0|t|*|deny|0")
            .unwrap_err()
            .contains("unrecognised policy name"));
    }
}
