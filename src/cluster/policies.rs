//! The cluster's policies, live: Calico's tiers, (staged) network policies and network sets,
//! Kubernetes NetworkPolicies, the admin network policies where the cluster serves them,
//! Namespaces and Pods (named ports, service accounts, addresses). Each kind is listed and then
//! watched (kube-runtime's watcher, which resumes after a dropped connection and lists again after
//! 410 Gone, with backoff), and turned into a `PolicySet` each time they change. A change to a
//! policy or tier is reported as a `PolicyChange`: security controls must not change unnoticed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

use super::{connect, runtime, ClusterError, ClusterErrorKind, ClusterTarget};
use crate::ingest::Scope;
use crate::model::time::{format_rfc3339, unix_now};
use crate::policy::model::FROM_CLUSTER;
use crate::policy::{load_str, PolicySet};

/// A watched kind: API group and version, kind, plural, and whether it lives in namespaces.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    /// A policy or tier: its changes are alerts.
    alerts: bool,
}

const KINDS: &[Kind] = &[
    calico("Tier", "tiers"),
    calico("NetworkPolicy", "networkpolicies"),
    calico("GlobalNetworkPolicy", "globalnetworkpolicies"),
    calico("StagedNetworkPolicy", "stagednetworkpolicies"),
    calico("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies"),
    calico(
        "StagedKubernetesNetworkPolicy",
        "stagedkubernetesnetworkpolicies",
    ),
    Kind {
        alerts: false,
        ..calico("NetworkSet", "networksets")
    },
    Kind {
        alerts: false,
        ..calico("GlobalNetworkSet", "globalnetworksets")
    },
    Kind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        alerts: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        alerts: false,
    },
    // Kubernetes' cluster-wide policies, where the cluster serves them (each in a tier of its
    // own).
    admin("AdminNetworkPolicy", "adminnetworkpolicies", "v1alpha1"),
    admin(
        "BaselineAdminNetworkPolicy",
        "baselineadminnetworkpolicies",
        "v1alpha1",
    ),
    admin("ClusterNetworkPolicy", "clusternetworkpolicies", "v1alpha2"),
    // Named ports, service accounts and addresses: what rules name a pod by besides its labels.
    Kind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        alerts: false,
    },
];

const fn admin(kind: &'static str, plural: &'static str, version: &'static str) -> Kind {
    Kind {
        group: "policy.networking.k8s.io",
        version,
        kind,
        plural,
        alerts: true,
    }
}

const fn calico(kind: &'static str, plural: &'static str) -> Kind {
    Kind {
        group: "projectcalico.org",
        version: "v3",
        kind,
        plural,
        alerts: true,
    }
}

impl Kind {
    /// As kubectl names it: `networksets.projectcalico.org`, `namespaces`.
    fn qualified(&self) -> String {
        match self.group {
            "" => self.plural.to_string(),
            group => format!("{}.{group}", self.plural),
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: match self.group {
                "" => self.version.into(),
                group => format!("{group}/{}", self.version),
            },
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }
}

/// Long enough to list a large cluster's policies over a slow link.
const LIST_WITHIN: Duration = Duration::from_secs(20);

/// A policy or tier created, changed or deleted in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// `GlobalNetworkPolicy lockdown`, `NetworkPolicy shop/allow-cart`.
    pub what: String,
    pub tier: Option<String>,
    /// `created`, `changed` or `deleted`.
    pub how: &'static str,
    /// The field manager of the newest write (`kubectl-client-side-apply`, `argocd`, …).
    pub by: Option<String>,
    /// Unix seconds, when flowtrace saw it.
    pub at: i64,
    /// The object before and after, line by line (`- ` removed, `+ ` added, `  ` kept), as JSON
    /// without what the server adds.
    pub diff: Vec<String>,
}

impl fmt::Display for PolicyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = &format_rfc3339(self.at)[11..19];
        write!(f, "{time} {} ", self.what)?;
        if let Some(tier) = &self.tier {
            write!(f, "(tier {tier}) ")?;
        }
        f.write_str(self.how)?;
        match &self.by {
            Some(by) => write!(f, " by {by}"),
            None => Ok(()),
        }
    }
}

/// The cluster's policies as they are now.
pub struct PolicyUpdate {
    pub set: PolicySet,
    /// Kinds the user may not list (`networksets.projectcalico.org`): the set lacks them.
    pub forbidden: Vec<String>,
    /// Kinds that could not be read for another reason, each with why.
    pub unread: Vec<String>,
    /// Objects the loader refused: the set lacks them.
    pub problems: Vec<String>,
    /// What changed since the last update (nothing for the first).
    pub changes: Vec<PolicyChange>,
    /// The cluster serves Calico's policies (projectcalico.org/v3): without them, a set holds
    /// only Kubernetes policies and cannot stand for what Calico decides.
    pub calico: bool,
}

impl PolicyUpdate {
    /// Why this set cannot stand for what Calico decides, for a user who sees `scope`: a kind
    /// they may not read, or tiers they may not read, whose policies Calico's API server leaves
    /// out of what they list (calico.md 4.7). A policy of such a tier in the set shows that this
    /// cluster does not filter reads by tier (its CRD datastore); what is shown of it is still
    /// withheld. `None` when the set is whole.
    pub fn incomplete_for(&self, scope: &Scope) -> Option<String> {
        if !self.forbidden.is_empty() {
            return Some(format!(
                "you may not list and watch {} across the cluster",
                self.forbidden.join(", ")
            ));
        }
        if !self.unread.is_empty() {
            return Some(format!(
                "the cluster's policies could not all be read ({})",
                self.unread.join("; ")
            ));
        }
        let visibility = scope.visibility()?;
        let unreadable: Vec<&str> = self
            .set
            .tiers()
            .iter()
            .filter(|tier| tier.defined && !visibility.reads_tier(&tier.name))
            .map(|tier| tier.name.as_str())
            .collect();
        let unfiltered = self
            .set
            .policies()
            .iter()
            .any(|policy| unreadable.contains(&policy.tier.as_str()));
        (!unreadable.is_empty() && !unfiltered).then(|| {
            format!(
                "you may not read tier{} {}, whose policies Calico's API server leaves out of \
                 what you list",
                if unreadable.len() == 1 { "" } else { "s" },
                unreadable.join(", ")
            )
        })
    }

    /// The set, when it can stand for Calico's verdicts for a user who sees `scope`; else why
    /// not, and that flows are shown as Calico recorded them from now on.
    pub fn standing_for(self, scope: &Scope) -> Result<PolicySet, String> {
        match self.incomplete_for(scope) {
            None => Ok(self.set),
            Some(why) => Err(format!(
                "{why}: the cluster's policies may now lack some, so flows from now on are shown \
                 as Calico recorded them"
            )),
        }
    }
}

/// Policies followed in the cluster, on a thread of their own.
pub struct PolicyWatch {
    updates: mpsc::Receiver<PolicyUpdate>,
}

impl PolicyWatch {
    /// Starts following the target cluster's policies; returns once every kind was listed, with
    /// the first set, or why it could not be within `first_within`.
    pub fn start(
        target: &ClusterTarget,
        first_within: Duration,
    ) -> Result<(PolicyWatch, PolicyUpdate), String> {
        let (sender, updates) = mpsc::channel();
        let target = target.clone();
        std::thread::Builder::new()
            .name("policies".into())
            .spawn(move || {
                let result = runtime().map(|runtime| runtime.block_on(follow(&target, &sender)));
                if let Err(error) | Ok(Err(error)) = result {
                    tracing::warn!("the cluster's policies are not followed: {error}");
                }
            })
            .map_err(|e| e.to_string())?;
        let watch = PolicyWatch { updates };
        match watch.updates.recv_timeout(first_within) {
            Ok(first) => Ok((watch, first)),
            Err(_) => Err(format!(
                "the cluster's policies were not all listed within {}s",
                first_within.as_secs()
            )),
        }
    }

    /// The cluster's policies to decide flows with, when `wanted` (the flows come from the
    /// cluster and no manifests were given) and they can stand for Calico's verdicts for a user
    /// who sees `scope`, and what to warn the user of: why there is none (verdicts are then as
    /// Calico recorded them), what did not load.
    pub fn for_flows(
        target: &ClusterTarget,
        wanted: bool,
        scope: &Scope,
    ) -> (Option<(PolicyWatch, PolicySet)>, Vec<String>) {
        if !wanted {
            return (None, Vec::new());
        }
        let recorded = "verdicts are as Calico recorded them";
        match PolicyWatch::start(target, LIST_WITHIN) {
            Ok((_, first)) if !first.calico => (
                None,
                vec![format!(
                    "the cluster serves no Calico policies (projectcalico.org/v3) that flowtrace \
                     may read: {recorded}"
                )],
            ),
            Ok((watch, first)) => match first.incomplete_for(scope) {
                Some(why) => (None, vec![format!("{why}: {recorded}")]),
                None => (Some((watch, first.set)), first.problems),
            },
            Err(message) => (None, vec![format!("{message}: {recorded}")]),
        }
    }

    /// The cluster's policies as they are now, to compute with for a user who sees `scope`
    /// (`flowtrace fix` without manifests); why they cannot be used when they cannot: no cluster,
    /// no Calico, a set that may lack policies, or objects that did not load.
    pub fn current(target: &ClusterTarget, scope: &Scope) -> Result<PolicySet, String> {
        let (_, update) = PolicyWatch::start(target, LIST_WITHIN)?;
        if !update.calico {
            return Err(
                "the cluster serves no Calico policies (projectcalico.org/v3) that flowtrace \
                 may read"
                    .into(),
            );
        }
        if let Some(why) = update.incomplete_for(scope) {
            return Err(why);
        }
        if !update.problems.is_empty() {
            return Err(format!(
                "the cluster's policies did not all load: {}",
                update.problems.join("; ")
            ));
        }
        Ok(update.set)
    }

    /// The policies `flowtrace fix` proposes against without manifests: the cluster's as they
    /// are now, when one is configured (`configured`) and they are whole for the user; else why
    /// not, ready to print.
    pub fn to_fix(
        target: &ClusterTarget,
        configured: bool,
        scope: &Scope,
    ) -> Result<PolicySet, String> {
        if !configured {
            return Err(
                "no policies to propose against: give the manifests with -m, or \
                        configure a cluster (kubeconfig) to read its policies"
                    .into(),
            );
        }
        PolicyWatch::current(target, scope).map_err(|why| {
            format!(
                "no fix proposed from the cluster's policies: {why}; give the manifests with -m"
            )
        })
    }

    /// The next update, waiting for it; `None` once the watch has ended.
    pub fn next(&self) -> Option<PolicyUpdate> {
        self.updates.recv().ok()
    }

    /// The newest update since the last call, if any (older ones are folded into it: their
    /// changes are kept).
    pub fn latest(&self) -> Option<PolicyUpdate> {
        let mut latest: Option<PolicyUpdate> = None;
        for mut update in self.updates.try_iter() {
            if let Some(older) = latest.take() {
                let mut changes = older.changes;
                changes.append(&mut update.changes);
                update.changes = changes;
            }
            latest = Some(update);
        }
        latest
    }
}

/// What a kind's watcher reports to the one that builds the set.
enum Seen {
    /// The kind's objects after a (re)list.
    Listed(usize, BTreeMap<String, DynamicObject>),
    Applied(usize, DynamicObject),
    Deleted(usize, DynamicObject),
    /// The cluster now refuses the kind (403: the user's roles changed); its objects as last seen
    /// stay until it lists them again.
    Refused(usize),
}

/// Lists and watches every kind; sends an update once all are listed, then after every change
/// (a burst of changes within 100 ms is one update).
async fn follow(
    target: &ClusterTarget,
    updates: &mpsc::Sender<PolicyUpdate>,
) -> Result<(), String> {
    let client = connect(target).await.map_err(|e| e.to_string())?;
    let (seen, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (mut forbidden, mut unread) = (Vec::new(), Vec::new());
    let (mut waiting, mut calico) = (0, false);
    for (index, kind) in KINDS.iter().enumerate() {
        match served(&client, kind).await {
            Ok(true) => {
                waiting += 1;
                calico |= kind.group == "projectcalico.org";
                tokio::spawn(watch_kind(client.clone(), index, seen.clone()));
            }
            Ok(false) => {}
            Err(error) if error.kind == ClusterErrorKind::Forbidden => {
                forbidden.push(kind.qualified())
            }
            Err(error) => unread.push(error.to_string()),
        }
    }
    let mut followed = Followed::default();
    while let Some(event) = events.recv().await {
        followed.take(event);
        // What else came with it.
        let settle = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(settle);
        loop {
            tokio::select! {
                Some(event) = events.recv() => followed.take(event),
                _ = &mut settle => break,
            }
        }
        if followed.listed.iter().filter(|l| **l).count() < waiting {
            continue;
        }
        let (set, refused) = build(&followed.objects);
        let refused_kinds = KINDS.iter().zip(&followed.refused).filter(|(_, r)| **r);
        let update = PolicyUpdate {
            set,
            forbidden: (forbidden.iter().cloned())
                .chain(refused_kinds.map(|(kind, _)| kind.qualified()))
                .collect(),
            unread: unread.clone(),
            problems: refused,
            changes: std::mem::take(&mut followed.changes),
            calico,
        };
        if updates.send(update).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Whether the cluster serves the kind (discovery by asking): a 404 is a kind this cluster does
/// not have; a 403 is a kind the user may not read, reported.
async fn served(client: &Client, kind: &Kind) -> Result<bool, ClusterError> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &kind.resource());
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(e) => {
            let error = ClusterError::from_kube(kind.plural, &e);
            match error.kind {
                ClusterErrorKind::NotFound => Ok(false),
                _ => Err(error),
            }
        }
    }
}

async fn watch_kind(client: Client, index: usize, seen: tokio::sync::mpsc::UnboundedSender<Seen>) {
    let api = Api::<DynamicObject>::all_with(client, &KINDS[index].resource());
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer = BTreeMap::new();
    // Said once until listed again: the watcher retries a refused kind again and again.
    let mut refused = false;
    while let Some(event) = stream.next().await {
        let sent = match event {
            Ok(Event::Init) => {
                buffer.clear();
                Ok(())
            }
            Ok(Event::InitApply(object)) => {
                buffer.insert(key(&object), object);
                Ok(())
            }
            Ok(Event::InitDone) => {
                refused = false;
                seen.send(Seen::Listed(index, std::mem::take(&mut buffer)))
            }
            Ok(Event::Apply(object)) => seen.send(Seen::Applied(index, object)),
            Ok(Event::Delete(object)) => seen.send(Seen::Deleted(index, object)),
            // The watcher retries, with backoff; say why meanwhile, and a 403 at once.
            Err(error) => {
                tracing::warn!(kind = KINDS[index].plural, "watch: {error}");
                match forbidden(&error) && !refused {
                    true => {
                        refused = true;
                        seen.send(Seen::Refused(index))
                    }
                    false => Ok(()),
                }
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Whether the cluster refused the watch or its list (403).
fn forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => matches!(e, kube::Error::Api(s) if s.code == 403),
        watcher::Error::WatchError(status) => status.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}

fn key(object: &DynamicObject) -> String {
    format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or(""),
        object.metadata.name.as_deref().unwrap_or("")
    )
}

/// What the watchers have said so far, kind by kind.
struct Followed {
    objects: Vec<BTreeMap<String, DynamicObject>>,
    listed: Vec<bool>,
    /// Kinds the cluster refused since they were last listed.
    refused: Vec<bool>,
    /// Alerts not yet sent.
    changes: Vec<PolicyChange>,
}

impl Default for Followed {
    fn default() -> Followed {
        Followed {
            objects: vec![BTreeMap::new(); KINDS.len()],
            listed: vec![false; KINDS.len()],
            refused: vec![false; KINDS.len()],
            changes: Vec::new(),
        }
    }
}

impl Followed {
    fn take(&mut self, event: Seen) {
        match event {
            Seen::Listed(index, all) => {
                self.objects[index] = all;
                self.listed[index] = true;
                self.refused[index] = false;
            }
            Seen::Applied(index, object) => {
                let before = self.objects[index].insert(key(&object), object.clone());
                let how = match before {
                    Some(_) => "changed",
                    None => "created",
                };
                if KINDS[index].alerts {
                    self.changes
                        .push(change(index, before.as_ref(), &object, how));
                }
            }
            Seen::Deleted(index, object) => {
                let before = self.objects[index].remove(&key(&object));
                if KINDS[index].alerts {
                    self.changes
                        .push(change(index, before.as_ref(), &object, "deleted"));
                }
            }
            Seen::Refused(index) => self.refused[index] = true,
        }
    }
}

/// An object as people compare it: its spec and labels, not what the server keeps about it.
fn comparable(kind: &Kind, object: Option<&DynamicObject>) -> String {
    let Some(object) = object else {
        return String::new();
    };
    let mut value = manifest(kind, object);
    if let Some(metadata) = value["metadata"].as_object_mut() {
        metadata.remove("annotations");
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn change(
    index: usize,
    before: Option<&DynamicObject>,
    object: &DynamicObject,
    how: &'static str,
) -> PolicyChange {
    let kind = &KINDS[index];
    let name = key(object);
    let name = name.trim_start_matches('/');
    let spec_tier = object.data["spec"]["tier"].as_str();
    // The tiers Calico puts them in (policy/admin.rs).
    let tier = match (kind.kind, kind.group) {
        ("Tier", _) => None,
        ("AdminNetworkPolicy", _) => Some("adminnetworkpolicy"),
        ("BaselineAdminNetworkPolicy", _) => Some("baselineadminnetworkpolicy"),
        ("ClusterNetworkPolicy", _) if spec_tier == Some("Baseline") => Some("kube-baseline"),
        ("ClusterNetworkPolicy", _) => Some("kube-admin"),
        (_, "projectcalico.org") => Some(spec_tier.unwrap_or("default")),
        _ => Some("default"),
    }
    .map(str::to_string);
    let by = object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|entry| Some((entry.time.as_ref()?, entry.manager.clone()?)))
        .max_by_key(|(time, _)| time.0)
        .map(|(_, manager)| manager);
    let after = match how {
        "deleted" => None,
        _ => Some(object),
    };
    let (before, after) = (comparable(kind, before), comparable(kind, after));
    let diff = similar::TextDiff::from_lines(&before, &after)
        .iter_all_changes()
        .map(|line| {
            let sign = match line.tag() {
                similar::ChangeTag::Delete => "- ",
                similar::ChangeTag::Insert => "+ ",
                similar::ChangeTag::Equal => "  ",
            };
            format!("{sign}{}", line.value().trim_end_matches('\n'))
        })
        .collect();
    PolicyChange {
        what: format!("{} {name}", kind.kind),
        tier,
        how,
        by,
        at: unix_now(),
        diff,
    }
}

/// An object as a manifest would write it: without what the server adds (status, resource
/// version, managed fields, …).
fn manifest(kind: &Kind, object: &DynamicObject) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    value["apiVersion"] = kind.resource().api_version.into();
    value["kind"] = kind.kind.into();
    if kind.kind == "Pod" {
        // What a policy can name a pod by; the rest of a pod is large and changes often.
        let kept = |from: &serde_json::Value, fields: &[&str]| {
            let kept: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .filter(|field| !from[**field].is_null())
                .map(|field| (field.to_string(), from[*field].clone()))
                .collect();
            serde_json::Value::Object(kept)
        };
        let containers: Vec<serde_json::Value> = value["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|container| kept(container, &["name", "ports"]))
            .collect();
        let mut spec = kept(&value["spec"], &["serviceAccountName"]);
        spec["containers"] = containers.into();
        value["status"] = kept(&value["status"], &["podIP", "podIPs"]);
        value["spec"] = spec;
    } else if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = value["metadata"].as_object_mut() {
        metadata.retain(|field, _| {
            matches!(
                field.as_str(),
                "name" | "namespace" | "labels" | "annotations"
            )
        });
    }
    value
}

/// The set the objects make, loaded as manifests are; the objects the loader refused.
fn build(objects: &[BTreeMap<String, DynamicObject>]) -> (PolicySet, Vec<String>) {
    let mut text = String::new();
    for (index, kind) in KINDS.iter().enumerate() {
        for object in objects[index].values() {
            text.push_str("---\n");
            text.push_str(&manifest(kind, object).to_string());
            text.push('\n');
        }
    }
    let (set, report) = load_str(FROM_CLUSTER, &text);
    let refused = report.errors.iter().map(ToString::to_string).collect();
    (set, refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Visibility;

    const TIERS: &str = "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: application}
spec: {order: 300}
";
    const GUARDRAIL: &str = "---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: lockdown}
spec: {tier: security, selector: all(), types: [Ingress]}
";

    fn update(manifests: &str) -> PolicyUpdate {
        PolicyUpdate {
            set: load_str("cluster", manifests).0,
            forbidden: Vec::new(),
            unread: Vec::new(),
            problems: Vec::new(),
            changes: Vec::new(),
            calico: true,
        }
    }

    fn reading(tiers: &[&str]) -> Scope {
        Scope::of(Visibility {
            tiers: Some(tiers.iter().map(|t| t.to_string()).collect()),
            ..Visibility::everything()
        })
    }

    #[test]
    fn a_set_may_lack_the_policies_of_tiers_the_user_cannot_read_unless_it_shows_it_does_not() {
        let developer = reading(&["application", "default"]);
        // Calico's API server leaves unreadable tiers' policies out: an empty tier proves nothing.
        let filtered = update(TIERS);
        let why = filtered.incomplete_for(&developer).unwrap();
        assert!(why.contains("you may not read tier security"), "{why}");
        // A policy of such a tier was read: this cluster does not filter reads by tier.
        assert_eq!(
            update(&format!("{TIERS}{GUARDRAIL}")).incomplete_for(&developer),
            None
        );
        // Whoever reads every tier, or no scope at all, has the whole set.
        assert_eq!(
            filtered.incomplete_for(&reading(&["security", "application", "default"])),
            None
        );
        assert_eq!(filtered.incomplete_for(&Scope::unrestricted()), None);
        // A kind the user may not list leaves it out, whatever the tiers.
        let forbidden = PolicyUpdate {
            forbidden: vec!["networksets.projectcalico.org".into()],
            ..update(TIERS)
        };
        assert_eq!(
            forbidden.incomplete_for(&Scope::unrestricted()).as_deref(),
            Some("you may not list and watch networksets.projectcalico.org across the cluster")
        );
    }

    #[test]
    fn a_change_says_what_where_when_and_by_whom() {
        let change = PolicyChange {
            what: "GlobalNetworkPolicy lockdown".into(),
            tier: Some("security".into()),
            how: "changed",
            by: Some("kubectl-client-side-apply".into()),
            at: 1_795_400_400,
            diff: Vec::new(),
        };
        assert_eq!(
            change.to_string(),
            format!(
                "{} GlobalNetworkPolicy lockdown (tier security) changed by kubectl-client-side-apply",
                &format_rfc3339(1_795_400_400)[11..19]
            )
        );
    }

    #[test]
    fn a_changed_policy_comes_with_its_diff_without_what_the_server_keeps() {
        let policy = |action: &str, version: &str| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                "metadata": {"name": "lockdown", "resourceVersion": version,
                             "managedFields": [{"manager": "kubectl-edit", "operation": "Update",
                                                "time": "2026-12-05T02:10:00Z"}]},
                "spec": {"tier": "security", "selector": "all()", "ingress": [{"action": action}]}
            }))
            .unwrap()
        };
        let mut followed = Followed::default();
        followed.take(Seen::Applied(2, policy("Deny", "7")));
        followed.take(Seen::Applied(2, policy("Allow", "8")));
        let changes = followed.changes;
        let changed = &changes[1];
        assert_eq!(
            (changed.how, changed.tier.as_deref(), changed.by.as_deref()),
            ("changed", Some("security"), Some("kubectl-edit"))
        );
        let changed_lines: Vec<&str> = changed
            .diff
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("  "))
            .collect();
        assert_eq!(
            changed_lines,
            [
                "-         \"action\": \"Deny\"",
                "+         \"action\": \"Allow\""
            ],
            "only the rule changed, not the resource version: {:#?}",
            changed.diff
        );
        assert_eq!(changes[0].how, "created");
    }

    #[test]
    fn objects_as_the_server_sends_them_load_as_manifests() {
        let policy: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "lockdown", "resourceVersion": "7", "uid": "u",
                         "creationTimestamp": "2026-12-05T02:10:00Z",
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"tier": "default", "selector": "all()", "types": ["Ingress"],
                     "ingress": [{"action": "Deny"}]},
            "status": {}
        }))
        .unwrap();
        let mut objects = vec![BTreeMap::new(); KINDS.len()];
        objects[2].insert(key(&policy), policy);
        let (set, refused) = build(&objects);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(set.policies().len(), 1);
        assert_eq!(set.policies()[0].name, "lockdown");
        // Where it came from, as a trace says it: not a line of the text it was loaded from.
        assert_eq!(set.policies()[0].origin.to_string(), "the cluster");
    }
}
