//! A seeded synthetic cluster for benchmarks: 200 namespaces, 5 tiers, 1,000 policies and 5,000
//! distinct workload label sets, with Whisker-format flows between them.

use std::fmt::Write;

use flowtrace::source::demo::Seeded;

pub const NAMESPACES: usize = 200;
pub const LABEL_SETS: usize = 5_000;
const ROLES: [&str; 3] = ["web", "api", "db"];
const PORTS: [u16; 6] = [80, 443, 5432, 8080, 53, 9090];

/// An index below `n`, from the demo's generator (so runs are comparable).
fn pick(random: &mut Seeded, n: usize) -> usize {
    random.below(n as u64) as usize
}

fn namespace(k: usize) -> String {
    format!("ns-{:03}", k % NAMESPACES)
}

fn app(k: usize) -> usize {
    k / NAMESPACES
}

fn ip(k: usize) -> String {
    format!("10.{}.{}.{}", 64 + k / 65536, (k / 256) % 256, k % 256)
}

/// Manifests as one multi-document YAML stream.
pub fn manifests() -> String {
    let mut yaml = String::new();
    for n in 0..NAMESPACES {
        let _ = write!(yaml, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{n:03}\n  labels: {{team: team-{}, env: {}}}\n", n % 20, if n % 2 == 0 { "prod" } else { "dev" });
    }
    for (name, order, default_action) in [
        ("security", 100, "Deny"),
        ("platform", 200, "Pass"),
        ("app-a", 300, "Pass"),
        ("app-b", 400, "Deny"),
    ] {
        let _ = write!(yaml, "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: {name}\nspec:\n  order: {order}\n  defaultAction: {default_action}\n");
    }
    // 50 security guardrails: deny some egress networks, pass the rest.
    for i in 0..50 {
        let _ = write!(
            yaml,
            "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: security.guard-{i}\nspec:\n  tier: security\n  order: {i}\n  selector: role == '{}' && env-{i} != 'exempt'\n  namespaceSelector: team == 'team-{}'\n  types: [Ingress, Egress]\n  ingress:\n  - action: Deny\n    source:\n      nets: [192.168.{i}.0/24]\n  - action: Pass\n  egress:\n  - action: Deny\n    protocol: TCP\n    destination:\n      nets: [169.254.{i}.0/24]\n      ports: [80, 443]\n  - action: Pass\n",
            ROLES[i % 3],
            i % 20
        );
    }
    // 50 platform policies: DNS and monitoring.
    for i in 0..50 {
        let _ = write!(
            yaml,
            "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: platform.base-{i}\nspec:\n  tier: platform\n  order: {i}\n  selector: app == 'app-{}'\n  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: UDP\n    destination:\n      ports: [53]\n      namespaceSelector: env == 'prod'\n  - action: Allow\n    protocol: TCP\n    destination:\n      selector: role == 'api'\n      ports: [9090]\n",
            i % 25
        );
    }
    // 900 namespaced policies, 4-5 per namespace, across app-a, app-b and default (Kubernetes).
    for i in 0..900 {
        let ns = format!("ns-{:03}", i % NAMESPACES);
        let target = (i / NAMESPACES) % 25;
        let peer_team = (i * 7) % 20;
        match i % 3 {
            0 | 1 => {
                let tier = if i % 3 == 0 { "app-a" } else { "app-b" };
                let _ = write!(
                    yaml,
                    "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: {tier}.p-{i}\n  namespace: {ns}\nspec:\n  tier: {tier}\n  order: {}\n  selector: app == 'app-{target}' || role == '{}'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      namespaceSelector: team == 'team-{peer_team}'\n      selector: role in {{'web', 'api'}}\n    destination:\n      ports: [8080, 443]\n  - action: Deny\n    protocol: TCP\n    source:\n      selector: has(quarantine)\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      selector: role == 'db'\n      ports: [5432]\n  - action: Pass\n    destination:\n      notNets: [10.0.0.0/8]\n",
                    i % 7,
                    ROLES[i % 3]
                );
            }
            _ => {
                let _ = write!(
                    yaml,
                    "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: k-{i}\n  namespace: {ns}\nspec:\n  podSelector:\n    matchLabels: {{app: app-{target}}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {{team: team-{peer_team}}}\n    - podSelector:\n        matchExpressions: [{{key: role, operator: In, values: [web, api]}}]\n    ports:\n    - port: 80\n    - port: 8080\n    - protocol: UDP\n      port: 53\n"
                );
            }
        }
    }
    yaml
}

/// `count` lines as the store benchmark draws them (and the benchmarks measured beside it): runs
/// of 100,000, each from its own seed, so a run of a million is the same million every time.
// Not every file that includes this module draws this many.
#[allow(dead_code)]
pub fn many_flow_lines(count: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(count);
    for chunk in (0..count).step_by(100_000) {
        lines.extend(flow_lines((count - chunk).min(100_000), chunk as u64 + 11));
    }
    lines
}

/// One Whisker `FlowResponse` line per flow; endpoints are drawn from the 5,000 label sets.
pub fn flow_lines(count: usize, seed: u64) -> Vec<String> {
    let mut random = Seeded::new(seed);
    (0..count)
        .map(|_| {
            let (s, d) = (pick(&mut random, LABEL_SETS), pick(&mut random, LABEL_SETS));
            let port = PORTS[pick(&mut random, PORTS.len())];
            let protocol = if port == 53 { "udp" } else { "tcp" };
            let reporter = if random.below(2) == 0 { "Src" } else { "Dst" };
            format!(
                "{{\"start_time\":\"2026-11-23T02:10:00Z\",\"end_time\":\"2026-11-23T02:10:15Z\",\"action\":\"Allow\",\"source_name\":\"app-{}-{}-*\",\"source_namespace\":\"{}\",\"source_labels\":\"app=app-{} | role={} | version=v{}\",\"source_ip\":\"{}\",\"dest_name\":\"app-{}-{}-*\",\"dest_namespace\":\"{}\",\"dest_labels\":\"app=app-{} | role={} | version=v{}\",\"dest_ip\":\"{}\",\"protocol\":\"{protocol}\",\"dest_port\":{port},\"reporter\":\"{reporter}\",\"packets_in\":10,\"packets_out\":12,\"bytes_in\":1200,\"bytes_out\":3400}}",
                app(s), s, namespace(s), app(s), ROLES[s % 3], s % 4, ip(s),
                app(d), d, namespace(d), app(d), ROLES[d % 3], d % 4, ip(d)
            )
        })
        .collect()
}
