//! The Lambda's code path, shared with `eks-warden handle`: payload → triggers → clusters (coalesced) →
//! evaluation → SNS, with failures reported per SQS record so nothing else is retried and nothing is lost.

use crate::collect::{self, Clients, CollectError};
use crate::event::{parse_payload, PayloadError, Trigger};
use crate::remediate::{remediate, Policy};
use crate::route::{RegionIndex, Resolver};
use crate::scan::{evaluate_cluster, ClusterReport, CLUSTER_CONCURRENCY};
use crate::settings::Settings;
use futures::{stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock as OnceCell};
use tracing::{info, warn};

/// The clients of one account and region, with that region's cluster index.
pub struct Scope {
    pub clients: Clients,
    pub index: RegionIndex,
}

impl Scope {
    pub fn new(clients: Clients) -> Self {
        Scope {
            clients,
            index: RegionIndex::default(),
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
    /// The finding-state table (`EKS_WARDEN_STATE_TABLE`): notify on change, exactly once.
    pub state: Option<crate::state::Lifecycle>,
    base: Option<aws_config::SdkConfig>,
    scopes: Mutex<HashMap<(String, String), Arc<Scope>>>,
}

pub const ENV_TOPIC_ARN: &str = "EKS_WARDEN_TOPIC_ARN";
pub const ENV_RECHECK_QUEUE_URL: &str = "EKS_WARDEN_RECHECK_QUEUE_URL";
pub const ENV_RECHECK_DELAY: &str = "EKS_WARDEN_RECHECK_DELAY_SECONDS";
pub const ENV_RECHECK_MAX_ATTEMPTS: &str = "EKS_WARDEN_RECHECK_MAX_ATTEMPTS";
pub const ENV_MEMBER_ROLE: &str = "EKS_WARDEN_MEMBER_ROLE";

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
    #[error("{var}: {value:?} is not {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
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
            home: Arc::new(Scope::new(home)),
            home_region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            topic_arn: None,
            settings,
            policy: Policy::default(),
            recheck: None,
            member_role: None,
            home_account: OnceCell::new(),
            state: None,
            base: Some(config.clone()),
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// Everything from the environment (docs/architecture.md, "Settings"); a bad value names its variable.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, ContextError> {
        let mut ctx = Context::new(config, Clients::new(config), Settings::from_env()?);
        ctx.topic_arn = env(ENV_TOPIC_ARN);
        ctx.policy = Policy::from_env()?;
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
            let valid = role.len() <= 64
                && role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !valid {
                return Err(ContextError::Invalid {
                    var: ENV_MEMBER_ROLE,
                    value: role,
                    expected: "an IAM role name (not an ARN)".into(),
                });
            }
            ctx.member_role = Some(role);
        }
        Ok(ctx)
    }

    pub async fn own_account(&self) -> Result<String, String> {
        if let Some(a) = self.home_account.get() {
            return Ok(a.clone());
        }
        let base = self
            .base
            .as_ref()
            .ok_or("no base configuration to ask STS with")?;
        let id = aws_sdk_sts::Client::new(base)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| crate::collect::error_line("sts:GetCallerIdentity", &e))?;
        let account = id
            .account()
            .ok_or("sts:GetCallerIdentity returned no account")?
            .to_string();
        Ok(self.home_account.get_or_init(|| account).clone())
    }

    /// The clients for an event's account and region. `Ok(Err(reason))`: this deployment does not act there.
    async fn scope(
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
        if let (Some(account), Some(role)) = (&foreign, &self.member_role) {
            let arn = format!("arn:aws:iam::{account}:role/{role}");
            // The provider caches the role's credentials until shortly before they expire.
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                .session_name("eks-warden")
                .configure(base)
                .build()
                .await;
            conf = conf.credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            );
        }
        let scope = Arc::new(Scope::new(Clients::new(&conf.build())));
        self.scopes
            .lock()
            .map_err(|_| "scope cache poisoned")?
            .insert(key, scope.clone());
        Ok(Ok(scope))
    }
}

/// What the Lambda returns. An SQS batch always answers with its `batchItemFailures` (partial batch
/// response); any other payload fails the invocation when something in it failed, so it is retried.
/// An unreadable payload is logged and dropped: retrying it can never succeed.
pub async fn lambda_response(ctx: &Context, payload: &Value) -> Result<Value, String> {
    let run = match handle(ctx, payload).await {
        Ok(run) => run,
        Err(e) => {
            warn!(error = %e, "unreadable payload dropped");
            return Ok(serde_json::json!({"ignored": [{"reason": e.to_string()}]}));
        }
    };
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

#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// When this run was made (RFC 3339, UTC) and by which version.
    pub generated_at: String,
    pub version: &'static str,
    pub triggers: Vec<TriggerLine>,
    pub ignored: Vec<Ignored>,
    /// Clusters evaluated, once each however many records named them.
    pub evaluated: Vec<String>,
    pub clusters: Vec<ClusterReport>,
    pub published: Vec<Published>,
    pub failures: Vec<Failure>,
    /// Re-checks queued for clusters that were still settling.
    pub rechecks: Vec<RecheckSent>,
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize)]
pub struct TriggerLine {
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub clusters: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Ignored {
    pub id: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Published {
    pub cluster: String,
    pub message_id: String,
    /// `change`, `reminder` or `full` (no state table).
    pub notification: String,
    pub subject: String,
}

#[derive(Debug, Serialize)]
pub struct RecheckSent {
    pub cluster: String,
    pub attempt: u32,
    pub delay_seconds: i32,
    pub message_id: String,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub what: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl RunSummary {
    /// True when the invocation must report failure (some record is to be retried, or a direct
    /// invoke could not be completed).
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

/// Where one cluster's evaluation came from: the triggers that named it and their SQS records.
struct Named {
    scope: Arc<Scope>,
    triggers: Vec<Trigger>,
    messages: BTreeSet<String>,
    /// The highest re-check attempt among the triggers (0 when none was a re-check).
    attempt: u32,
}

/// A cluster in an account and region; the home account is `""` so that every way of naming it agrees.
type Target = (String, String, String);

/// Where a trigger led: the scope and clusters to evaluate, or why it is ignored.
type Routed = Result<(Arc<Scope>, BTreeSet<String>), String>;

/// Statuses after which the cluster's settings will change without another API call.
const SETTLING: &[&str] = &["CREATING", "UPDATING", "PENDING"];

pub async fn handle(ctx: &Context, payload: &Value) -> Result<RunSummary, PayloadError> {
    let items = parse_payload(payload)?;
    let mut run = RunSummary {
        generated_at: crate::state::rfc3339(std::time::SystemTime::now()),
        version: env!("CARGO_PKG_VERSION"),
        ..RunSummary::default()
    };
    let mut wanted: BTreeMap<Target, Named> = BTreeMap::new();
    let mut failed_messages: BTreeSet<String> = BTreeSet::new();

    for item in items {
        let trigger = match item.trigger {
            Ok(t) => t,
            Err(reason) => {
                // A poison message: dropped with its reason, never retried.
                warn!(message_id = ?item.message_id, %reason, "ignored input");
                run.ignored.push(Ignored {
                    id: item.message_id.clone().unwrap_or_default(),
                    reason,
                    message_id: item.message_id,
                });
                continue;
            }
        };
        let (account, region) = match &trigger {
            Trigger::CloudTrail(e) => (e.account.clone(), e.region.clone()),
            Trigger::Schedule { account, region } => (account.clone(), region.clone()),
            Trigger::Recheck(r) => (Some(r.account.clone()), Some(r.region.clone())),
            Trigger::Direct { .. } => (None, None),
        };
        let routed: Result<Routed, String> = async {
            if let Trigger::CloudTrail(e) = &trigger {
                if let Some(code) = &e.error_code {
                    return Ok(Err(format!("the call failed ({code}): nothing changed")));
                }
            }
            let scope = match ctx.scope(account.as_deref(), region.as_deref()).await? {
                Ok(s) => s,
                Err(reason) => return Ok(Err(reason)),
            };
            let names = match &trigger {
                Trigger::CloudTrail(e) => {
                    Resolver {
                        clients: &scope.clients,
                        index: &scope.index,
                    }
                    .resolve(e)
                    .await?
                }
                Trigger::Direct { clusters } => Ok(clusters.iter().cloned().collect()),
                Trigger::Recheck(r) => Ok([r.cluster.clone()].into()),
                Trigger::Schedule { .. } => {
                    let all = collect::list_clusters(&scope.clients)
                        .await
                        .map_err(|e| e.to_string())?;
                    if all.is_empty() {
                        Err("no clusters in the region".to_string())
                    } else {
                        Ok(all.into_iter().collect())
                    }
                }
            };
            Ok(names.map(|n| (scope, n)))
        }
        .await;
        match routed {
            Ok(Ok((scope, names))) => {
                info!(trigger = %trigger.id(), clusters = ?names, "routed");
                run.triggers.push(TriggerLine {
                    kind: trigger.kind(),
                    id: trigger.id(),
                    message_id: item.message_id.clone(),
                    clusters: names.iter().cloned().collect(),
                });
                let home = Arc::ptr_eq(&scope, &ctx.home);
                let attempt = match &trigger {
                    Trigger::Recheck(r) => r.attempt,
                    _ => 0,
                };
                for n in names {
                    let key = (
                        if home {
                            String::new()
                        } else {
                            account.clone().unwrap_or_default()
                        },
                        region.clone().unwrap_or_else(|| ctx.home_region.clone()),
                        n,
                    );
                    let named = wanted.entry(key).or_insert_with(|| Named {
                        scope: scope.clone(),
                        triggers: vec![],
                        messages: BTreeSet::new(),
                        attempt: 0,
                    });
                    named.triggers.push(trigger.clone());
                    named.messages.extend(item.message_id.clone());
                    named.attempt = named.attempt.max(attempt);
                }
            }
            Ok(Err(reason)) => {
                info!(trigger = %trigger.id(), %reason, "ignored");
                run.ignored.push(Ignored {
                    id: trigger.id(),
                    reason,
                    message_id: item.message_id,
                });
            }
            Err(error) => {
                warn!(trigger = %trigger.id(), %error, "could not route");
                failed_messages.extend(item.message_id.clone());
                run.failures.push(Failure {
                    what: format!("route {}", trigger.id()),
                    error,
                });
            }
        }
    }

    // Each cluster once, whatever the number of records that named it.
    let settings = &ctx.settings;
    let outcomes: Vec<(Target, Result<ClusterReport, CollectError>)> = stream::iter(wanted.iter())
        .map(|(key, named)| async move {
            let r = evaluate_cluster(&named.scope.clients, &key.2, settings).await;
            (key.clone(), r)
        })
        .buffer_unordered(CLUSTER_CONCURRENCY)
        .collect()
        .await;
    for (key, outcome) in outcomes {
        let named = &wanted[&key];
        let name = &key.2;
        match outcome {
            Ok(report) if report.status == "DELETING" => {
                // A cluster on its way out: its findings would only be noise, and nothing is left to fix.
                // With a state table it is re-checked until it is gone, when its findings are resolved.
                run.ignored.push(Ignored {
                    id: name.clone(),
                    reason: format!("cluster {name} is being deleted"),
                    message_id: None,
                });
                if ctx.state.is_some() {
                    if let Err(error) = recheck(ctx, &report, named.attempt + 1, &mut run).await {
                        failed_messages.extend(named.messages.iter().cloned());
                        run.failures.push(Failure {
                            what: format!("re-check {name}"),
                            error,
                        });
                    }
                }
            }
            Ok(mut report) => {
                run.evaluated.push(name.clone());
                let mut again = SETTLING.contains(&report.status.as_str());
                if ctx.policy.active() {
                    match remediate(
                        &named.scope.clients,
                        name,
                        &report.results,
                        settings,
                        &ctx.policy,
                    )
                    .await
                    {
                        Ok(pass) => {
                            report.remediations = pass.remediations;
                            again |= pass.recheck;
                        }
                        Err(e) => {
                            // The fresh read failed: retry the records rather than lose the fix.
                            failed_messages.extend(named.messages.iter().cloned());
                            run.failures.push(Failure {
                                what: format!("remediate {name}"),
                                error: e.to_string(),
                            });
                        }
                    }
                }
                let mut result =
                    crate::state::record_and_notify(ctx, &report, &named.triggers, &mut run).await;
                if result.is_ok() && again {
                    result = recheck(ctx, &report, named.attempt + 1, &mut run).await;
                }
                if let Err(error) = result {
                    failed_messages.extend(named.messages.iter().cloned());
                    run.failures.push(Failure {
                        what: format!("notify {name}"),
                        error,
                    });
                }
                run.clusters.push(report);
            }
            Err(CollectError::ClusterNotFound(_)) => {
                run.ignored.push(Ignored {
                    id: name.clone(),
                    reason: format!("cluster {name} no longer exists"),
                    message_id: None,
                });
                if let Err(error) = gone(ctx, &key, &named.triggers, &mut run).await {
                    failed_messages.extend(named.messages.iter().cloned());
                    run.failures.push(Failure {
                        what: format!("resolve {name}"),
                        error,
                    });
                }
            }
            Err(e) => {
                warn!(cluster = %name, error = %e, "evaluation failed");
                failed_messages.extend(named.messages.iter().cloned());
                run.failures.push(Failure {
                    what: format!("evaluate {name}"),
                    error: e.to_string(),
                });
            }
        }
    }
    run.evaluated.sort();
    run.clusters.sort_by(|a, b| {
        (&a.account, &a.region, &a.cluster).cmp(&(&b.account, &b.region, &b.cluster))
    });
    run.batch_item_failures = failed_messages
        .into_iter()
        .map(|m| BatchItemFailure { item_identifier: m })
        .collect();
    Ok(run)
}

/// Queues a delayed re-check of a cluster that is still settling, up to the attempt limit.
async fn recheck(
    ctx: &Context,
    report: &ClusterReport,
    attempt: u32,
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(q) = &ctx.recheck else { return Ok(()) };
    if attempt > q.max_attempts {
        run.ignored.push(Ignored {
            id: report.cluster.clone(),
            reason: format!(
                "still {} after {} re-checks: no further re-check",
                report.status, q.max_attempts
            ),
            message_id: None,
        });
        return Ok(());
    }
    let body = serde_json::json!({
        "kind": "recheck", "account": report.account, "region": report.region,
        "cluster": report.cluster, "attempt": attempt,
    });
    let out = ctx
        .sqs
        .send_message()
        .queue_url(&q.url)
        .message_body(body.to_string())
        .delay_seconds(q.delay_seconds)
        .send()
        .await
        .map_err(|e| crate::collect::error_line("SQS SendMessage (re-check)", &e))?;
    run.rechecks.push(RecheckSent {
        cluster: report.cluster.clone(),
        attempt,
        delay_seconds: q.delay_seconds,
        message_id: out.message_id().unwrap_or_default().to_string(),
    });
    Ok(())
}

/// A cluster that no longer exists: its recorded findings are resolved and its state removed.
async fn gone(
    ctx: &Context,
    key: &Target,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    if ctx.state.is_none() {
        return Ok(());
    }
    let account = if key.0.is_empty() {
        ctx.own_account().await?
    } else {
        key.0.clone()
    };
    crate::state::cluster_gone(ctx, &account, &key.1, &key.2, triggers, run).await
}
