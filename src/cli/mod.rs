//! The command line: kubectl-style, one entry point for both binaries (`flowtrace` and
//! `kubectl-flowtrace`).

mod auth;
mod demo;
mod eval;
mod explain;
mod fix;
mod impact;
mod inputs;
mod lint;
mod tail;
mod tui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "flowtrace",
    version,
    // A flag before a subcommand is the TUI's, not the subcommand's: refused, never ignored.
    args_conflicts_with_subcommands = true,
    about = "Why is my traffic dropped, and what is the smallest safe fix? Calico flows, traced."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    tui: TuiArgs,
}

/// With no subcommand: the interactive TUI (on a terminal; otherwise flows are printed like `tail`).
#[derive(Debug, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    view: ViewArgs,
    /// Keymap: default, vim, emacs, a name in $XDG_CONFIG_HOME/flowtrace/keymaps, or a path.
    #[arg(long, value_name = "NAME|PATH")]
    keymap: Option<String>,
    /// Theme: default, light, high-contrast, mono, a name in $XDG_CONFIG_HOME/flowtrace/themes, or a path.
    #[arg(long, value_name = "NAME|PATH")]
    theme: Option<String>,
    /// Log file [default: $XDG_STATE_HOME/flowtrace/flowtrace.log].
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Most flows kept; the oldest are evicted beyond this.
    #[arg(long, default_value_t = 1_000_000)]
    max_flows: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide every flow of a flow file against manifests, as Calico would.
    Eval(EvalArgs),
    /// Explain one flow tier by tier, policy by policy, rule by rule.
    Explain(ExplainArgs),
    /// Print matching flows from a source, and exit or keep following it.
    Tail(Box<TailArgs>),
    /// Propose the smallest safe fix for a denied flow, proven by Calico's staged-policy preview.
    Fix(Box<FixArgs>),
    /// How a change of manifests (a pull request) changes the verdicts of recorded flows.
    Impact(ImpactArgs),
    /// Check manifests against governance rules: the built-in ones and your own Rego (as Conftest).
    Lint(LintArgs),
    /// The built-in demo cluster: export its manifests and flows to try every command offline.
    Demo(DemoArgs),
    /// Who you are in the cluster, and what you may see and do: namespaces, tiers, where you may
    /// stage policies, and why not where not.
    Auth(AuthArgs),
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Also check this namespace (when you may not list namespaces, only the context's is
    /// otherwise). Repeatable.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: AuthOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthOutput {
    /// Each answer on its line, with why not where not.
    Text,
    /// The fields user, groups, all_namespaces, namespaces, tiers.readable, tiers.writable and
    /// stage_namespaces, with the refusals and notes.
    Json,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Manifest file or directory (read recursively: .yaml, .yml, .json). Repeatable.
    #[arg(long = "manifests", short = 'm', value_name = "PATH", required = true)]
    manifests: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalOutput {
    /// One JSON object per flow, in input order.
    Json,
    /// A readable table.
    Wide,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    manifests: ManifestArgs,
    /// JSON Lines flow file (Whisker, Goldmane or Calico Enterprise records); `-` for stdin.
    #[arg(long, value_name = "FILE")]
    flows: PathBuf,
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: EvalOutput,
    /// Report every flow whose computed verdict or trace differs from what Calico recorded (exit 1 if any).
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainOutput {
    Text,
    Json,
}

/// One flow: given whole, or a line of a flow file.
#[derive(Debug, Args)]
pub struct FlowPick {
    /// The flow as one JSON record.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["flows", "line"])]
    flow: Option<String>,
    /// Flow file to take the flow from (with --line).
    #[arg(long, value_name = "FILE", requires = "line")]
    flows: Option<PathBuf>,
    /// Line number of the flow in --flows (1-based).
    #[arg(long, value_name = "N", requires = "flows")]
    line: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    manifests: ManifestArgs,
    #[command(flatten)]
    pick: FlowPick,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: ExplainOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixOutput {
    /// Each side, what denied it, the candidates narrowest first with their preview.
    Text,
    /// The narrowest candidate of each denying side, as the staged policy to apply.
    Yaml,
    /// Everything: sides, denials, candidates with both forms, exception requests.
    Json,
    /// The exception requests for guardrail tiers, ready for a ticket.
    Markdown,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// Manifest file or directory (read recursively: .yaml, .yml, .json). Repeatable. Without
    /// it, the configured cluster's policies.
    #[arg(long = "manifests", short = 'm', value_name = "PATH")]
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    pick: FlowPick,
    /// Tiers you may write; a deny in any other tier is a guardrail, explained and sent to its
    /// owners instead of fixed [default: those RBAC lets you write when a cluster is configured
    /// (this narrows them), else the demo's developer: application, default].
    #[arg(long, value_name = "TIER,...", value_delimiter = ',')]
    writable_tiers: Vec<String>,
    /// The cluster's Calico version: up to 3.31 a policy outside the default tier is named
    /// `<tier>.<name>` [default: the configured cluster's, read from its ClusterInformation;
    /// else 3.31].
    #[arg(long, value_name = "VERSION")]
    calico_version: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: FixOutput,
    /// With -o yaml: the enforced form (to apply once the staged one is proven).
    #[arg(long)]
    enforced: bool,
    #[command(flatten)]
    governance: GovernanceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImpactOutput {
    /// Changed flows grouped by what decides them after the change, and by namespace.
    Table,
    Json,
    /// A pull-request comment.
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 when any verdict changes.
    Change,
    /// Exit 1 only when a flow becomes denied.
    Deny,
}

#[derive(Debug, Args)]
pub struct ImpactArgs {
    /// Recorded flows (JSON Lines: Whisker, Goldmane or Calico Enterprise records). Repeatable.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    flows: Vec<PathBuf>,
    /// The current manifests (file or directory). Repeatable.
    #[arg(long = "manifests", short = 'm', value_name = "PATH", required = true)]
    manifests: Vec<PathBuf>,
    /// The proposed manifests in full (the pull request's tree), as `kubectl diff -f` takes the
    /// new state. Repeatable.
    #[arg(long = "with", value_name = "PATH", required = true)]
    with: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: ImpactOutput,
    #[arg(long, value_enum, default_value = "change")]
    fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailOutput {
    /// A table: time, source, destination, verdicts and what decided them.
    Wide,
    /// One JSON object per flow, in the shape `eval` prints.
    Json,
}

/// Where flows come from and how they are decided (shared by `tail` and the TUI).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Where flows come from: `demo` (the built-in cluster), `goldmane` (Calico 3.30+ gRPC),
    /// `whisker` (Whisker's HTTP API), `file:PATH`, or `-` for stdin [default: the configured
    /// source, else the current cluster's Goldmane or Whisker, else the demo when no cluster is
    /// configured].
    #[arg(long, value_name = "SOURCE")]
    source: Option<String>,
    #[command(flatten)]
    goldmane: GoldmaneArgs,
    /// Whisker's address (http://, or https:// with --whisker-ca). By default flowtrace
    /// port-forwards to calico-system/whisker through the Kubernetes API: port 8443 (HTTPS, Calico
    /// 3.33+) when the service has it, else 8081.
    #[arg(long, value_name = "URL")]
    whisker_url: Option<String>,
    /// The CA (PEM) that signed the certificate of Whisker at an https:// --whisker-url.
    #[arg(long, value_name = "FILE", requires = "whisker_url")]
    whisker_ca: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Decide flows against these manifests (otherwise what Calico recorded is shown).
    #[arg(long = "manifests", short = 'm', value_name = "PATH")]
    manifests: Vec<PathBuf>,
    /// Only flows with an end in this namespace, as kubectl's -n (not where Calico runs: that
    /// is --calico-namespace). Repeatable: flows of any of them.
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    namespace: Vec<String>,
    /// Flows of every namespace you may see, as kubectl's -A [the default, but for flows from the
    /// cluster when its context names a namespace: that one].
    #[arg(long, short = 'A')]
    all_namespaces: bool,
    /// Demo flows per second.
    #[arg(long, default_value_t = 20, help_heading = "The demo source")]
    rate: u32,
    /// Seed of the demo's traffic.
    #[arg(long, default_value_t = 1, help_heading = "The demo source")]
    seed: u64,
}

impl SourceArgs {
    /// The source asked for; the demo when none was.
    fn source(&self) -> &str {
        self.source.as_deref().unwrap_or("demo")
    }
}

/// Which flows to show, for the TUI and `tail` alike.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Only flows matching this filter (docs/filter.md), e.g. 'action=deny dst.ns=payments'; the
    /// TUI starts with it in its filter bar.
    #[arg(long)]
    filter: Option<String>,
    /// How far back to look (30s, 15m, 2h): tail shows only flows seen within it, the TUI loads
    /// that much history at start [TUI default: 5m]; the demo backfills as much.
    #[arg(long)]
    since: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    view: ViewArgs,
    /// Keep following the source (new flows, a growing file) until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    #[arg(long, short = 'o', value_enum, default_value = "wide")]
    output: TailOutput,
}

/// How to reach Goldmane: by default a port-forward to calico-system/goldmane:7443 through the
/// Kubernetes API, with a client certificate signed by the operator's CA (calico.md 1.4).
#[derive(Debug, Clone, Args)]
pub struct GoldmaneArgs {
    /// Goldmane's address, e.g. https://127.0.0.1:7443 behind your own port-forward. By default
    /// flowtrace port-forwards to calico-system/goldmane:7443 through the Kubernetes API.
    #[arg(long, value_name = "URL")]
    goldmane_address: Option<String>,
    /// Client certificate (PEM). By default, when port-forwarding, tls.crt of the
    /// calico-system/node-certs secret.
    #[arg(long, value_name = "FILE", requires = "goldmane_key")]
    goldmane_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, value_name = "FILE", requires = "goldmane_cert")]
    goldmane_key: Option<PathBuf>,
    /// CA that signed Goldmane's certificate. By default, when port-forwarding, the
    /// calico-system/tigera-ca-bundle configmap.
    #[arg(long, value_name = "FILE")]
    goldmane_ca: Option<PathBuf>,
    /// Name to verify Goldmane's certificate against.
    #[arg(long, value_name = "NAME", default_value = "goldmane")]
    goldmane_server_name: String,
}

/// Which Kubernetes cluster to port-forward through, as kubectl's flags say it.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the current context].
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// The user to impersonate, as kubectl's --as.
    #[arg(long = "as", value_name = "USER")]
    impersonate: Option<String>,
    /// A group to impersonate, as kubectl's --as-group. Repeatable.
    #[arg(long = "as-group", value_name = "GROUP")]
    impersonate_groups: Vec<String>,
    /// How long one request to the Kubernetes API may take (30s, 2m); 0: no limit.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = crate::cluster::request_timeout)]
    request_timeout: std::time::Duration,
    /// Namespace Calico runs in (where goldmane and whisker are).
    #[arg(long, value_name = "NS", default_value = "calico-system")]
    calico_namespace: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Write the demo's manifests and a flow file (flows.jsonl) into this directory.
    #[arg(long, value_name = "DIR")]
    export: PathBuf,
    /// How many conversations the flow file holds (spread over the last hour).
    #[arg(long, default_value_t = 2000)]
    flows: usize,
    /// Seed of the demo's traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintOutput {
    /// One line per finding, as Conftest prints them, then a count.
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegoVersion {
    V0,
    V1,
}

/// The governance rules `lint` checks, and `fix` checks its candidates against.
#[derive(Debug, Args)]
pub struct GovernanceArgs {
    /// The built-in rules' settings (TOML; docs/governance.md) [default: no allow-all ingress
    /// rule, and a namespace on namespaced kinds].
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Rego rules: a .rego file or a directory of them (as Conftest's --policy). Repeatable.
    #[arg(long, short = 'p', value_name = "PATH")]
    policy: Vec<PathBuf>,
    /// Data for the Rego rules (JSON or YAML files, or directories), merged under `data`.
    /// Repeatable.
    #[arg(long, short = 'd', value_name = "PATH")]
    data: Vec<PathBuf>,
    /// Rego package whose rules apply [default: main]. Repeatable.
    #[arg(long, value_name = "PACKAGE", conflicts_with = "all_namespaces")]
    namespace: Vec<String>,
    /// The rules of every package.
    #[arg(long)]
    all_namespaces: bool,
    /// Rego syntax: v1 (`deny contains msg if`), or v0 (`deny[msg] {`) for older policies.
    #[arg(long, value_enum, default_value = "v1")]
    rego_version: RegoVersion,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Manifest files or directories (read recursively: .yaml, .yml, .json).
    #[arg(required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    governance: GovernanceArgs,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: LintOutput,
}

/// Exit status: 0 success; 1 differences found (`eval --check`, `impact`), a rule failed
/// (`lint`); 2 invalid input.
pub const EXIT_DIFFERENCES: u8 = 1;
pub const EXIT_INVALID_INPUT: u8 = 2;

/// Why a command stopped before its end (exit 2, but for a closed pipe).
#[derive(Debug)]
pub enum Stop {
    /// The input is invalid; the message says why, and is printed as an error.
    Invalid(String),
    /// The input is invalid, and stderr already says why.
    Reported,
    Io(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(error: std::io::Error) -> Stop {
        Stop::Io(error)
    }
}

impl From<serde_json::Error> for Stop {
    fn from(error: serde_json::Error) -> Stop {
        Stop::Io(error.into())
    }
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Invalid(message)
    }
}

/// What a command ends with: its exit status, or why it stopped.
type Outcome = Result<u8, Stop>;

pub fn main() -> ExitCode {
    run(Cli::parse())
}

/// As `kubectl flowtrace`: the same commands, and help and errors say how it was run.
pub fn kubectl_plugin_main() -> ExitCode {
    let name = "kubectl flowtrace";
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    run(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Explain(args)) => explain::run(&args),
        Some(Command::Tail(args)) => tail::run(&args),
        Some(Command::Fix(args)) => fix::run(&args),
        Some(Command::Impact(args)) => impact::run(&args),
        Some(Command::Lint(args)) => lint::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Auth(args)) => auth::run(&args),
        None => tui::run(cli.tui),
    };
    // Not `eprintln!`: with the terminal gone (a hang-up) it would panic.
    use std::io::Write;
    let error = match result {
        Ok(code) => return ExitCode::from(code),
        Err(Stop::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Err(Stop::Reported) => None,
        Err(Stop::Invalid(message)) => Some(message),
        Err(Stop::Io(e)) => Some(e.to_string()),
    };
    if let Some(error) = error {
        let _ = writeln!(std::io::stderr(), "error: {error}");
    }
    ExitCode::from(EXIT_INVALID_INPUT)
}
