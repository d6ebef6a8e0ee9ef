//! The DynamoDB adapter: the only code that speaks to the state table.
//!
//! One partition per cluster, `pk = CLUSTER#<partition>#<account>#<region>#<cluster>`, with items by `sk`:
//! * `STATE` — the open findings (JSON), `version` for optimistic concurrency, when the cluster was last
//!   notified;
//! * `PENDING#<id>` — a message written before it is published and deleted after;
//! * `AUDIT#<time>#<id>` — one applied fix, kept `EKS_WARDEN_AUDIT_DAYS`.
//!
//! Pending messages and audit entries are items of their own so that no item nears the 400 KB limit.
//! `expires_at` (epoch seconds) is the table's TTL attribute.

use super::diff::OpenFinding;
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemError, put_item::PutItemError, update_item::UpdateItemError,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Put, ScalarAttributeType, SseSpecification,
    TimeToLiveSpecification, TransactWriteItem,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The table's schema, shared by `eks-warden state create-table` and checked against template.yaml.
pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";
pub const STATE_SK: &str = "STATE";
pub const PENDING_PREFIX: &str = "PENDING#";
pub const AUDIT_PREFIX: &str = "AUDIT#";

/// A STATE item is written again on every evaluation; a cluster not evaluated for this long is forgotten
/// (the sweep evaluates every listed cluster several times a day).
pub const STATE_TTL_DAYS: i64 = 30;
/// The open findings of one STATE item, as JSON: far below DynamoDB's 400 KB item limit.
pub const MAX_FINDINGS_BYTES: usize = 300 * 1024;
/// An unpublished message is kept this long at most.
pub const PENDING_TTL_DAYS: i64 = 14;

pub fn cluster_pk(account: &str, region: &str, cluster: &str) -> String {
    format!(
        "CLUSTER#{}#{account}#{region}#{cluster}",
        crate::finding::partition(region)
    )
}

/// What the STATE item holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub version: i64,
    pub open: BTreeMap<String, OpenFinding>,
    /// When the last message about this cluster went out (RFC 3339), if ever.
    pub last_notified: Option<String>,
    pub cluster_arn: String,
}

/// A message as stored before it is published: exactly what will be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// `change`, `reminder` or `full`.
    pub notification: String,
    pub subject: String,
    pub body: String,
    /// (name, data type, string value) of each message attribute.
    pub attributes: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub sk: String,
    pub message: StoredMessage,
    /// The invocation that wrote (or last claimed) it; only it publishes.
    pub owner: String,
    /// Epoch seconds when written or last claimed.
    pub claimed_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub sk: String,
    /// RFC 3339.
    pub at: String,
    /// The remediation as JSON: rule, resource, outcome, the exact action (the revoked rule in full, the
    /// previous setting), the role that made it.
    pub entry: serde_json::Value,
}

/// Everything stored for one cluster, read with one Query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub state: Option<State>,
    pub pending: Vec<Pending>,
    pub audit: Vec<AuditEntry>,
}

/// The outcome of a conditional write.
#[derive(Debug)]
pub enum WriteError {
    /// Someone else wrote first (the version moved, or the item already exists): re-read and re-diff.
    Conflict,
    Failed(String),
}

/// What one conditional write stores.
pub struct Commit<'a> {
    /// The version read (`None`: no STATE item existed).
    pub expected: Option<i64>,
    /// The next state, or `None` to delete it (the cluster is gone).
    pub next: Option<&'a State>,
    pub pending: Option<&'a Pending>,
    pub audit: &'a [AuditEntry],
    pub now_epoch: i64,
    pub audit_days: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn line<E, R>(op: &str, e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    crate::collect::error_line(op, e)
}

/// A conditional write's answer: its condition failing means someone else wrote first
/// ([`WriteError::Conflict`]); any other error is the line naming `op`.
fn conditional<T, E, R>(
    op: &str,
    sent: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    condition_failed: impl Fn(&E) -> bool,
) -> Result<(), WriteError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(&condition_failed) => Err(WriteError::Conflict),
        Err(e) => Err(WriteError::Failed(line(op, &e))),
    }
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
        }
    }

    /// Every item of one cluster, with a strongly consistent Query (one call unless the audit trail is long).
    pub async fn load(&self, pk: &str) -> Result<Loaded, String> {
        let mut out = Loaded::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| line("DynamoDB Query", &e))?;
            for item in page.items() {
                parse_item(item, &mut out)?;
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The state, the pending message and the audit entries in one transaction, conditional on the version
    /// read: of two invocations racing on one cluster exactly one succeeds.
    pub async fn commit(&self, pk: &str, c: Commit<'_>) -> Result<(), WriteError> {
        let mut items = Vec::new();
        let version_cond = |b: aws_sdk_dynamodb::types::builders::PutBuilder| match c.expected {
            None => b.condition_expression("attribute_not_exists(pk)"),
            Some(v) => b
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        let build_err = |e: aws_smithy_types::error::operation::BuildError| {
            WriteError::Failed(format!("DynamoDB request: {e}"))
        };
        match c.next {
            Some(state) => {
                let put = version_cond(self.state_put(pk, state, c.now_epoch)?)
                    .build()
                    .map_err(build_err)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            None => {
                let Some(v) = c.expected else {
                    return Err(WriteError::Failed("no state to delete".into()));
                };
                let del = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(STATE_SK))
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", n(v))
                    .build()
                    .map_err(build_err)?;
                items.push(TransactWriteItem::builder().delete(del).build());
            }
        }
        if let Some(p) = c.pending {
            let message =
                serde_json::to_string(&p.message).map_err(|e| WriteError::Failed(e.to_string()))?;
            let item = HashMap::from([
                ("pk".to_string(), s(pk)),
                ("sk".to_string(), s(&p.sk)),
                ("message".to_string(), s(message)),
                ("owner".to_string(), s(&p.owner)),
                ("claimed_at".to_string(), n(p.claimed_at)),
                (
                    TTL_ATTRIBUTE.to_string(),
                    n(c.now_epoch + PENDING_TTL_DAYS * 86_400),
                ),
            ]);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for a in c.audit {
            let item = HashMap::from([
                ("pk".to_string(), s(pk)),
                ("sk".to_string(), s(&a.sk)),
                ("at".to_string(), s(&a.at)),
                ("entry".to_string(), s(a.entry.to_string())),
                (
                    TTL_ATTRIBUTE.to_string(),
                    n(c.now_epoch + c.audit_days * 86_400),
                ),
            ]);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if items.len() == 1 {
            return self.write_one(items.remove(0)).await;
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as T;
                if let Some(T::TransactionCanceledException(c)) = e.as_service_error() {
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        return Err(WriteError::Conflict);
                    }
                }
                Err(WriteError::Failed(line("DynamoDB TransactWriteItems", &e)))
            }
        }
    }

    /// The STATE item, without its condition.
    fn state_put(
        &self,
        pk: &str,
        state: &State,
        now_epoch: i64,
    ) -> Result<aws_sdk_dynamodb::types::builders::PutBuilder, WriteError> {
        let findings = findings_json(&state.open)?;
        let mut item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(STATE_SK)),
            ("version".to_string(), n(state.version)),
            ("findings".to_string(), s(findings)),
            ("cluster_arn".to_string(), s(&state.cluster_arn)),
            (
                TTL_ATTRIBUTE.to_string(),
                n(now_epoch + STATE_TTL_DAYS * 86_400),
            ),
        ]);
        if let Some(t) = &state.last_notified {
            item.insert("last_notified".into(), s(t));
        }
        Ok(Put::builder().table_name(&self.table).set_item(Some(item)))
    }

    /// A single conditional Put or Delete: the same guarantee as a transaction, at half its cost.
    async fn write_one(&self, item: TransactWriteItem) -> Result<(), WriteError> {
        if let Some(p) = item.put {
            let mut req = self
                .client
                .put_item()
                .table_name(p.table_name)
                .set_item(Some(p.item))
                .set_condition_expression(p.condition_expression)
                .set_expression_attribute_values(p.expression_attribute_values);
            if let Some(names) = p.expression_attribute_names {
                req = req.set_expression_attribute_names(Some(names));
            }
            return conditional(
                "DynamoDB PutItem",
                req.send().await,
                PutItemError::is_conditional_check_failed_exception,
            );
        }
        if let Some(d) = item.delete {
            let sent = self
                .client
                .delete_item()
                .table_name(d.table_name)
                .set_key(Some(d.key))
                .set_condition_expression(d.condition_expression)
                .set_expression_attribute_values(d.expression_attribute_values)
                .send()
                .await;
            return conditional(
                "DynamoDB DeleteItem",
                sent,
                DeleteItemError::is_conditional_check_failed_exception,
            );
        }
        Err(WriteError::Failed("nothing to write".into()))
    }

    /// Takes over a pending message another invocation left behind: true when this one now owns it.
    pub async fn claim(
        &self,
        pk: &str,
        p: &Pending,
        me: &str,
        now_epoch: i64,
    ) -> Result<bool, String> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(&p.sk))
            .update_expression("SET #o = :me, claimed_at = :now")
            .condition_expression("#o = :was AND claimed_at = :at")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":now", n(now_epoch))
            .expression_attribute_values(":was", s(&p.owner))
            .expression_attribute_values(":at", n(p.claimed_at))
            .send()
            .await;
        match conditional(
            "DynamoDB UpdateItem (claim)",
            out,
            UpdateItemError::is_conditional_check_failed_exception,
        ) {
            Ok(()) => Ok(true),
            Err(WriteError::Conflict) => Ok(false),
            Err(WriteError::Failed(e)) => Err(e),
        }
    }

    /// Clears a published message.
    pub async fn delete_pending(&self, pk: &str, sk: &str) -> Result<(), String> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| line("DynamoDB DeleteItem (pending)", &e))?;
        Ok(())
    }

    /// Creates the state table (on-demand, encrypted, point-in-time recovery, TTL on `expires_at`).
    /// `Ok(false)` when it already exists: the command is idempotent.
    pub async fn create_table(&self) -> Result<bool, String> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| e.to_string())
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(|e| e.to_string())
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(SORT_KEY)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(line("DynamoDB CreateTable", &e)),
        }
        use aws_sdk_dynamodb::client::Waiters;
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(std::time::Duration::from_secs(300))
            .await
            .map_err(|e| format!("DynamoDB table {} did not become active: {e}", self.table))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| line("DynamoDB UpdateTimeToLive", &e))?;
        self.client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| line("DynamoDB UpdateContinuousBackups", &e))?;
        Ok(true)
    }
}

/// The open findings as stored. Past [`MAX_FINDINGS_BYTES`] their messages are dropped (ids, rules,
/// resources and severities are what a later diff needs); past that again the write fails with the reason
/// rather than hitting DynamoDB's 400 KB item limit.
fn findings_json(open: &BTreeMap<String, OpenFinding>) -> Result<String, WriteError> {
    let text = serde_json::to_string(open).map_err(|e| WriteError::Failed(e.to_string()))?;
    if text.len() <= MAX_FINDINGS_BYTES {
        return Ok(text);
    }
    let bare: BTreeMap<&String, OpenFinding> = open
        .iter()
        .map(|(k, f)| {
            (
                k,
                OpenFinding {
                    message: String::new(),
                    ..f.clone()
                },
            )
        })
        .collect();
    let text = serde_json::to_string(&bare).map_err(|e| WriteError::Failed(e.to_string()))?;
    if text.len() <= MAX_FINDINGS_BYTES {
        Ok(text)
    } else {
        Err(WriteError::Failed(format!(
            "{} open findings need {} KB, more than a state item may hold ({} KB)",
            open.len(),
            text.len() / 1024,
            MAX_FINDINGS_BYTES / 1024
        )))
    }
}

/// One item of a cluster's partition into `out`; an item we cannot read is an error, not a silent default.
fn parse_item(item: &HashMap<String, AttributeValue>, out: &mut Loaded) -> Result<(), String> {
    let sk = get_s(item, "sk").unwrap_or_default();
    if sk == STATE_SK {
        let findings = get_s(item, "findings").unwrap_or("{}");
        let open = serde_json::from_str(findings)
            .map_err(|e| format!("state item: unreadable findings: {e}"))?;
        out.state = Some(State {
            version: get_n(item, "version").ok_or("state item without a version")?,
            open,
            last_notified: get_s(item, "last_notified").map(str::to_string),
            cluster_arn: get_s(item, "cluster_arn").unwrap_or_default().to_string(),
        });
    } else if sk.starts_with(PENDING_PREFIX) {
        let message = serde_json::from_str(get_s(item, "message").unwrap_or_default())
            .map_err(|e| format!("pending item {sk}: unreadable message: {e}"))?;
        out.pending.push(Pending {
            sk: sk.to_string(),
            message,
            owner: get_s(item, "owner").unwrap_or_default().to_string(),
            claimed_at: get_n(item, "claimed_at").unwrap_or(0),
        });
    } else if sk.starts_with(AUDIT_PREFIX) {
        out.audit.push(AuditEntry {
            sk: sk.to_string(),
            at: get_s(item, "at").unwrap_or_default().to_string(),
            entry: serde_json::from_str(get_s(item, "entry").unwrap_or("null"))
                .unwrap_or(serde_json::Value::Null),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ResourceType, Severity, Status};

    fn open(n: usize, message: &str) -> BTreeMap<String, OpenFinding> {
        (0..n)
            .map(|i| {
                (
                    format!("ewf-{i:032x}"),
                    OpenFinding {
                        rule_id: "nodes-imdsv1".into(),
                        resource_type: ResourceType::Instance,
                        resource_id: format!("i-{i:017x}"),
                        severity: Severity::High,
                        status: Status::Fail,
                        message: message.into(),
                        first_seen: "2026-12-02T06:00:00Z".into(),
                        last_seen: "2026-12-02T06:00:00Z".into(),
                    },
                )
            })
            .collect()
    }

    /// Guards the 400 KB item limit: a storm of findings sheds messages, then fails with a reason.
    #[test]
    fn the_state_item_stays_below_the_item_limit() {
        let small = findings_json(&open(10, "m")).unwrap();
        assert!(small.contains("\"message\":\"m\""));
        let many = findings_json(&open(1200, &"x".repeat(300))).unwrap();
        assert!(many.len() <= MAX_FINDINGS_BYTES && many.contains("\"message\":\"\""));
        assert!(matches!(
            findings_json(&open(5000, "m")),
            Err(WriteError::Failed(e)) if e.contains("5000 open findings")
        ));
    }

    #[test]
    fn the_key_names_partition_account_region_and_cluster() {
        assert_eq!(
            cluster_pk("111122223333", "cn-north-1", "prod"),
            "CLUSTER#aws-cn#111122223333#cn-north-1#prod"
        );
    }
}
