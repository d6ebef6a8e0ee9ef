//! The Lambda's code path, shared with `eks-warden handle`: payload → triggers → clusters (coalesced) →
//! evaluation → SNS, with failures reported per SQS record so nothing else is retried and nothing is lost.

use crate::collect::{self, Clients, CollectError};
use crate::event::{parse_payload, PayloadError, Trigger};
use crate::notify;
use crate::route::{RegionIndex, Resolver};
use crate::scan::{evaluate_cluster, ClusterReport, CLUSTER_CONCURRENCY};
use crate::settings::Settings;
use futures::{stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// Built once per container and borrowed by every invocation.
pub struct Context {
    pub clients: Clients,
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: Option<String>,
    pub settings: Settings,
    pub index: RegionIndex,
}

pub const ENV_TOPIC_ARN: &str = "EKS_WARDEN_TOPIC_ARN";

impl Context {
    /// Clients for the function's own account and region, settings from the environment.
    pub fn from_env(
        config: &aws_config::SdkConfig,
    ) -> Result<Self, crate::settings::SettingsError> {
        Ok(Context {
            clients: Clients::new(config),
            sns: aws_sdk_sns::Client::new(config),
            topic_arn: std::env::var(ENV_TOPIC_ARN).ok().filter(|t| !t.is_empty()),
            settings: Settings::from_env()?,
            index: RegionIndex::default(),
        })
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
    pub triggers: Vec<TriggerLine>,
    pub ignored: Vec<Ignored>,
    /// Clusters evaluated, once each however many records named them.
    pub evaluated: Vec<String>,
    pub clusters: Vec<ClusterReport>,
    pub published: Vec<Published>,
    pub failures: Vec<Failure>,
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
#[derive(Default)]
struct Named {
    triggers: Vec<Trigger>,
    messages: BTreeSet<String>,
}

pub async fn handle(ctx: &Context, payload: &Value) -> Result<RunSummary, PayloadError> {
    let items = parse_payload(payload)?;
    let mut run = RunSummary::default();
    let mut wanted: BTreeMap<String, Named> = BTreeMap::new();
    let mut failed_messages: BTreeSet<String> = BTreeSet::new();
    let resolver = Resolver {
        clients: &ctx.clients,
        index: &ctx.index,
    };

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
        let clusters: Result<Result<BTreeSet<String>, String>, String> = match &trigger {
            Trigger::CloudTrail(e) if e.error_code.is_some() => Ok(Err(format!(
                "the call failed ({}): nothing changed",
                e.error_code.as_deref().unwrap_or_default()
            ))),
            Trigger::CloudTrail(e) => resolver.resolve(e).await,
            Trigger::Direct { clusters } => Ok(Ok(clusters.iter().cloned().collect())),
            Trigger::Recheck(r) => Ok(Ok([r.cluster.clone()].into())),
            Trigger::Schedule { .. } => collect::list_clusters(&ctx.clients)
                .await
                .map(|c| {
                    if c.is_empty() {
                        Err("no clusters in the region".to_string())
                    } else {
                        Ok(c.into_iter().collect())
                    }
                })
                .map_err(|e| e.to_string()),
        };
        match clusters {
            Ok(Ok(names)) => {
                info!(trigger = %trigger.id(), clusters = ?names, "routed");
                run.triggers.push(TriggerLine {
                    kind: trigger.kind(),
                    id: trigger.id(),
                    message_id: item.message_id.clone(),
                    clusters: names.iter().cloned().collect(),
                });
                for n in names {
                    let named = wanted.entry(n).or_default();
                    named.triggers.push(trigger.clone());
                    named.messages.extend(item.message_id.clone());
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
    let outcomes: Vec<(String, Result<ClusterReport, CollectError>)> =
        stream::iter(wanted.keys().cloned())
            .map(|name| async move {
                let r = evaluate_cluster(&ctx.clients, &name, settings).await;
                (name, r)
            })
            .buffer_unordered(CLUSTER_CONCURRENCY)
            .collect()
            .await;
    for (name, outcome) in outcomes {
        let named = &wanted[&name];
        match outcome {
            Ok(report) => {
                run.evaluated.push(name.clone());
                if let Err(error) = publish(ctx, &report, &named.triggers, &mut run).await {
                    failed_messages.extend(named.messages.iter().cloned());
                    run.failures.push(Failure {
                        what: format!("publish {name}"),
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
    run.clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    run.batch_item_failures = failed_messages
        .into_iter()
        .map(|m| BatchItemFailure { item_identifier: m })
        .collect();
    Ok(run)
}

async fn publish(
    ctx: &Context,
    report: &ClusterReport,
    triggers: &[Trigger],
    run: &mut RunSummary,
) -> Result<(), String> {
    let Some(topic) = &ctx.topic_arn else {
        return Ok(());
    };
    let Some(msg) = notify::message(report, triggers) else {
        return Ok(());
    };
    let mut req = ctx
        .sns
        .publish()
        .topic_arn(topic)
        .subject(msg.subject)
        .message(msg.body)
        .message_structure("json");
    for (k, v) in msg.attributes {
        req = req.message_attributes(k, v);
    }
    let out = req.send().await.map_err(|e| {
        format!(
            "SNS Publish: {}",
            aws_smithy_types::error::display::DisplayErrorContext(e)
        )
    })?;
    run.published.push(Published {
        cluster: report.cluster.clone(),
        message_id: out.message_id().unwrap_or_default().to_string(),
    });
    Ok(())
}
