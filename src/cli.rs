//! The `eks-warden` command line: `scan`, `handle`, `rules`, `state`.

use crate::collect::Clients;
use crate::rules::Severity;
use crate::settings::{self, Settings};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;

#[derive(Parser, Debug)]
#[command(
    name = "eks-warden",
    version,
    about = "Continuous compliance for Amazon EKS clusters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Seconds any one AWS call may take, retries included (overrides EKS_WARDEN_CALL_TIMEOUT_SECONDS;
    /// default 30).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub call_timeout: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate clusters in the current account and region.
    Scan(Box<ScanArgs>),
    /// Process one Lambda payload (a file, or - for stdin) exactly as the Lambda would; print the run summary.
    Handle {
        #[arg(value_name = "FILE|-")]
        file: String,
    },
    /// The finding-state table: create it, or show what it holds about a cluster.
    #[command(subcommand)]
    State(StateCommand),
    /// List the rule catalog (markdown: the text of docs/rules.md).
    Rules {
        #[arg(long, value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Create the state table (on-demand, encrypted, point-in-time recovery, TTL); exit 0 when it exists.
    CreateTable {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        region: Option<String>,
    },
    /// The open findings of a cluster and its remediation audit trail.
    Show {
        #[arg(value_name = "CLUSTER")]
        cluster: String,
        /// The state table (default: EKS_WARDEN_STATE_TABLE).
        #[arg(long, value_name = "NAME")]
        table: Option<String>,
        /// The cluster's account (default: the caller's, from STS).
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Cluster to evaluate (repeatable); all clusters of the region when none is named.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
    /// AWS region (default: AWS_REGION / the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when a violation at or above this severity is found.
    #[arg(long, value_name = "SEVERITY", default_value = "LOW", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// CIDR the public API endpoint may be open to (repeatable; overrides EKS_WARDEN_ALLOWED_PUBLIC_CIDRS).
    #[arg(long = "allowed-public-cidr", value_name = "CIDR")]
    pub allowed_public_cidrs: Vec<String>,
    /// Rule id not to evaluate (repeatable; overrides EKS_WARDEN_DISABLED_RULES).
    #[arg(long = "disable-rule", value_name = "RULE_ID")]
    pub disabled_rules: Vec<String>,
    /// Control-plane log type that must be enabled (repeatable; overrides EKS_WARDEN_REQUIRED_LOG_TYPES).
    #[arg(long = "required-log-type", value_name = "TYPE")]
    pub required_log_types: Vec<String>,
    /// IAM principal ARN allowed cluster-admin, `*` wildcards (repeatable; overrides
    /// EKS_WARDEN_ALLOWED_ADMIN_PRINCIPALS).
    #[arg(long = "allowed-admin-principal", value_name = "ARN")]
    pub allowed_admin_principals: Vec<String>,
    /// Add-on name that counts as a network policy engine (repeatable; adds to the built-in names and
    /// EKS_WARDEN_NETWORK_POLICY_ADDONS).
    #[arg(long = "network-policy-addon", value_name = "NAME")]
    pub network_policy_addons: Vec<String>,
    /// Exemption list file (JSON, see the README's "Exemptions"); without it, the SSM parameter named by
    /// EKS_WARDEN_EXEMPTIONS is read, as the Lambda does.
    #[arg(long, value_name = "FILE", env = "EKS_WARDEN_EXEMPTIONS_FILE")]
    pub exemptions: Option<String>,
    /// A previous `--format json` report: mark each violation new or unchanged, list the resolved ones.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub baseline: Option<String>,
    /// With --baseline: exit 1 only for new violations at or above --fail-on.
    #[arg(long, requires = "baseline")]
    pub fail_on_new: bool,
    /// Apply the automatic fixes of the opted-in rules (--fix-rule, else EKS_WARDEN_REMEDIATE_RULES).
    #[arg(long)]
    pub fix: bool,
    /// With --fix: report the exact calls, make none.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// Rule whose fix may run (repeatable; overrides EKS_WARDEN_REMEDIATE_RULES).
    #[arg(long = "fix-rule", value_name = "RULE_ID", requires = "fix")]
    pub fix_rules: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    /// AWS Security Finding Format: a list `aws securityhub batch-import-findings` accepts.
    Asff,
    /// OCSF 1.5 Compliance Findings, one JSON array.
    Ocsf,
    /// SARIF 2.1.0, for code-scanning services.
    Sarif,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulesFormat {
    Table,
    Json,
    Markdown,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Exit codes: 0 clean, 1 violations at/above `--fail-on`, 2 error.
pub const EXIT_OK: i32 = 0;
pub const EXIT_VIOLATIONS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

/// A failure the user sees as one line on stderr, with exit code 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Parses arguments; usage errors become one line and exit 2, `--help`/`--version` print and exit 0.
pub fn parse() -> Result<Cli, (i32, String)> {
    Cli::try_parse().map_err(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            (EXIT_OK, e.to_string())
        }
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            (EXIT_ERROR, e.to_string())
        }
        _ => {
            let first = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .to_string();
            (
                EXIT_ERROR,
                format!(
                    "{} (see eks-warden --help)",
                    first.trim_start_matches("error: ")
                ),
            )
        }
    })
}

/// Settings from the environment, then the flags on top.
pub fn settings_for(args: &ScanArgs) -> Result<Settings, CliError> {
    let mut s = Settings::from_env()?;
    if !args.allowed_public_cidrs.is_empty() {
        let items = args
            .allowed_public_cidrs
            .iter()
            .flat_map(|v| settings::split_list(v));
        s.allowed_public_cidrs = settings::parse_cidrs("--allowed-public-cidr", items)?;
    }
    if !args.disabled_rules.is_empty() {
        let items = args
            .disabled_rules
            .iter()
            .flat_map(|v| settings::split_list(v));
        s.disabled_rules = settings::parse_rule_ids("--disable-rule", items)?;
    }
    let items = |flag: &[String]| {
        flag.iter()
            .flat_map(|v| settings::split_list(v))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    if !args.required_log_types.is_empty() {
        let types = items(&args.required_log_types);
        s.required_log_types =
            settings::parse_log_types("--required-log-type", types.iter().map(String::as_str))?;
    }
    if !args.allowed_admin_principals.is_empty() {
        let arns = items(&args.allowed_admin_principals);
        s.allowed_admin_principals = settings::parse_principals(
            "--allowed-admin-principal",
            arns.iter().map(String::as_str),
        )?;
    }
    if !args.network_policy_addons.is_empty() {
        let names = items(&args.network_policy_addons);
        s.network_policy_addons.extend(settings::parse_addon_names(
            "--network-policy-addon",
            names.iter().map(String::as_str),
        )?);
    }
    Ok(s)
}

pub async fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::Rules { format } => {
            match format {
                RulesFormat::Json => println!("{}", crate::report::rules_json()),
                RulesFormat::Table => print!("{}", crate::report::rules_table()),
                RulesFormat::Markdown => print!("{}", crate::report::rules_markdown()),
            }
            Ok(EXIT_OK)
        }
        Command::Scan(args) => scan(*args, cli.call_timeout).await,
        Command::Handle { file } => handle(&file, cli.call_timeout).await,
        Command::State(cmd) => state(cmd).await,
    }
}

/// The remediation policy of a scan: `--fix` with `--fix-rule`s, else the environment's rules.
fn policy_for(args: &ScanArgs) -> Result<crate::remediate::Policy, CliError> {
    use crate::remediate::{Mode, Policy};
    if !args.fix {
        return Ok(Policy::default());
    }
    let mut policy = Policy::from_env()?;
    if !args.fix_rules.is_empty() {
        let rules = args.fix_rules.join(",");
        // Only the rules come from the flags; mode, key and the public-off permission stay the environment's.
        let parsed =
            Policy::from_lookup(|k| (k == crate::remediate::ENV_RULES).then(|| rules.clone()))
                .map_err(|e| {
                    CliError(
                        e.to_string()
                            .replace(crate::remediate::ENV_RULES, "--fix-rule"),
                    )
                })?;
        policy.rules = parsed.rules;
    }
    if policy.rules.is_empty() {
        return Err(CliError(
            "--fix needs the rules it may fix: --fix-rule RULE_ID or EKS_WARDEN_REMEDIATE_RULES"
                .into(),
        ));
    }
    policy.mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Remediate
    };
    Ok(policy)
}

fn timeouts(call: Option<f64>) -> Result<aws_smithy_types::timeout::TimeoutConfig, CliError> {
    crate::timeouts::from_env(call).map_err(|e| CliError(e.to_string()))
}

async fn scan(args: ScanArgs, call_timeout: Option<f64>) -> Result<i32, CliError> {
    use crate::exemptions::load;
    let mut settings = settings_for(&args)?;
    // Files first, so that a bad one stops the scan before any AWS call.
    let baseline = args
        .baseline
        .as_deref()
        .map(crate::baseline::Baseline::load)
        .transpose()
        .map_err(CliError)?;
    let today = load::today();
    if let Some(path) = &args.exemptions {
        settings.exemptions = load::from_file(path, today).map_err(CliError)?;
    }
    let config = crate::timeouts::load_config(args.region.clone(), timeouts(call_timeout)?).await;
    if config.region().is_none() {
        return Err(CliError(
            "no AWS region: pass --region or set AWS_REGION".into(),
        ));
    }
    if args.exemptions.is_none() {
        if let Some(name) = std::env::var(load::ENV_EXEMPTIONS)
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            let ssm = aws_sdk_ssm::Client::new(&config);
            settings.exemptions = load::from_ssm(&ssm, name.trim(), today)
                .await
                .map_err(CliError)?;
        }
    }
    let clients = Clients::new(&config);
    let policy = policy_for(&args)?;
    let mut report = crate::scan::scan(&clients, &args.clusters, &settings).await?;
    if policy.active() {
        fix_all(&clients, &mut report, &settings, &policy).await;
    }
    if let Some(b) = &baseline {
        report.baseline = Some(b.compare(&report));
    }
    print_report(&report, args.format);
    if let Some(e) = report.errors.first() {
        return Err(CliError(format!(
            "{} cluster(s) could not be evaluated or fixed; first: {}: {}",
            report.errors.len(),
            e.cluster,
            e.error
        )));
    }
    let failing = match &report.baseline {
        Some(cmp) if args.fail_on_new => cmp.new_fails_at(&report, args.fail_on),
        _ => report.fails_at(args.fail_on),
    };
    Ok(if failing { EXIT_VIOLATIONS } else { EXIT_OK })
}

fn print_report(report: &crate::scan::ScanReport, format: Format) {
    match format {
        Format::Json => println!("{}", crate::report::json(report)),
        Format::Table => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", crate::report::table(report, color));
        }
        Format::Asff => println!("{}", pretty(&crate::formats::asff::findings(report))),
        Format::Ocsf => println!("{}", pretty(&crate::formats::ocsf::findings(report))),
        Format::Sarif => println!("{}", pretty(&crate::formats::sarif::log(report))),
    }
}

/// Pretty JSON of any serialisable value (a serialisation error is printed as a JSON error object).
fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// Runs the fixes of every evaluated cluster under one write budget. A cluster whose fix pass fails keeps
/// its evaluation and joins the report's errors (the scan then exits 2 naming it); the other clusters' work
/// stands.
async fn fix_all(
    clients: &Clients,
    report: &mut crate::scan::ScanReport,
    settings: &Settings,
    policy: &crate::remediate::Policy,
) {
    use crate::remediate::{remediate, Budget, NoHistory, Run};
    let budget = Budget::new(policy.max_fixes);
    for c in &mut report.clusters {
        let mut history = NoHistory;
        let mut run = Run {
            budget: &budget,
            history: &mut history,
        };
        match remediate(clients, &c.cluster, &c.results, settings, policy, &mut run).await {
            Ok(pass) => c.remediations = pass.remediations,
            Err(e) => report.errors.push(crate::scan::ClusterError {
                cluster: c.cluster.clone(),
                error: format!("remediation failed: {e}"),
            }),
        }
    }
    report.summary.errors = report.errors.len();
}

async fn handle(file: &str, call_timeout: Option<f64>) -> Result<i32, CliError> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError(format!("stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| CliError(format!("{file}: {e}")))?
    };
    let payload: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CliError(format!("{file}: not JSON: {e}")))?;
    let config = crate::timeouts::load_config(None, timeouts(call_timeout)?).await;
    if config.region().is_none() {
        return Err(CliError("no AWS region: set AWS_REGION".into()));
    }
    let ctx = crate::handler::Context::from_env(&config)?;
    let run = crate::handler::handle(&ctx, &payload)
        .await
        .map_err(|e| CliError(format!("{file}: {e}")))?;
    println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
    if run.failed() {
        eprintln!(
            "eks-warden: {} failure(s); the Lambda would report {} record(s) for retry",
            run.failures.len(),
            run.batch_item_failures.len()
        );
        return Ok(EXIT_VIOLATIONS);
    }
    Ok(EXIT_OK)
}

async fn aws_config(region: Option<&str>) -> Result<aws_config::SdkConfig, CliError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(CliError(
            "no AWS region: pass --region or set AWS_REGION".into(),
        ));
    }
    Ok(config)
}

async fn state(cmd: StateCommand) -> Result<i32, CliError> {
    use crate::state::store::Store;
    match cmd {
        StateCommand::CreateTable { name, region } => {
            let config = aws_config(region.as_deref()).await?;
            let store = Store::new(aws_sdk_dynamodb::Client::new(&config), &name);
            if store.create_table().await? {
                println!("created state table {name}");
            } else {
                println!("state table {name} already exists");
            }
            Ok(EXIT_OK)
        }
        StateCommand::Show {
            cluster,
            table,
            account,
            region,
            format,
        } => {
            let table = table
                .or_else(|| std::env::var(crate::state::ENV_STATE_TABLE).ok())
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    CliError("no state table: pass --table or set EKS_WARDEN_STATE_TABLE".into())
                })?;
            let config = aws_config(region.as_deref()).await?;
            let account = match account {
                Some(a) => a,
                None => {
                    crate::echo::caller_identity(&config)
                        .await
                        .map_err(CliError)?
                        .0
                }
            };
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            let store = Store::new(aws_sdk_dynamodb::Client::new(&config), table);
            let v = crate::state::show(&store, &account, &region, &cluster).await?;
            match format {
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Format::Table => print!("{}", crate::state::show_table(&v)),
                other => {
                    return Err(CliError(format!(
                        "state show prints table or json, not {other:?}"
                    )))
                }
            }
            Ok(EXIT_OK)
        }
    }
}
