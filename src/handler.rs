//! The Lambda's entry, shared with `eks-warden handle`: the context built once per container (clients,
//! settings, the scopes of other accounts and regions) and the Lambda's answer. The work itself is the
//! staged pipeline of `crate::pipeline`.

use crate::collect::Clients;
use crate::remediate::Policy;
use crate::resolve::RegionIndex;
use crate::settings::Settings;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock as OnceCell};
use std::time::Duration;
use tracing::warn;

pub use crate::pipeline::{
    handle, handle_until, BatchItemFailure, Failure, Ignored, Published, RecheckSent, RunSummary,
    TargetLine, TriggerLine,
};

/// The clients of one account and region, with that region's cluster index.
pub struct Scope {
    pub clients: Clients,
    pub index: RegionIndex,
    /// Security Hub with this scope's credentials (findings are imported into their own account).
    pub hub: Option<aws_sdk_securityhub::Client>,
    /// The assumed role's credentials provider in another account: when a call there fails, asking it
    /// again tells whether the role could not be assumed, and why, in one line.
    pub assumed: Option<(String, SharedCredentialsProvider)>,
}

impl Scope {
    pub fn new(clients: Clients) -> Self {
        Scope {
            clients,
            index: RegionIndex::default(),
            hub: None,
            assumed: None,
        }
    }

    /// Why the member role cannot be assumed, if it cannot. It asks STS again, so only after a call in
    /// this scope failed: a denied or disabled scope is then reported as such, not as the call's failure.
    pub async fn assume_role_error(&self) -> Option<String> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_sdk_sts::{error::SdkError, operation::assume_role::AssumeRoleError};
        let (arn, provider) = self.assumed.as_ref()?;
        let error = provider.provide_credentials().await.err()?;
        let op = format!("sts:AssumeRole {arn}");
        Some(
            match std::error::Error::source(&error)
                .and_then(|s| s.downcast_ref::<SdkError<AssumeRoleError>>())
            {
                Some(e) => crate::collect::error_line(&op, e),
                None => format!(
                    "{op}: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&error)
                ),
            },
        )
    }

    fn with_hub(clients: Clients, config: &aws_config::SdkConfig) -> Self {
        Scope {
            hub: Some(aws_sdk_securityhub::Client::new(config)),
            ..Scope::new(clients)
        }
    }
}

/// Where delayed re-checks of settling clusters go.
#[derive(Debug, Clone)]
pub struct RecheckQueue {
    pub url: String,
    pub delay_seconds: i32,
    pub max_attempts: u32,
}

/// Built once per container and borrowed by every invocation.
pub struct Context {
    /// The function's own account and region.
    pub home: Arc<Scope>,
    pub home_region: String,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub topic_arn: Option<String>,
    pub settings: Settings,
    /// Remediation mode and opted-in rules.
    pub policy: Policy,
    pub recheck: Option<RecheckQueue>,
    /// Role name assumed in other accounts (`arn:aws:iam::<account>:role/<name>`).
    pub member_role: Option<String>,
    /// The function's own account: from the invoked function ARN, else asked of STS once, when needed.
    pub home_account: OnceCell<String>,
    /// The central exemption list, read per invocation (briefly cached) into the evaluation's settings.
    pub exemptions: Option<crate::exemptions::load::Source>,
    /// The function's own account and ARN (STS GetCallerIdentity), asked once, when first needed.
    own_identity: OnceCell<(String, String)>,
    /// The accounts the scheduled sweep covers (`None`: the schedule's own account only).
    pub member_accounts: Option<MemberAccounts>,
    /// The regions the scheduled sweep covers (empty: the schedule's own region only).
    pub regions: Vec<String>,
    /// How long before the invocation's deadline no new work starts and the rest is handed back.
    pub deadline_margin: Duration,
    /// The finding-state table (`EKS_WARDEN_STATE_TABLE`): notify on change, exactly once.
    pub state: Option<crate::state::Lifecycle>,
    /// Import every evaluation's verdicts into Security Hub (`EKS_WARDEN_SECURITY_HUB=true`).
    pub security_hub: bool,
    base: Option<aws_config::SdkConfig>,
    scopes: Mutex<HashMap<(String, String), Arc<Scope>>>,
}

pub const ENV_TOPIC_ARN: &str = "EKS_WARDEN_TOPIC_ARN";
pub const ENV_RECHECK_QUEUE_URL: &str = "EKS_WARDEN_RECHECK_QUEUE_URL";
pub const ENV_RECHECK_DELAY: &str = "EKS_WARDEN_RECHECK_DELAY_SECONDS";
pub const ENV_RECHECK_MAX_ATTEMPTS: &str = "EKS_WARDEN_RECHECK_MAX_ATTEMPTS";
pub const ENV_MEMBER_ROLE: &str = "EKS_WARDEN_MEMBER_ROLE";
pub const ENV_MEMBER_ACCOUNTS: &str = "EKS_WARDEN_MEMBER_ACCOUNTS";
pub const ENV_REGIONS: &str = "EKS_WARDEN_REGIONS";
pub const ENV_DEADLINE_MARGIN: &str = "EKS_WARDEN_DEADLINE_MARGIN_SECONDS";

/// Which accounts the scheduled sweep covers.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberAccounts {
    List(Vec<String>),
    /// Every active account of the organization (Organizations ListAccounts).
    Organization,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A setting that stops the function from starting.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Policy(#[from] crate::remediate::PolicyError),
    #[error("{0}")]
    Exemptions(String),
    #[error("{var}: {value:?} is not {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
}

impl ContextError {
    /// `value` when it is a name of `len` characters, each an ASCII letter, a digit or one of `extra`;
    /// else the error naming the variable and what it should be.
    pub(crate) fn check_name(
        var: &'static str,
        value: String,
        len: std::ops::RangeInclusive<usize>,
        extra: &str,
        expected: &str,
    ) -> Result<String, ContextError> {
        let valid = len.contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
        if valid {
            Ok(value)
        } else {
            Err(ContextError::Invalid {
                var,
                value,
                expected: expected.into(),
            })
        }
    }
}

fn number<T: std::str::FromStr>(
    var: &'static str,
    default: T,
    ok: impl Fn(&T) -> bool,
    range: &str,
) -> Result<T, ContextError> {
    match env(var) {
        None => Ok(default),
        Some(v) => match v.parse::<T>() {
            Ok(n) if ok(&n) => Ok(n),
            _ => Err(ContextError::Invalid {
                var,
                value: v,
                expected: range.to_string(),
            }),
        },
    }
}

impl Context {
    /// The function's own clients, with nothing cross-account and no re-check queue.
    pub fn new(config: &aws_config::SdkConfig, home: Clients, settings: Settings) -> Self {
        Context {
            home: Arc::new(Scope::with_hub(home, config)),
            home_region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            topic_arn: None,
            settings,
            policy: Policy::default(),
            recheck: None,
            member_role: None,
            home_account: OnceCell::new(),
            exemptions: None,
            own_identity: OnceCell::new(),
            member_accounts: None,
            regions: vec![],
            deadline_margin: Duration::from_secs(DEFAULT_DEADLINE_MARGIN_SECS),
            state: None,
            security_hub: false,
            base: Some(config.clone()),
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// Everything from the environment (docs/architecture.md, "Settings"); a bad value names its variable.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, ContextError> {
        let mut ctx = Context::new(config, Clients::new(config), Settings::from_env()?);
        ctx.topic_arn = env(ENV_TOPIC_ARN);
        ctx.policy = Policy::from_env()?;
        ctx.exemptions =
            crate::exemptions::load::Source::from_lookup(env, || aws_sdk_ssm::Client::new(config))
                .map_err(ContextError::Exemptions)?;
        ctx.state = crate::state::Lifecycle::from_env(config)?;
        if let Some(url) = env(ENV_RECHECK_QUEUE_URL) {
            ctx.recheck = Some(RecheckQueue {
                url,
                delay_seconds: number(
                    ENV_RECHECK_DELAY,
                    120,
                    |n| (0..=900).contains(n),
                    "0 to 900 seconds",
                )?,
                max_attempts: number(
                    ENV_RECHECK_MAX_ATTEMPTS,
                    5,
                    |n| (1..=20).contains(n),
                    "1 to 20",
                )?,
            });
        }
        if let Some(role) = env(ENV_MEMBER_ROLE) {
            ctx.member_role = Some(ContextError::check_name(
                ENV_MEMBER_ROLE,
                role,
                1..=64,
                "+=,.@_-",
                "an IAM role name (not an ARN)",
            )?);
        }
        ctx.member_accounts = member_accounts(env(ENV_MEMBER_ACCOUNTS))?;
        if let Some(v) = env(ENV_REGIONS) {
            for r in crate::settings::split_list(&v) {
                if !crate::pipeline::parse::valid_region(r) {
                    return Err(ContextError::Invalid {
                        var: ENV_REGIONS,
                        value: r.to_string(),
                        expected: "a list of AWS regions".into(),
                    });
                }
                ctx.regions.push(r.to_string());
            }
        }
        ctx.security_hub = match env(crate::securityhub::ENV_SECURITY_HUB).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ContextError::Invalid {
                    var: crate::securityhub::ENV_SECURITY_HUB,
                    value: other.to_string(),
                    expected: "true or false".into(),
                })
            }
        };
        ctx.deadline_margin = Duration::from_secs(number(
            ENV_DEADLINE_MARGIN,
            DEFAULT_DEADLINE_MARGIN_SECS,
            |n| (1..=600).contains(n),
            "1 to 600 seconds",
        )?);
        Ok(ctx)
    }

    /// The active accounts of the organization (Organizations ListAccounts, from the management or a
    /// delegated administrator account).
    pub(crate) async fn organization_accounts(&self) -> Result<Vec<String>, String> {
        let base = self
            .base
            .as_ref()
            .ok_or("no base configuration to ask Organizations with")?;
        let mut accounts: Vec<aws_sdk_organizations::types::Account> = Vec::new();
        let mut pages = aws_sdk_organizations::Client::new(base)
            .list_accounts()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| crate::collect::error_line("organizations:ListAccounts", &e))?;
            accounts.extend(page.accounts().iter().cloned());
        }
        Ok(accounts
            .iter()
            .filter(|a| {
                a.status()
                    .is_none_or(|s| *s == aws_sdk_organizations::types::AccountStatus::Active)
            })
            .filter_map(|a| a.id().map(str::to_string))
            .collect())
    }

    pub async fn own_account(&self) -> Result<String, String> {
        if let Some(a) = self.home_account.get() {
            return Ok(a.clone());
        }
        self.own_identity().await.map(|(account, _)| account)
    }

    /// The function's own account and ARN as STS knows them, asked once per container for every use: the
    /// home account, the echo check, the audit of the fixes made with the function's own role.
    pub async fn own_identity(&self) -> Result<(String, String), String> {
        if let Some(id) = self.own_identity.get() {
            return Ok(id.clone());
        }
        let base = self
            .base
            .as_ref()
            .ok_or("no base configuration to ask STS with")?;
        let (account, arn) = crate::echo::caller_identity(base).await?;
        let _ = self.home_account.set(account.clone());
        Ok(self.own_identity.get_or_init(|| (account, arn)).clone())
    }

    /// The settings of one invocation: the context's, with the exemption list as of today.
    pub async fn invocation_settings(&self) -> Result<Settings, String> {
        let mut settings = self.settings.clone();
        if let Some(source) = &self.exemptions {
            settings.exemptions = source.get(crate::exemptions::load::today()).await?;
        }
        Ok(settings)
    }

    /// Whether an event is the function's own fix coming back ([`crate::echo`]). When the function
    /// cannot learn its own identity, the event is evaluated: a needless evaluation loses nothing.
    pub async fn is_own_echo(&self, e: &crate::event::CloudTrailEvent) -> bool {
        if !crate::echo::is_fix_call(&e.event_source, &e.event_name) {
            return false;
        }
        let own = match self.own_identity().await {
            Ok((_, arn)) => arn,
            Err(error) => {
                warn!(%error, "own identity unknown: a possible echo is evaluated");
                return false;
            }
        };
        crate::echo::is_own_fix(e, &own, self.member_role.as_deref())
    }

    /// The clients for an event's account and region. `Ok(Err(reason))`: this deployment does not act there.
    pub(crate) async fn scope(
        &self,
        account: Option<&str>,
        region: Option<&str>,
    ) -> Result<Result<Arc<Scope>, String>, String> {
        let region = region.unwrap_or(&self.home_region).to_string();
        let foreign = match (account, &self.member_role) {
            (None, _) => None,
            (Some(a), None) => {
                // Without a member role only the home account can be read; say so when it is another one.
                match self.home_account.get() {
                    Some(home) if home != a => {
                        return Ok(Err(format!(
                        "event from account {a}: set {ENV_MEMBER_ROLE} to evaluate other accounts"
                    )))
                    }
                    _ => None,
                }
            }
            (Some(a), Some(_)) => (self.own_account().await? != a).then(|| a.to_string()),
        };
        if foreign.is_none() && region == self.home_region {
            return Ok(Ok(self.home.clone()));
        }
        let key = (foreign.clone().unwrap_or_default(), region.clone());
        if let Some(s) = self
            .scopes
            .lock()
            .map_err(|_| "scope cache poisoned")?
            .get(&key)
        {
            return Ok(Ok(s.clone()));
        }
        let base = self
            .base
            .as_ref()
            .ok_or("no base configuration for another account or region")?;
        let mut conf = base
            .to_builder()
            .region(aws_config::Region::new(region.clone()));
        let mut assumed = None;
        if let (Some(account), Some(role)) = (&foreign, &self.member_role) {
            let arn = format!("arn:aws:iam::{account}:role/{role}");
            // The clients' identity cache keeps the role's credentials until shortly before they expire.
            let provider = aws_config::sts::AssumeRoleProvider::builder(&arn)
                .session_name("eks-warden")
                .configure(base)
                .build()
                .await;
            let provider = SharedCredentialsProvider::new(provider);
            conf = conf.credentials_provider(provider.clone());
            assumed = Some((arn, provider));
        }
        let conf = conf.build();
        let scope = Arc::new(Scope {
            assumed,
            ..Scope::with_hub(Clients::new(&conf), &conf)
        });
        self.scopes
            .lock()
            .map_err(|_| "scope cache poisoned")?
            .insert(key, scope.clone());
        Ok(Ok(scope))
    }
}

/// Stop starting work this long before the invocation's deadline unless set otherwise.
pub const DEFAULT_DEADLINE_MARGIN_SECS: u64 = 20;

/// `EKS_WARDEN_MEMBER_ACCOUNTS`: account ids, or `organization`.
fn member_accounts(v: Option<String>) -> Result<Option<MemberAccounts>, ContextError> {
    let Some(v) = v else { return Ok(None) };
    if v.eq_ignore_ascii_case("organization") {
        return Ok(Some(MemberAccounts::Organization));
    }
    let mut out = Vec::new();
    for a in crate::settings::split_list(&v) {
        if !crate::pipeline::parse::valid_account(a) {
            return Err(ContextError::Invalid {
                var: ENV_MEMBER_ACCOUNTS,
                value: a.to_string(),
                expected: "12-digit account ids, or `organization`".into(),
            });
        }
        out.push(a.to_string());
    }
    Ok(Some(MemberAccounts::List(out)))
}

/// What the Lambda returns. An SQS batch always answers with its `batchItemFailures` (partial batch
/// response); any other payload fails the invocation when something in it failed, so it is retried.
/// An unreadable payload is logged and dropped: retrying it can never succeed.
pub async fn lambda_response(ctx: &Context, payload: &Value) -> Result<Value, String> {
    lambda_response_until(ctx, payload, None).await
}

/// [`lambda_response`] bounded by the invocation's deadline: nothing starts within the context's margin
/// of it, and what is cut off fails its records.
pub async fn lambda_response_until(
    ctx: &Context,
    payload: &Value,
    deadline: Option<std::time::SystemTime>,
) -> Result<Value, String> {
    let cutoff = deadline.map(|d| {
        let left = d
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        // Keep at least a fifth of the time left for the work itself when the margin would eat it all.
        let margin = ctx.deadline_margin.min(left.mul_f64(0.8));
        tokio::time::Instant::now() + left.saturating_sub(margin)
    });
    let started = std::time::Instant::now();
    // Boxed: the pipeline's future is deep, and the runtime's own future must stay small.
    let run = match Box::pin(handle_until(ctx, payload, cutoff)).await {
        Ok(run) => run,
        Err(e) => {
            warn!(error = %e, "unreadable payload dropped");
            return Ok(serde_json::json!({"ignored": [{"reason": e.to_string()}]}));
        }
    };
    // Metrics go to the Lambda's log only (embedded metric format); `eks-warden handle` prints none.
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        crate::metrics::from_run(&run, started.elapsed(), &function).flush();
    }
    if payload.get("Records").is_some() {
        return Ok(serde_json::json!({"batchItemFailures": run.batch_item_failures}));
    }
    if run.failed() {
        let errors: Vec<String> = run
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.what, f.error))
            .collect();
        return Err(errors.join("; "));
    }
    serde_json::to_value(&run).map_err(|e| e.to_string())
}
