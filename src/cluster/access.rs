//! What the user may see and do in the cluster, from Kubernetes RBAC and Calico's tier RBAC: who
//! they are (SelfSubjectReview), the namespaces where they may list pods (one cluster-wide check,
//! then a SelfSubjectRulesReview per namespace evaluated here, a SelfSubjectAccessReview where the
//! rules are incomplete), the tiers they may read and write (`get tiers/<t>` and the
//! `tier.<resource>` pseudo-resource with `<t>.*`, never the plain kinds, which Calico's
//! passthrough role grants to everyone), and where they may stage policies.

use std::collections::{BTreeMap, BTreeSet};

use futures::{stream, StreamExt};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, Client};
use serde::Serialize;

use super::{connect, runtime, ClusterError, ClusterErrorKind, ClusterTarget, ConnectError};
use crate::fix::WriteAccess;
use crate::ingest::{Scope, Visibility};

const CALICO: &str = "projectcalico.org";

/// Reviews asked at once: enough to check 500 namespaces in a second or two, few enough not to
/// trip the API server's rate limits.
const CONCURRENT_REVIEWS: usize = 16;

/// Tiers every Calico cluster has: checked by name when the user may not list tiers.
const WELL_KNOWN_TIERS: &[&str] = &[
    "default",
    "adminnetworkpolicy",
    "baselineadminnetworkpolicy",
    "kube-admin",
    "kube-baseline",
];

/// What the user may see and do; `flowtrace auth` prints it, the scope is made from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    pub user: String,
    pub groups: Vec<String>,
    /// May list pods in every namespace.
    pub all_namespaces: bool,
    /// Namespaces where the user may list pods (the flows they may see).
    pub namespaces: Vec<String>,
    /// Namespaces the user knows of but may not see, each with why.
    pub hidden_namespaces: Vec<Refusal>,
    pub tiers: TierAccess,
    /// Namespaces where the user may create staged policies.
    pub stage_namespaces: Vec<String>,
    pub host_endpoints: bool,
    pub global_network_sets: bool,
    /// Where the cluster keeps Calico's objects: whether reads are filtered by tier.
    pub datastore: Datastore,
    /// What could not be found out, and what was assumed (the safe answer).
    pub notes: Vec<String>,
}

/// Where a cluster keeps Calico's `projectcalico.org/v3` objects (calico.md 4.7, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Datastore {
    /// Calico's aggregated API server: reads are filtered by tier.
    ApiServer,
    /// Native v3 CRDs (the default for new 3.33 installs): reads are not filtered by tier; tier
    /// RBAC governs writes only.
    Crd,
    /// The cluster serves no `projectcalico.org/v3`.
    None,
    /// The user may not read the APIService that tells.
    Unknown,
}

impl Datastore {
    fn describe(self) -> &'static str {
        match self {
            Datastore::ApiServer => "Calico API server (reads are filtered by tier)",
            Datastore::Crd => {
                "CRDs (reads are not filtered by tier; tier RBAC governs writes only)"
            }
            Datastore::None => "none (the cluster serves no projectcalico.org/v3)",
            Datastore::Unknown => {
                "unknown (needs get apiservices/v3.projectcalico.org, which this cluster may lack)"
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TierAccess {
    /// The cluster serves Calico's tiers (projectcalico.org/v3); without them nothing is
    /// withheld by tier.
    pub served: bool,
    /// The user may list every tier; if not, only the well-known ones were checked, and policies
    /// in any other tier are withheld.
    pub listed: bool,
    /// The user may read every tier, including any created later (`get tiers` and `list
    /// tier.globalnetworkpolicies` and `tier.networkpolicies` for every name, everywhere).
    pub all: bool,
    pub readable: Vec<String>,
    pub writable: Vec<String>,
    /// Tiers where the user may create staged global policies (`create
    /// tier.stagedglobalnetworkpolicies` named `<t>.*`): a fix to a global policy is staged so.
    pub stage_global: Vec<String>,
    /// Tiers the user may not read, each with the grant that is missing.
    pub unreadable: Vec<Refusal>,
}

/// Something the user may not see, and the grant that would show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub name: String,
    pub needs: String,
}

impl Access {
    /// The scope flows are shown in.
    pub fn visibility(&self) -> Visibility {
        Visibility {
            namespaces: (!self.all_namespaces).then(|| self.namespaces.iter().cloned().collect()),
            tiers: (self.tiers.served && !self.tiers.all)
                .then(|| self.tiers.readable.iter().cloned().collect()),
            host_endpoints: self.host_endpoints,
            global_network_sets: self.global_network_sets,
        }
    }

    /// What to tell a user who asked for namespaces (`-n`) they will see no flow of: one they
    /// may not see, or one the cluster does not have.
    pub fn unseen(&self, asked: &[String]) -> Vec<String> {
        asked
            .iter()
            .filter(|namespace| !self.namespaces.contains(namespace))
            .map(
                |namespace| match self.hidden_namespaces.iter().find(|h| &h.name == namespace) {
                    Some(hidden) => format!(
                        "namespace {namespace} is withheld from you (needs {}): -n {namespace} \
                         matches no flow",
                        hidden.needs
                    ),
                    None => format!(
                        "the cluster has no namespace {namespace}: -n {namespace} matches no flow"
                    ),
                },
            )
            .collect()
    }

    /// One line for a status bar: who, and how much they see.
    pub fn summary(&self) -> String {
        let namespaces = match (self.all_namespaces, self.namespaces.as_slice()) {
            (true, _) => "every namespace".to_string(),
            (false, []) => "no namespace".to_string(),
            (false, [one]) => format!("namespace {one}"),
            (false, many) => format!("{} namespaces", many.len()),
        };
        let (readable, hidden) = (self.tiers.readable.len(), self.tiers.unreadable.len());
        let tiers = match (self.tiers.served, self.tiers.listed) {
            (false, _) => "every tier".to_string(),
            (true, true) if hidden == 0 => "every tier".to_string(),
            (true, true) => format!("{readable} of {} tiers", readable + hidden),
            (true, false) => format!(
                "{readable} tier{} (others withheld)",
                if readable == 1 { "" } else { "s" }
            ),
        };
        if self.all_namespaces && tiers == "every tier" {
            return format!("as {}, sees all", self.user);
        }
        format!("as {}: {namespaces}, {tiers}", self.user)
    }

    /// `flowtrace auth`'s text: each answer with why not where not.
    pub fn text(&self) -> String {
        let mut out = format!("user:       {}\n", self.user);
        if !self.groups.is_empty() {
            out += &format!("groups:     {}\n", self.groups.join(", "));
        }
        let namespaces = match self.all_namespaces {
            true => format!("every namespace ({})", self.namespaces.join(", ")),
            false => listed(&self.namespaces),
        };
        out += &format!("namespaces: {namespaces}\n");
        for hidden in &self.hidden_namespaces {
            out += &format!("  not {}: needs {}\n", hidden.name, hidden.needs);
        }
        out += &format!("tiers read: {}\n", listed(&self.tiers.readable));
        for hidden in &self.tiers.unreadable {
            out += &format!("  not {}: needs {}\n", hidden.name, hidden.needs);
        }
        out += &format!("tiers write: {}\n", listed(&self.tiers.writable));
        out += &format!("stage in:   {}\n", listed(&self.stage_namespaces));
        out += &format!(
            "stage global policies in tiers: {}\n",
            listed(&self.tiers.stage_global)
        );
        let shown = |may: bool, resource: &str| match may {
            true => "shown".to_string(),
            false => format!("withheld (needs list {resource} across the cluster)"),
        };
        out += &format!(
            "host endpoints: {}\n",
            shown(self.host_endpoints, "hostendpoints")
        );
        out += &format!(
            "global network sets: {}\n",
            shown(self.global_network_sets, "globalnetworksets")
        );
        out += &format!("datastore:  {}\n", self.datastore.describe());
        for note in &self.notes {
            out += &format!("note: {note}\n");
        }
        out
    }
}

fn listed(names: &[String]) -> String {
    match names {
        [] => "none".to_string(),
        names => names.join(", "),
    }
}

/// One access check: a verb on a resource, maybe by name, in a namespace or everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check<'a> {
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    name: Option<&'a str>,
}

/// Whether an RBAC rule (as a SelfSubjectRulesReview reports it) allows the check: verb, API group
/// and resource each listed or `*`; resource names, when listed, must include the name asked
/// for.
fn rule_allows(rule: &ResourceRule, check: &Check) -> bool {
    let listed = |values: &[String], wanted: &str| values.iter().any(|v| v == "*" || v == wanted);
    listed(&rule.verbs, check.verb)
        && listed(rule.api_groups.as_deref().unwrap_or_default(), check.group)
        && listed(
            rule.resources.as_deref().unwrap_or_default(),
            check.resource,
        )
        && match rule.resource_names.as_deref() {
            None | Some([]) => true,
            Some(names) => check
                .name
                .is_some_and(|name| names.iter().any(|n| n == name)),
        }
}

/// A namespace's rules, and whether the server said they may be incomplete.
struct NamespaceRules {
    rules: Vec<ResourceRule>,
    incomplete: bool,
}

struct Reviewer {
    client: Client,
}

impl Reviewer {
    /// Asks the API server (SelfSubjectAccessReview); `namespace` empty means every namespace.
    async fn can(&self, check: &Check<'_>, namespace: &str) -> Result<bool, ClusterError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(check.verb.into()),
                    group: Some(check.group.into()),
                    resource: Some(check.resource.into()),
                    name: check.name.map(Into::into),
                    namespace: (!namespace.is_empty()).then(|| namespace.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ClusterError::from_kube("a SelfSubjectAccessReview", &e))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    async fn rules(&self, namespace: &str) -> Result<NamespaceRules, ClusterError> {
        let review = SelfSubjectRulesReview {
            spec: SelfSubjectRulesReviewSpec {
                namespace: Some(namespace.into()),
            },
            ..SelfSubjectRulesReview::default()
        };
        let answer = Api::<SelfSubjectRulesReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                ClusterError::from_kube(format!("the SelfSubjectRulesReview of {namespace}"), &e)
            })?;
        let status = answer.status.unwrap_or_default();
        Ok(NamespaceRules {
            rules: status.resource_rules,
            incomplete: status.incomplete,
        })
    }

    /// The rules say yes, or (when they may be incomplete) the API server does.
    async fn can_in(
        &self,
        rules: &NamespaceRules,
        check: &Check<'_>,
        namespace: &str,
    ) -> Result<bool, ClusterError> {
        if rules.rules.iter().any(|rule| rule_allows(rule, check)) {
            return Ok(true);
        }
        match rules.incomplete {
            true => self.can(check, namespace).await,
            false => Ok(false),
        }
    }
}

/// The user's access in the target cluster, asked once at start; `None` when no cluster is
/// configured (then nothing is scoped). An error when one is configured but cannot say: a scope
/// is never guessed.
pub fn of_target(target: &ClusterTarget) -> Result<Option<Access>, String> {
    runtime()?.block_on(async {
        let client = match connect(target).await {
            Ok(client) => client,
            Err(ConnectError::NotConfigured(_)) => return Ok(None),
            Err(e) => return Err(format!("what you may see cannot be known: {e}")),
        };
        let mut asked = target.namespaces.clone();
        asked.push(client.default_namespace().to_string());
        access(&client, &asked)
            .await
            .map(Some)
            .map_err(|e| format!("what you may see cannot be known: {e}"))
    })
}

/// The scope a command shows flows in.
pub struct Scoped {
    pub scope: Scope,
    /// The tiers the user may write and where they may stage, when a cluster says: fixes are
    /// proposed there.
    pub writable: Option<WriteAccess>,
    /// Whose scope, for the status bar: `None` when no cluster is configured.
    pub summary: Option<String>,
    /// What the user should be told on stderr.
    pub note: Option<String>,
    /// What the user should be warned of: namespaces asked for that no flow will show.
    pub warnings: Vec<String>,
}

/// The scope of the configured cluster's user; everything when no cluster is configured. An
/// error when one is configured but cannot say (never guessed), except for the demo, whose flows
/// are no cluster's: they are then shown unscoped, with a note saying so.
pub fn scope_for(target: &ClusterTarget, demo: bool) -> Result<Scoped, String> {
    match of_target(target) {
        Ok(Some(access)) => {
            let summary = access.summary();
            Ok(Scoped {
                scope: Scope::of(access.visibility()),
                note: Some(format!(
                    "showing what you may see ({summary}); `flowtrace auth` says why"
                )),
                summary: Some(summary),
                warnings: access.unseen(&target.namespaces),
                writable: Some(WriteAccess {
                    tiers: access.tiers.writable,
                    stage_namespaces: access.stage_namespaces,
                    stage_global_tiers: access.tiers.stage_global,
                }),
            })
        }
        Ok(None) => Ok(Scoped {
            scope: Scope::unrestricted(),
            writable: None,
            summary: None,
            note: None,
            warnings: Vec::new(),
        }),
        Err(error) if demo => Ok(Scoped {
            scope: Scope::unrestricted(),
            writable: None,
            summary: None,
            note: Some(format!("{error}; the demo's flows are shown unscoped")),
            warnings: Vec::new(),
        }),
        Err(error) => Err(error),
    }
}

const LIST_PODS: Check = Check {
    verb: "list",
    group: "",
    resource: "pods",
    name: None,
};

/// What the user of `client` may see and do. The namespaces `asked` for are checked even when
/// the user may not list namespaces.
pub async fn access(client: &Client, asked: &[String]) -> Result<Access, ClusterError> {
    let reviewer = Reviewer {
        client: client.clone(),
    };
    let mut notes = Vec::new();
    let (user, groups) = whoami(client, &mut notes).await?;
    let all_namespaces = reviewer.can(&LIST_PODS, "").await?;
    let known = known_namespaces(client, asked, &mut notes).await?;
    // Every namespace's rules, a few at a time.
    let reviewed: Vec<(String, Result<NamespaceRules, ClusterError>)> = stream::iter(known)
        .map(|namespace: String| {
            let reviewer = &reviewer;
            async move {
                let rules = reviewer.rules(&namespace).await;
                (namespace, rules)
            }
        })
        .buffer_unordered(CONCURRENT_REVIEWS)
        .collect()
        .await;
    let mut rules = BTreeMap::new();
    for (namespace, reviewed) in reviewed {
        rules.insert(namespace, reviewed?);
    }
    let mut namespaces = Vec::new();
    let mut hidden_namespaces = Vec::new();
    let mut stage_namespaces = Vec::new();
    for (namespace, rules) in &rules {
        if all_namespaces || reviewer.can_in(rules, &LIST_PODS, namespace).await? {
            namespaces.push(namespace.clone());
        } else {
            hidden_namespaces.push(Refusal {
                name: namespace.clone(),
                needs: format!("list pods in {namespace}"),
            });
            continue;
        }
        if may_stage(&reviewer, rules, namespace).await? {
            stage_namespaces.push(namespace.clone());
        }
    }
    let tiers = tier_access(&reviewer, client, &rules, &namespaces, &mut notes).await?;
    let datastore = match tiers.served {
        true => datastore(client).await?,
        false => Datastore::None,
    };
    let cluster_wide = |resource| Check {
        verb: "list",
        group: CALICO,
        resource,
        name: None,
    };
    Ok(Access {
        user,
        groups,
        all_namespaces,
        namespaces,
        hidden_namespaces,
        tiers,
        stage_namespaces,
        host_endpoints: reviewer.can(&cluster_wide("hostendpoints"), "").await?,
        global_network_sets: reviewer.can(&cluster_wide("globalnetworksets"), "").await?,
        datastore,
        notes,
    })
}

/// The user and groups the cluster sees (SelfSubjectReview, Kubernetes 1.28+).
async fn whoami(
    client: &Client,
    notes: &mut Vec<String>,
) -> Result<(String, Vec<String>), ClusterError> {
    let asked = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await;
    match asked {
        Ok(review) => {
            let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
            Ok((
                info.username.unwrap_or_else(|| "(unnamed)".into()),
                info.groups.unwrap_or_default(),
            ))
        }
        Err(e) => {
            let error = ClusterError::from_kube("a SelfSubjectReview", &e);
            if error.kind == ClusterErrorKind::Unreachable {
                return Err(error);
            }
            notes.push(format!("who you are is not known: {error}"));
            Ok(("(unknown)".into(), Vec::new()))
        }
    }
}

/// The namespaces to check: every one, when the user may list them; else those asked for (the
/// context's, `-n`).
async fn known_namespaces(
    client: &Client,
    asked: &[String],
    notes: &mut Vec<String>,
) -> Result<BTreeSet<String>, ClusterError> {
    match Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect()),
        Err(e) => {
            let error = ClusterError::from_kube("namespaces", &e);
            if error.kind != ClusterErrorKind::Forbidden {
                return Err(error);
            }
            let checked: BTreeSet<String> = asked.iter().cloned().collect();
            let names: Vec<String> = checked.iter().cloned().collect();
            notes.push(format!(
                "you may not list namespaces: only {} checked (the context's namespace and \
                 those named with -n)",
                listed(&names)
            ));
            Ok(checked)
        }
    }
}

/// Whether the user may create a staged policy in `namespace` (a Calico staged network policy in
/// some tier, or a staged Kubernetes network policy).
async fn may_stage(
    reviewer: &Reviewer,
    rules: &NamespaceRules,
    namespace: &str,
) -> Result<bool, ClusterError> {
    let create = |resource| Check {
        verb: "create",
        group: CALICO,
        resource,
        name: None,
    };
    let by_tier = rules.rules.iter().any(|rule| {
        rule_allows(
            &ResourceRule {
                resource_names: None,
                ..rule.clone()
            },
            &create("tier.stagednetworkpolicies"),
        )
    });
    Ok(by_tier
        || reviewer
            .can_in(rules, &create("stagedkubernetesnetworkpolicies"), namespace)
            .await?)
}

/// Where a cluster that serves `projectcalico.org/v3` keeps Calico's objects: its APIService
/// names a service when an aggregated API server serves the group; the one Kubernetes makes for
/// CRDs names none. Without one to read, it is not known.
async fn datastore(client: &Client) -> Result<Datastore, ClusterError> {
    let resource = ApiResource {
        group: "apiregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiregistration.k8s.io/v1".into(),
        kind: "APIService".into(),
        plural: "apiservices".into(),
    };
    let asked = Api::<DynamicObject>::all_with(client.clone(), &resource)
        .get(&format!("v3.{CALICO}"))
        .await;
    match asked {
        Ok(service) => Ok(match service.data["spec"]["service"].is_object() {
            true => Datastore::ApiServer,
            false => Datastore::Crd,
        }),
        Err(e) => {
            let error = ClusterError::from_kube("the APIService of projectcalico.org/v3", &e);
            match error.kind {
                ClusterErrorKind::Unreachable | ClusterErrorKind::Unauthorized => Err(error),
                _ => Ok(Datastore::Unknown),
            }
        }
    }
}

fn tier_resource() -> ApiResource {
    ApiResource {
        group: CALICO.into(),
        version: "v3".into(),
        api_version: format!("{CALICO}/v3"),
        kind: "Tier".into(),
        plural: "tiers".into(),
    }
}

/// The tiers the user may read and write: `get tiers/<t>`, and the verb on
/// `tier.globalnetworkpolicies` everywhere or `tier.networkpolicies` in a namespace they see,
/// named `<t>.*`.
async fn tier_access(
    reviewer: &Reviewer,
    client: &Client,
    rules: &BTreeMap<String, NamespaceRules>,
    visible: &[String],
    notes: &mut Vec<String>,
) -> Result<TierAccess, ClusterError> {
    let mut access = TierAccess {
        served: true,
        listed: true,
        ..TierAccess::default()
    };
    let every = |resource| Check {
        verb: if resource == "tiers" { "get" } else { "list" },
        group: CALICO,
        resource,
        name: None,
    };
    access.all = reviewer.can(&every("tiers"), "").await?
        && reviewer
            .can(&every("tier.globalnetworkpolicies"), "")
            .await?
        && reviewer.can(&every("tier.networkpolicies"), "").await?;
    let tiers: Vec<String> = match Api::<DynamicObject>::all_with(client.clone(), &tier_resource())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|tier| tier.metadata.name)
            .collect(),
        Err(e) => {
            let error = ClusterError::from_kube("tiers", &e);
            match error.kind {
                ClusterErrorKind::Forbidden => {
                    notes.push(
                        "you may not list tiers: the well-known ones and those your roles name \
                         were checked; policies in any other tier are withheld"
                            .into(),
                    );
                    access.listed = false;
                    tiers_named(rules)
                }
                ClusterErrorKind::NotFound => {
                    notes.push(
                        "the cluster serves no Calico tiers (projectcalico.org/v3): nothing is \
                         withheld by tier"
                            .into(),
                    );
                    access.served = false;
                    return Ok(access);
                }
                _ => return Err(error),
            }
        }
    };
    for tier in tiers {
        let all = format!("{tier}.*");
        let get = Check {
            verb: "get",
            group: CALICO,
            resource: "tiers",
            name: Some(&tier),
        };
        let on_policies = |verb| {
            [
                Check {
                    verb,
                    group: CALICO,
                    resource: "tier.globalnetworkpolicies",
                    name: Some(&all),
                },
                Check {
                    verb,
                    group: CALICO,
                    resource: "tier.networkpolicies",
                    name: Some(&all),
                },
            ]
        };
        let may_get = reviewer.can(&get, "").await?;
        let read = may_get && may_any(reviewer, rules, visible, &on_policies("list")).await?;
        let write = may_get && may_any(reviewer, rules, visible, &on_policies("create")).await?;
        if read {
            access.readable.push(tier.clone());
        } else {
            access.unreadable.push(Refusal {
                needs: match may_get {
                    false => format!("get tiers/{tier}"),
                    true => format!("list tier.networkpolicies named {all}"),
                },
                name: tier.clone(),
            });
        }
        let stage_global = Check {
            verb: "create",
            group: CALICO,
            resource: "tier.stagedglobalnetworkpolicies",
            name: Some(&all),
        };
        if may_get && reviewer.can(&stage_global, "").await? {
            access.stage_global.push(tier.clone());
        }
        if write {
            access.writable.push(tier);
        }
    }
    Ok(access)
}

/// The tiers worth checking when the user may not list them: the well-known ones, and those their
/// rules name (`get tiers` named `<t>`, or `tier.<kind>` named `<t>.*`).
fn tiers_named(rules: &BTreeMap<String, NamespaceRules>) -> Vec<String> {
    let mut tiers: BTreeSet<String> = WELL_KNOWN_TIERS.iter().map(|t| t.to_string()).collect();
    for rule in rules.values().flat_map(|r| &r.rules) {
        let resources = rule.resources.as_deref().unwrap_or_default();
        for name in rule.resource_names.iter().flatten() {
            if resources.iter().any(|r| r == "tiers") {
                tiers.insert(name.clone());
            }
            if resources.iter().any(|r| r.starts_with("tier.")) {
                if let Some(tier) = name.strip_suffix(".*") {
                    tiers.insert(tier.to_string());
                }
            }
        }
    }
    tiers.into_iter().collect()
}

/// Whether any check is allowed everywhere, or in one of the visible namespaces.
async fn may_any(
    reviewer: &Reviewer,
    rules: &BTreeMap<String, NamespaceRules>,
    visible: &[String],
    checks: &[Check<'_>],
) -> Result<bool, ClusterError> {
    for check in checks {
        if reviewer.can(check, "").await? {
            return Ok(true);
        }
        for namespace in visible {
            if let Some(rules) = rules.get(namespace) {
                if reviewer.can_in(rules, check, namespace).await? {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> ResourceRule {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ResourceRule {
            verbs: owned(verbs),
            api_groups: Some(owned(groups)),
            resources: Some(owned(resources)),
            resource_names: (!names.is_empty()).then(|| owned(names)),
        }
    }

    #[test]
    fn rules_match_as_kubernetes_rbac_matches_them() {
        let pods = Check {
            verb: "list",
            group: "",
            resource: "pods",
            name: None,
        };
        assert!(rule_allows(&rule(&["list"], &[""], &["pods"], &[]), &pods));
        assert!(rule_allows(&rule(&["*"], &["*"], &["*"], &[]), &pods));
        assert!(!rule_allows(&rule(&["get"], &[""], &["pods"], &[]), &pods));
        assert!(!rule_allows(
            &rule(&["list"], &["apps"], &["pods"], &[]),
            &pods
        ));
        // Resource names: only the names listed, and none when the check names none.
        let tier = |name| Check {
            verb: "list",
            group: CALICO,
            resource: "tier.networkpolicies",
            name,
        };
        let application_only = rule(
            &["list"],
            &[CALICO],
            &["tier.networkpolicies"],
            &["application.*"],
        );
        assert!(rule_allows(&application_only, &tier(Some("application.*"))));
        assert!(!rule_allows(&application_only, &tier(Some("security.*"))));
        assert!(!rule_allows(&application_only, &tier(None)));
        // The plain kind is not the tier pseudo-resource.
        assert!(!rule_allows(
            &rule(&["*"], &[CALICO], &["networkpolicies"], &[]),
            &tier(Some("security.*"))
        ));
    }

    #[test]
    fn tiers_a_user_may_not_list_are_found_in_the_rules_that_name_them() {
        let rules = NamespaceRules {
            rules: vec![
                rule(&["get"], &[CALICO], &["tiers"], &["application"]),
                rule(
                    &["list"],
                    &[CALICO],
                    &["tier.networkpolicies"],
                    &["payments.*"],
                ),
                rule(&["list"], &[""], &["pods"], &["not-a-tier"]),
            ],
            incomplete: false,
        };
        let tiers = tiers_named(&[("shop".to_string(), rules)].into());
        for wanted in ["application", "payments", "default", "kube-admin"] {
            assert!(tiers.iter().any(|t| t == wanted), "{wanted}: {tiers:?}");
        }
        assert!(!tiers.iter().any(|t| t == "not-a-tier"), "{tiers:?}");
    }

    #[test]
    fn the_visibility_follows_the_access() {
        let access = Access {
            user: "alice".into(),
            groups: vec![],
            all_namespaces: false,
            namespaces: vec!["shop".into()],
            hidden_namespaces: vec![],
            tiers: TierAccess {
                served: true,
                listed: true,
                all: false,
                readable: vec!["application".into()],
                writable: vec!["application".into()],
                stage_global: Vec::new(),
                unreadable: vec![Refusal {
                    name: "security".into(),
                    needs: "get tiers/security".into(),
                }],
            },
            stage_namespaces: vec!["shop".into()],
            host_endpoints: false,
            global_network_sets: false,
            datastore: Datastore::ApiServer,
            notes: vec![],
        };
        let visibility = access.visibility();
        assert!(visibility.sees_namespace("shop") && !visibility.sees_namespace("payments"));
        assert!(visibility.reads_tier("application") && !visibility.reads_tier("security"));
        assert_eq!(access.summary(), "as alice: namespace shop, 1 of 2 tiers");
    }
}
