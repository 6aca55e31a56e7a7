//! What each user may see, as RBAC on the (fake) cluster says: three personas against one
//! cluster and one flow file, through `auth`, `tail` and `eval` as each would run them (a
//! kubeconfig of their own).
//! - admin: may do anything;
//! - alice, a developer who owns namespace `shop` and may write tier `application`;
//! - bob, a security engineer who sees every namespace, reads every tier and writes `security`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use support::kube_api::{FakeApiServer, Grant};

/// shop/frontend → payments/api, denied in tier security; shop/frontend → shop/cart and
/// payments/api → payments/db, allowed in tier application. Each as its destination reported it.
const FLOWS: &str = r#"{"start_time":"2026-12-05T02:10:00Z","end_time":"2026-12-05T02:10:15Z","action":"Deny","source_name":"frontend-7d4b9c-*","source_namespace":"shop","source_labels":"app=frontend","dest_name":"api-5f6d7-*","dest_namespace":"payments","dest_labels":"app=api","protocol":"tcp","dest_port":8080,"reporter":"Dst","policies":{"enforced":[{"kind":"GlobalNetworkPolicy","name":"lockdown","namespace":"","tier":"security","action":"Deny","policy_index":0,"rule_index":0,"trigger":null}],"pending":[]}}
{"start_time":"2026-12-05T02:10:00Z","end_time":"2026-12-05T02:10:15Z","action":"Allow","source_name":"frontend-7d4b9c-*","source_namespace":"shop","source_labels":"app=frontend","dest_name":"cart-6c5d4-*","dest_namespace":"shop","dest_labels":"app=cart","protocol":"tcp","dest_port":8080,"reporter":"Dst","policies":{"enforced":[{"kind":"EndOfTier","name":"","namespace":"","tier":"security","action":"Pass","policy_index":0,"rule_index":-1,"trigger":{"kind":"GlobalNetworkPolicy","name":"lockdown","namespace":"","tier":"security","action":"Pass","policy_index":0,"rule_index":-1,"trigger":null}},{"kind":"CalicoNetworkPolicy","name":"allow-cart","namespace":"shop","tier":"application","action":"Allow","policy_index":1,"rule_index":0,"trigger":null}],"pending":[]}}
{"start_time":"2026-12-05T02:10:00Z","end_time":"2026-12-05T02:10:15Z","action":"Allow","source_name":"api-5f6d7-*","source_namespace":"payments","source_labels":"app=api","dest_name":"db-0","dest_namespace":"payments","dest_labels":"app=db","protocol":"tcp","dest_port":5432,"reporter":"Dst","policies":{"enforced":[{"kind":"CalicoNetworkPolicy","name":"allow-db","namespace":"payments","tier":"application","action":"Allow","policy_index":1,"rule_index":0,"trigger":null}],"pending":[]}}
"#;

/// The same decisions as manifests, for `eval`.
const MANIFESTS: &str = "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: application}
spec: {order: 300}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: lockdown}
spec:
  tier: security
  order: 10
  selector: app in {'api', 'cart', 'db'}
  types: [Ingress]
  ingress:
  - action: Deny
    source: {namespaceSelector: projectcalico.org/name == 'shop'}
    destination: {namespaceSelector: projectcalico.org/name == 'payments'}
  - action: Pass
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-cart, namespace: shop}
spec:
  tier: application
  order: 10
  selector: app == 'cart'
  types: [Ingress]
  ingress:
  - action: Allow
    source: {selector: app == 'frontend'}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-db, namespace: payments}
spec:
  tier: application
  order: 10
  selector: app == 'db'
  types: [Ingress]
  ingress:
  - action: Allow
    source: {selector: app == 'api'}
";

/// The cluster: three namespaces, four tiers, three personas and their grants.
async fn cluster() -> FakeApiServer {
    let api = FakeApiServer::start().await;
    for namespace in ["shop", "payments", "default"] {
        api.add_namespace(namespace);
    }
    for tier in ["security", "platform", "application", "default"] {
        api.add_tier(tier);
    }
    api.add_personas("shop");
    api
}

/// `flowtrace ARGS` as `user` (their own kubeconfig, its context's namespace `namespace`).
async fn flowtrace(
    api: &FakeApiServer,
    home: &Path,
    user: &str,
    namespace: &str,
    args: &[String],
) -> Output {
    let kubeconfig = api.kubeconfig_as(home, user, namespace);
    let mut command = Command::cargo_bin("flowtrace").unwrap();
    command
        .args(args)
        .env("HOME", home)
        .env("KUBECONFIG", &kubeconfig);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn files(home: &Path) -> (PathBuf, PathBuf) {
    let flows = home.join("flows.jsonl");
    std::fs::write(&flows, FLOWS).unwrap();
    let manifests = home.join("policies.yaml");
    std::fs::write(&manifests, MANIFESTS).unwrap();
    (flows, manifests)
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_says_what_each_persona_may_see_and_do() {
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    let json = |output: &Output| serde_json::from_str::<Value>(&succeeded(output)).unwrap();
    let auth = |user: &'static str| {
        let args = ["auth".to_string(), "-o".into(), "json".into()];
        let (api, home) = (&api, home.path());
        async move { flowtrace(api, home, user, "default", &args).await }
    };

    let admin = json(&auth("admin").await);
    assert_eq!(admin["user"], "admin");
    assert_eq!(admin["all_namespaces"], true);
    assert_eq!(
        strings(&admin["namespaces"]),
        ["default", "payments", "shop"]
    );
    assert_eq!(
        strings(&admin["tiers"]["readable"]),
        ["application", "default", "platform", "security"]
    );
    assert_eq!(
        strings(&admin["tiers"]["writable"]),
        strings(&admin["tiers"]["readable"])
    );
    assert_eq!(
        strings(&admin["stage_namespaces"]),
        ["default", "payments", "shop"]
    );

    // Alice may not list namespaces: the context's is checked, and the note says so. Her
    // context names shop.
    let alice = json(
        &flowtrace(
            &api,
            home.path(),
            "alice",
            "shop",
            &["auth".into(), "-o".into(), "json".into()],
        )
        .await,
    );
    assert_eq!(alice["user"], "alice");
    assert!(strings(&alice["groups"]).contains(&"shop-devs"));
    assert_eq!(alice["all_namespaces"], false);
    assert_eq!(strings(&alice["namespaces"]), ["shop"]);
    assert_eq!(
        strings(&alice["tiers"]["readable"]),
        ["application", "default"]
    );
    assert_eq!(
        strings(&alice["tiers"]["writable"]),
        ["application", "default"]
    );
    assert_eq!(strings(&alice["stage_namespaces"]), ["shop"]);
    let refused: Vec<(&str, &str)> = alice["tiers"]["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["needs"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [
            ("platform", "get tiers/platform"),
            ("security", "get tiers/security")
        ],
        "the passthrough role on the plain kinds does not make a tier readable"
    );
    assert!(
        alice["notes"]
            .to_string()
            .contains("you may not list namespaces"),
        "{alice}"
    );

    let bob = json(&auth("bob").await);
    assert_eq!(bob["all_namespaces"], true);
    assert_eq!(
        strings(&bob["tiers"]["readable"]),
        ["application", "default", "platform", "security"]
    );
    assert_eq!(strings(&bob["tiers"]["writable"]), ["security"]);
    assert!(strings(&bob["stage_namespaces"]).is_empty());
    assert_eq!(strings(&bob["tiers"]["stage_global"]), ["security"]);
    assert_eq!(
        strings(&admin["tiers"]["stage_global"]),
        strings(&admin["tiers"]["readable"])
    );
    assert!(strings(&alice["tiers"]["stage_global"]).is_empty());

    // The text says the same, with why not where not.
    let text = succeeded(&flowtrace(&api, home.path(), "alice", "shop", &["auth".into()]).await);
    assert!(text.contains("user:       alice"), "{text}");
    assert!(text.contains("namespaces: shop"), "{text}");
    assert!(
        text.contains("not security: needs get tiers/security"),
        "{text}"
    );
    assert!(
        text.contains("host endpoints: withheld (needs list hostendpoints across the cluster)"),
        "{text}"
    );

    // -n names a namespace to check too (alice may not list them); one she may not see, or
    // that does not exist, is said on stderr, in auth as in tail.
    let args = |command: &str, namespace: &str| -> Vec<String> {
        let mut args = vec![command.to_string(), "-n".into(), namespace.into()];
        if command == "tail" {
            args.extend([
                "--source".into(),
                "demo".into(),
                "--since".into(),
                "1m".into(),
            ]);
        }
        args
    };
    let output = flowtrace(
        &api,
        home.path(),
        "alice",
        "shop",
        &args("auth", "payments"),
    )
    .await;
    let (text, stderr) = (succeeded(&output), String::from_utf8_lossy(&output.stderr));
    assert!(
        text.contains("not payments: needs list pods in payments"),
        "{text}"
    );
    assert!(
        text.contains("only payments, shop checked"),
        "both were checked: {text}"
    );
    assert!(
        stderr.contains("namespace payments is withheld from you (needs list pods in payments)"),
        "{stderr}"
    );
    let output = flowtrace(
        &api,
        home.path(),
        "alice",
        "shop",
        &args("tail", "payments"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    succeeded(&output);
    assert!(
        stderr.contains("-n payments matches no flow")
            && stderr.contains("no flow matched in namespace payments"),
        "{stderr}"
    );
    let output = flowtrace(
        &api,
        home.path(),
        "admin",
        "default",
        &args("tail", "paymnts"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    succeeded(&output);
    assert!(
        stderr.contains("the cluster has no namespace paymnts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_and_eval_show_each_persona_only_what_they_may_see() {
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    let (flows, manifests) = files(home.path());
    let tail = vec![
        "tail".to_string(),
        "--source".into(),
        format!("file:{}", flows.display()),
        "-o".into(),
        "json".into(),
    ];
    let eval = vec![
        "eval".to_string(),
        "-m".into(),
        manifests.display().to_string(),
        "--flows".into(),
        flows.display().to_string(),
    ];
    for command in [&tail, &eval] {
        // The admin and the security engineer see every flow, every name.
        for user in ["admin", "bob"] {
            let stdout = succeeded(&flowtrace(&api, home.path(), user, "default", command).await);
            let seen = records(&stdout);
            assert_eq!(seen.len(), 3, "{user} {command:?}: {stdout}");
            assert!(
                stdout.contains("lockdown") && stdout.contains("db-0"),
                "{user}: {stdout}"
            );
            assert!(!stdout.contains("withheld"), "{user}: {stdout}");
        }
        // Alice sees the flows that touch shop; the payments side and the security tier's
        // policy are withheld, with the grant that would show them.
        let output = flowtrace(&api, home.path(), "alice", "shop", command).await;
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let stdout = succeeded(&output);
        assert!(
            stderr.contains("showing what you may see (as alice: namespace shop, 2 of 4 tiers)"),
            "{stderr}"
        );
        let seen = records(&stdout);
        assert_eq!(seen.len(), 2, "{command:?}: {stdout}");
        let denied = &seen[0];
        assert_eq!(denied["source_namespace"], "shop");
        assert_eq!(denied["dest_name"], "withheld: needs list pods in payments");
        let decided = denied["policies"]["enforced"][0].clone();
        assert_eq!(decided["tier"], "security", "{denied}");
        assert_eq!(decided["action"], "Deny", "{denied}");
        assert_eq!(
            decided["name"], "withheld: cannot read tier security",
            "{denied}"
        );
        assert_eq!(seen[1]["dest_namespace"], "shop");
        assert_eq!(
            seen[1]["policies"]["enforced"][1]["name"], "allow-cart",
            "{}",
            seen[1]
        );
        // The marker names the namespace (what to ask for), never what is in it.
        for secret in [
            "lockdown",
            "db-0",
            "api-5f6d7",
            "app=api",
            "\"dest_namespace\":\"payments",
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{command:?}: {secret:?} leaked: {stdout}{stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_cluster_that_cannot_say_is_not_guessed() {
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    let (flows, _) = files(home.path());
    // A token the cluster does not know: no flows, an error that says why.
    let kubeconfig = api.kubeconfig_as(home.path(), "mallory", "default");
    let output = Command::cargo_bin("flowtrace")
        .unwrap()
        .args(["tail", "--source", &format!("file:{}", flows.display())])
        .env("HOME", home.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("what you may see cannot be known"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_walks_every_tier_but_names_only_what_the_user_may_read() {
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    let (flows, manifests) = files(home.path());
    let explain = |line: &str| {
        vec![
            "explain".to_string(),
            "-m".into(),
            manifests.display().to_string(),
            "--flows".into(),
            flows.display().to_string(),
            "--line".into(),
            line.into(),
        ]
    };
    let admin = succeeded(&flowtrace(&api, home.path(), "admin", "default", &explain("1")).await);
    assert!(
        admin.contains("lockdown") && admin.contains("payments/api-5f6d7-*"),
        "{admin}"
    );

    let alice = succeeded(&flowtrace(&api, home.path(), "alice", "shop", &explain("1")).await);
    assert!(
        alice.contains("withheld: cannot read tier security"),
        "{alice}"
    );
    assert!(
        alice.contains("withheld: needs list pods in payments"),
        "{alice}"
    );
    assert!(alice.contains("Deny"), "the verdict stays: {alice}");
    for secret in ["lockdown", "api-5f6d7", "app=api", "\"api\"", "allow-db"] {
        assert!(!alice.contains(secret), "{secret:?} leaked: {alice}");
    }
    // A flow inside payments is not hers to see at all.
    let output = flowtrace(&api, home.path(), "alice", "shop", &explain("3")).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("neither end of the flow is in a namespace you may see"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// A guardrail of the security team's: nothing from `legacy` reaches cart.
const QUARANTINE: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quarantine}
spec:
  tier: security
  order: 5
  selector: app == 'cart'
  types: [Ingress]
  ingress:
  - action: Deny
    source: {selector: app == 'legacy'}
";

/// The fixture's manifests and the guardrail, held by the cluster, and cart's pod, which names
/// its port.
fn apply_policies(api: &FakeApiServer) {
    api.add_pod(
        "shop",
        "cart-6c5d4-x7k2p",
        &[("app", "cart")],
        &[("http", 8080)],
        true,
    );
    for text in [MANIFESTS, QUARANTINE] {
        for document in serde_norway::Deserializer::from_str(text) {
            let object: Value = serde::Deserialize::deserialize(document).unwrap();
            api.apply(object);
        }
    }
}

/// A flow inside shop, to cart, from `app` (reported by cart's side).
fn shop_flow(app: &str) -> String {
    serde_json::json!({
        "start_time": "2026-12-05T02:10:00Z", "end_time": "2026-12-05T02:10:15Z",
        "action": "Deny", "reporter": "Dst", "protocol": "tcp", "dest_port": 8080,
        "source_name": format!("{app}-5c4d-*"), "source_namespace": "shop",
        "source_labels": format!("app={app}"),
        "dest_name": "cart-6c5d4-*", "dest_namespace": "shop", "dest_labels": "app=cart",
        "policies": {"enforced": [], "pending": []}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_proposes_against_the_clusters_policies_in_the_tiers_rbac_lets_you_write() {
    let api = cluster().await;
    apply_policies(&api);
    let home = tempfile::tempdir().unwrap();
    let (flows, _) = files(home.path());
    let fix = |flow: String, output: &str| {
        vec![
            "fix".to_string(),
            "--flow".into(),
            flow,
            "-o".into(),
            output.into(),
        ]
    };

    // Bob reads every policy object: denied at the end of tier application, which he may not
    // write, the flow is an exception to ask for; denied in tier security, which he writes, a rule
    // in a staged copy of the guardrail, proven against every policy of the cluster.
    let output = flowtrace(
        &api,
        home.path(),
        "bob",
        "default",
        &fix(shop_flow("checkout"), "text"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let text = succeeded(&output);
    assert!(
        stderr.contains("proposing against the cluster's 4 policies"),
        "{stderr}"
    );
    assert!(
        text.contains("Tier application is not one you may write (yours: security)"),
        "{text}"
    );
    let output = flowtrace(
        &api,
        home.path(),
        "bob",
        "default",
        &fix(shop_flow("legacy"), "yaml"),
    )
    .await;
    let yaml = succeeded(&output);
    assert!(yaml.contains("kind: StagedGlobalNetworkPolicy"), "{yaml}");
    assert!(
        yaml.contains("name: quarantine") && yaml.contains("tier: security"),
        "{yaml}"
    );
    assert!(yaml.contains("app == 'legacy'"), "{yaml}");

    // The admin may write application: the rule names the port as cart's pod does.
    let output = flowtrace(
        &api,
        home.path(),
        "admin",
        "default",
        &fix(shop_flow("checkout"), "yaml"),
    )
    .await;
    let yaml = succeeded(&output);
    assert!(
        yaml.contains("name: allow-cart") && yaml.contains("- http"),
        "{yaml}"
    );

    // A new policy is named as the cluster's Calico version names them: with no version to read,
    // as up to 3.31 (`<tier>.<name>`), said; with the cluster's ClusterInformation, as it says.
    // Their manifests' `metadata.name`, in the candidates' YAML documents.
    let new_policies = |output: &Output| -> Vec<String> {
        let stdout = succeeded(output);
        stdout
            .split("\\n  name: ")
            .skip(1)
            .filter_map(|rest| rest.split("\\n").next())
            .filter(|name| name.contains("allow-from"))
            .map(str::to_string)
            .collect()
    };
    let as_admin = fix(shop_flow("checkout"), "json");
    let output = flowtrace(&api, home.path(), "admin", "default", &as_admin).await;
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the cluster's Calico version is not known"),
        "{output:?}"
    );
    assert!(
        new_policies(&output)[0].starts_with("application.allow-from"),
        "{:?}",
        new_policies(&output)
    );
    api.set_calico_version("v3.32.1");
    let output = flowtrace(&api, home.path(), "admin", "default", &as_admin).await;
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("naming policies as Calico v3.32.1, the cluster's, does"),
        "{output:?}"
    );
    assert!(
        new_policies(&output)[0].starts_with("allow-from"),
        "{output:?}"
    );

    // An AdminNetworkPolicy decides in its own tier (order 1000), for a pod no Calico policy
    // selects.
    api.apply(serde_json::json!({
        "apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
        "metadata": {"name": "no-scanners"},
        "spec": {"priority": 10,
                 "subject": {"pods": {"namespaceSelector": {},
                                      "podSelector": {"matchLabels": {"app": "web"}}}},
                 "ingress": [{"name": "deny-scanners", "action": "Deny",
                              "from": [{"pods": {"namespaceSelector": {},
                                                 "podSelector": {"matchLabels": {"app": "scanner"}}}}]}]}
    }));
    let to_web = shop_flow("scanner").replace("cart", "web");
    let output = flowtrace(&api, home.path(), "bob", "default", &fix(to_web, "json")).await;
    let proposal: Value = serde_json::from_str(&succeeded(&output)).unwrap();
    let denial = &proposal["sides"][0]["denial"];
    assert_eq!(denial["tier"], "adminnetworkpolicy", "{proposal}");
    assert!(
        denial["describe"].as_str().unwrap().contains("no-scanners"),
        "{proposal}"
    );

    // Alice may not list every kind that decides a flow (namespaces, sets, Kubernetes policies):
    // a fix proven without them could be wrong, so none is proposed from the cluster.
    let output = flowtrace(
        &api,
        home.path(),
        "alice",
        "shop",
        &fix(shop_flow("checkout"), "yaml"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no fix proposed from the cluster's policies: you may not list and watch ")
            && stderr.contains("namespaces")
            && stderr.contains("give the manifests with -m"),
        "{stderr}"
    );

    // With the manifests, the fix is hers where RBAC lets her write: tier application.
    let manifests = home.path().join("cluster.yaml");
    std::fs::write(&manifests, format!("{MANIFESTS}---\n{QUARANTINE}")).unwrap();
    let with_manifests = |flow: String, output: &str| {
        let mut args = fix(flow, output);
        args.extend(["-m".to_string(), manifests.display().to_string()]);
        args
    };
    let yaml = succeeded(
        &flowtrace(
            &api,
            home.path(),
            "alice",
            "shop",
            &with_manifests(shop_flow("checkout"), "yaml"),
        )
        .await,
    );
    assert!(yaml.contains("kind: StagedNetworkPolicy"), "{yaml}");
    assert!(
        yaml.contains("name: allow-cart") && yaml.contains("tier: application"),
        "{yaml}"
    );
    assert!(yaml.contains("app == 'checkout'"), "{yaml}");

    // Denied in tier security, which alice may neither read nor write: an exception request
    // that names the tier, never the policy or its rule.
    for output_form in ["text", "json", "markdown"] {
        let output = flowtrace(
            &api,
            home.path(),
            "alice",
            "shop",
            &with_manifests(shop_flow("legacy"), output_form),
        )
        .await;
        let stdout = succeeded(&output);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            stdout.contains("tier security, which you cannot read"),
            "{output_form}: {stdout}"
        );
        for secret in ["quarantine", "lockdown", "app == 'legacy'"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{output_form}: {secret:?} leaked: {stdout}{stderr}"
            );
        }
    }

    // A flow with an end alice may not see is not hers to fix, and says why.
    let args = vec![
        "fix".to_string(),
        "--flows".into(),
        flows.display().to_string(),
        "--line".into(),
        "1".into(),
        "-m".into(),
        manifests.display().to_string(),
    ];
    let output = flowtrace(&api, home.path(), "alice", "shop", &args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("part of this flow is withheld from you"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // One both sides allow is not called withheld: there is nothing to fix, said without the
    // end she may not see.
    let allowed = serde_json::json!({
        "start_time": "2026-12-05T02:10:00Z", "end_time": "2026-12-05T02:10:15Z",
        "action": "Allow", "reporter": "Src", "protocol": "tcp", "dest_port": 80,
        "source_name": "frontend-7d4b9c-*", "source_namespace": "shop",
        "source_labels": "app=frontend",
        "dest_name": "web-0", "dest_namespace": "payments", "dest_labels": "app=web",
    })
    .to_string();
    let args = with_manifests(allowed, "text");
    let output = flowtrace(&api, home.path(), "alice", "shop", &args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "nothing to fix: shop/frontend-7d4b9c-* -> (withheld: needs list pods in payments):80/tcp is not denied"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("web-0"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_without_manifests_or_a_cluster_says_what_it_needs() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("flowtrace")
        .unwrap()
        .args(["fix", "--flow", &shop_flow("checkout")])
        .env("HOME", home.path())
        .env("KUBECONFIG", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no policies to propose against: give the manifests with -m"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_refused_mid_run_is_said_and_asks_what_the_user_may_see_again() {
    use flowtrace::cluster::access::scope_for;
    use flowtrace::cluster::policies::PolicyWatch;
    use flowtrace::cluster::scope_watch::ScopeWatch;
    use flowtrace::cluster::ClusterTarget;
    use std::time::{Duration, Instant};

    let api = cluster().await;
    apply_policies(&api);
    let home = tempfile::tempdir().unwrap();
    let target = ClusterTarget {
        kubeconfig: Some(api.kubeconfig_as(home.path(), "bob", "default")),
        ..ClusterTarget::default()
    };
    let (watch, scope_watch, first) = tokio::task::spawn_blocking(move || {
        let scoped = scope_for(&target, false).unwrap();
        let (watch, first) = PolicyWatch::start(&target, Duration::from_secs(10)).unwrap();
        let hour = Duration::from_secs(3600);
        (watch, ScopeWatch::start(target, &scoped.scope, hour), first)
    })
    .await
    .unwrap();
    assert!(first.forbidden.is_empty(), "{:?}", first.forbidden);

    // Bob's roles are taken away; the watches, reconnecting, are refused.
    api.revoke("security");
    api.drop_watches();
    let refused = tokio::task::spawn_blocking(move || {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Some(update) = watch.latest().filter(|u| !u.forbidden.is_empty()) {
                return update.forbidden;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Vec::new()
    })
    .await
    .unwrap();
    assert!(
        refused.contains(&"tiers.projectcalico.org".to_string()),
        "{refused:?}"
    );
    // Asked again at once, not in an hour: bob now sees no namespace.
    let changed = tokio::task::spawn_blocking(move || {
        scope_watch.nudge().now();
        scope_watch.next_within(Duration::from_secs(10))
    })
    .await
    .unwrap()
    .expect("a new scope");
    let namespaces = changed.scope.visibility().unwrap().namespaces.clone();
    assert_eq!(
        namespaces,
        Some(Default::default()),
        "{:?}",
        changed.summary
    );
}

/// `kubectl auth can-i` as a persona (kubectl sends no token over plain HTTP: the tester
/// impersonates them and their group, as `--as` and `--as-group` do), with its stdout and
/// whether it said yes.
fn can_i(api: &FakeApiServer, home: &Path, user: &str, args: &[&str]) -> (String, bool) {
    let group = match user {
        "alice" => "shop-devs",
        _ => "security",
    };
    let output = Command::new("kubectl")
        .args(["auth", "can-i", "--as", user, "--as-group", group])
        .args(args)
        .env("KUBECONFIG", api.kubeconfig(home))
        .env("HOME", home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    (stdout, output.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_auth_can_i_agrees_with_the_fakes_roles() {
    let api = cluster().await;
    api.accept_anonymous_as_tester();
    let home = tempfile::tempdir().unwrap();
    let (home, api) = tokio::task::spawn_blocking(move || {
        let path = home.path();
        assert!(can_i(&api, path, "alice", &["list", "pods", "-n", "shop"]).1);
        let (answer, yes) = can_i(&api, path, "alice", &["list", "pods", "-n", "payments"]);
        assert!(!yes && answer.trim() == "no", "{answer}");
        assert!(can_i(&api, path, "bob", &["list", "pods", "-A"]).1);
        let (rules, _) = can_i(&api, path, "alice", &["--list", "-n", "shop"]);
        // Each rule as (resource, names, verbs), the columns kubectl aligns.
        let rule = |resource: &str, names: &str| -> String {
            rules
                .lines()
                .find_map(|line| {
                    let columns: Vec<&str> = line.split_whitespace().collect();
                    (columns.first() == Some(&resource) && columns.get(2) == Some(&names))
                        .then(|| columns[3..].join(" "))
                })
                .unwrap_or_else(|| panic!("no {resource} {names} in {rules}"))
        };
        assert_eq!(rule("pods", "[]"), "[get list watch]", "{rules}");
        assert_eq!(
            rule("tier.networkpolicies.projectcalico.org", "[application.*]"),
            "[get list watch create update patch delete]"
        );
        assert_eq!(rule("tiers.projectcalico.org", "[application]"), "[get]");
        // Calico's passthrough role, for everyone authenticated.
        assert_eq!(rule("globalnetworkpolicies.projectcalico.org", "[]"), "[*]");
        (home, api)
    })
    .await
    .unwrap();
    drop((home, api));
}

/// A staged policy for cart in `tier`, as flowtrace's fixes are written.
fn staged(tier: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {{name: {tier}.allow-checkout, namespace: shop}}
spec:
  tier: {tier}
  order: 5
  selector: app == 'cart'
  types: [Ingress]
  ingress:
  - action: Allow
    source: {{selector: app == 'checkout'}}
"
    )
}

/// `kubectl ARGS` as alice (impersonated, with her group), on `stdin`.
fn kubectl_as_alice(api: &FakeApiServer, home: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .args(["--as", "alice", "--as-group", "shop-devs"])
        .env("KUBECONFIG", api.kubeconfig(home))
        .env("HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_server_side_and_dry_runs_as_calicos_tier_rbac_allows() {
    let api = cluster().await;
    api.accept_anonymous_as_tester();
    let home = tempfile::tempdir().unwrap();
    let (home, api) = tokio::task::spawn_blocking(move || {
        let path = home.path();
        let apply = ["apply", "--server-side", "-f", "-"];
        let dry_apply = ["apply", "--server-side", "--dry-run=server", "-f", "-"];
        let said = |output: &Output| {
            let out = String::from_utf8_lossy(&output.stdout).to_string();
            out + &String::from_utf8_lossy(&output.stderr)
        };
        // Tier application is alice's to write: the dry run says so and writes nothing.
        let output = kubectl_as_alice(&api, path, &dry_apply, &staged("application"));
        assert!(output.status.success(), "{}", said(&output));
        assert!(
            said(&output).contains("serverside-applied (server dry run)"),
            "{}",
            said(&output)
        );
        let get = [
            "get",
            "stagednetworkpolicies.projectcalico.org",
            "-n",
            "shop",
            "-o",
            "name",
        ];
        let listed = kubectl_as_alice(&api, path, &get, "");
        assert!(
            !said(&listed).contains("allow-checkout"),
            "{}",
            said(&listed)
        );
        // Tier security is not: Calico's tier authorization refuses even a dry run.
        let output = kubectl_as_alice(&api, path, &dry_apply, &staged("security"));
        assert!(!output.status.success());
        assert!(
            said(&output).contains("cannot patch resource \"tier.stagednetworkpolicies\""),
            "{}",
            said(&output)
        );
        let create = ["create", "--dry-run=server", "-f", "-"];
        let output = kubectl_as_alice(&api, path, &create, &staged("application"));
        assert!(
            said(&output).contains("created (server dry run)"),
            "{}",
            said(&output)
        );
        // Applied for real, it is there.
        let output = kubectl_as_alice(&api, path, &apply, &staged("application"));
        assert!(output.status.success(), "{}", said(&output));
        let listed = kubectl_as_alice(&api, path, &get, "");
        assert!(
            said(&listed).contains("application.allow-checkout"),
            "{}",
            said(&listed)
        );
        // A dry-run delete leaves it; a delete removes it.
        let name = "stagednetworkpolicies.projectcalico.org/application.allow-checkout";
        let output = kubectl_as_alice(
            &api,
            path,
            &["delete", "-n", "shop", name, "--dry-run=server"],
            "",
        );
        assert!(output.status.success(), "{}", said(&output));
        assert!(said(&kubectl_as_alice(&api, path, &get, "")).contains("allow-checkout"));
        let output = kubectl_as_alice(&api, path, &["delete", "-n", "shop", name], "");
        assert!(output.status.success(), "{}", said(&output));
        assert!(!said(&kubectl_as_alice(&api, path, &get, "")).contains("allow-checkout"));
        (home, api)
    })
    .await
    .unwrap();
    drop((home, api));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_read_without_a_tier_is_whole_only_where_the_datastore_does_not_filter_reads() {
    use support::kube_api::Datastore;
    let api = cluster().await;
    apply_policies(&api);
    // Dana reads every object that decides a flow, but only tiers application and default.
    api.add_user("dana", &["readers"]);
    let read = ["get", "list", "watch"];
    api.grant(Grant::new("readers", &read, "", &["namespaces", "pods"]));
    api.grant(Grant::new(
        "readers",
        &read,
        "networking.k8s.io",
        &["networkpolicies"],
    ));
    api.grant(Grant::new(
        "readers",
        &read,
        "policy.networking.k8s.io",
        &["*"],
    ));
    let calico = [
        "networkpolicies",
        "globalnetworkpolicies",
        "stagednetworkpolicies",
        "stagedglobalnetworkpolicies",
        "stagedkubernetesnetworkpolicies",
        "networksets",
        "globalnetworksets",
    ];
    api.grant(Grant::new("readers", &read, "projectcalico.org", &calico));
    api.grant(Grant::new(
        "readers",
        &["list", "watch"],
        "projectcalico.org",
        &["tiers"],
    ));
    api.grant(
        Grant::new("readers", &["get"], "projectcalico.org", &["tiers"])
            .named(&["application", "default"]),
    );
    let tiered = [
        "tier.networkpolicies",
        "tier.globalnetworkpolicies",
        "tier.stagednetworkpolicies",
        "tier.stagedglobalnetworkpolicies",
    ];
    api.grant(
        Grant::new("readers", &read, "projectcalico.org", &tiered)
            .named(&["application.*", "default.*"]),
    );
    let home = tempfile::tempdir().unwrap();
    let fix = vec![
        "fix".to_string(),
        "--flow".into(),
        shop_flow("legacy"),
        "-o".into(),
        "json".into(),
    ];
    // Calico's API server leaves tier security's policies out of what dana lists: the set
    // cannot decide, and no fix is proposed from it.
    api.set_datastore(Datastore::ApiServer);
    let output = flowtrace(&api, home.path(), "dana", "shop", &fix).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("you may not read tiers security, platform, whose policies Calico's API server leaves out"),
        "{stderr}"
    );
    // With Calico's CRDs reads are not filtered: the guardrail is in what dana read (and shown
    // to her withheld), so the set is whole.
    api.set_datastore(Datastore::Crd);
    let output = flowtrace(&api, home.path(), "dana", "shop", &fix).await;
    let proposal: Value = serde_json::from_str(&succeeded(&output)).unwrap();
    let denial = &proposal["sides"][0]["denial"];
    assert_eq!(denial["tier"], "security", "{proposal}");
    assert!(!proposal.to_string().contains("quarantine"), "{proposal}");

    // `auth` says which datastore, to whoever may read the APIService that tells; others are
    // told what would.
    let auth = vec!["auth".to_string(), "-o".into(), "json".into()];
    for (datastore, said) in [
        (Datastore::ApiServer, "api_server"),
        (Datastore::Crd, "crd"),
    ] {
        api.set_datastore(datastore);
        let admin: Value = serde_json::from_str(&succeeded(
            &flowtrace(&api, home.path(), "admin", "shop", &auth).await,
        ))
        .unwrap();
        assert_eq!(admin["datastore"], said, "{admin}");
    }
    let text = succeeded(&flowtrace(&api, home.path(), "admin", "shop", &["auth".into()]).await);
    assert!(
        text.contains("datastore:  CRDs (reads are not filtered by tier"),
        "{text}"
    );
    let text = succeeded(&flowtrace(&api, home.path(), "dana", "shop", &["auth".into()]).await);
    assert!(
        text.contains("datastore:  unknown (needs get apiservices/v3.projectcalico.org"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_as_kubectl_takes_them_from_an_exec_plugin_or_a_pods_service_account() {
    use std::os::unix::fs::PermissionsExt;
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    // An exec credential plugin (as cloud providers' kubeconfigs name one) that answers with
    // the admin's token.
    let plugin = home.path().join("credential-plugin");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \
         \"ExecCredential\", \"status\": {\"token\": \"token-of-admin\"}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let written = std::fs::read_to_string(api.kubeconfig_as(home.path(), "admin", "default"))
        .unwrap()
        .replace(
            "token: token-of-admin",
            &format!(
                "exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      \
                 interactiveMode: Never",
                plugin.display()
            ),
        );
    let kubeconfig = home.path().join("kubeconfig-exec");
    std::fs::write(&kubeconfig, written).unwrap();
    let auth = |env: Vec<(&'static str, String)>| {
        let mut command = Command::cargo_bin("flowtrace").unwrap();
        command
            .args(["auth", "-o", "json"])
            .env("HOME", home.path())
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .envs(env);
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let output = auth(vec![("KUBECONFIG", kubeconfig.display().to_string())])
        .await
        .unwrap();
    let access: Value = serde_json::from_str(&succeeded(&output)).unwrap();
    assert_eq!(access["user"], "admin");
    // No kubeconfig at all: no cluster, unless in a pod, where its service account is used.
    let output = auth(Vec::new()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(stderr.contains("no cluster configured"), "{stderr}");
    let in_a_pod = vec![
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_string()),
        ("KUBERNETES_SERVICE_PORT", "1".to_string()),
    ];
    let output = auth(in_a_pod).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // Without a service account on this machine the in-cluster config says so; with one, the
    // cluster it names (nothing listens there) does.
    assert!(
        !stderr.contains("no cluster configured")
            && (stderr.contains("in-cluster config") || stderr.contains("127.0.0.1:1")),
        "{stderr}"
    );
}

/// A measurement, not a check (docs/performance.md): what the scope costs to compute for a user
/// who may see 250 of 500 namespaces, on a cluster that answers in 10 ms.
/// `cargo test --release --test rbac -- --ignored --nocapture scope_of_500_namespaces`
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn scope_of_500_namespaces() {
    let api = cluster().await;
    for k in 0..500 {
        let namespace = format!("team-{k:03}");
        api.add_namespace(&namespace);
        if k % 2 == 0 {
            api.grant(Grant::new("shop-devs", &["list"], "", &["pods"]).in_namespace(&namespace));
        }
    }
    api.grant(Grant::new("shop-devs", &["list"], "", &["namespaces"]));
    api.set_latency(std::time::Duration::from_millis(10));
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = flowtrace(
        &api,
        home.path(),
        "alice",
        "shop",
        &["auth".into(), "-o".into(), "json".into()],
    )
    .await;
    let elapsed = started.elapsed();
    let access: Value = serde_json::from_str(&succeeded(&output)).unwrap();
    assert_eq!(
        access["namespaces"].as_array().unwrap().len(),
        251,
        "250 and shop"
    );
    let requests = api.requests().len();
    println!("scope of 500 namespaces, 10 ms a request: {elapsed:.2?} ({requests} requests)");
}

/// In `tail`'s table a withheld end is in parentheses, so its port does not read as part of the
/// marker (`…in payments:8080` would name a namespace `payments:8080`).
#[tokio::test(flavor = "multi_thread")]
async fn a_withheld_end_in_the_table_keeps_its_port_apart() {
    let api = cluster().await;
    let home = tempfile::tempdir().unwrap();
    let (flows, _) = files(home.path());
    let args = vec![
        "tail".to_string(),
        "--source".into(),
        format!("file:{}", flows.display()),
    ];
    let stdout = succeeded(&flowtrace(&api, home.path(), "alice", "shop", &args).await);
    assert!(
        stdout.contains("(withheld: needs list pods in payments):8080/tcp"),
        "{stdout}"
    );
}
