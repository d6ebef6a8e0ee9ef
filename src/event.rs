//! Payloads → triggers. Tolerant of every real CloudTrail shape: only `eventSource` and `eventName` are
//! required; everything else is optional, and nothing here panics on input.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing to act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// A CloudTrail record delivered by EventBridge.
    CloudTrail(Box<CloudTrailEvent>),
    /// The scheduled full sweep of the region.
    Schedule {
        account: Option<String>,
        region: Option<String>,
    },
    /// A direct invoke naming clusters.
    Direct { clusters: Vec<String> },
    /// A delayed re-check of a cluster that was settling.
    Recheck(Recheck),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recheck {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub attempt: u32,
    /// `sweep` when the scheduled sweep fanned this cluster out: reminders are due only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// The parts of a CloudTrail record the router and the notifications use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudTrailEvent {
    /// `eks.amazonaws.com`, `ec2.amazonaws.com`, …
    pub event_source: String,
    pub event_name: String,
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub actor_arn: Option<String>,
    pub source_ip: Option<String>,
    pub error_code: Option<String>,
    #[serde(skip)]
    pub request: Value,
    #[serde(skip)]
    pub response: Value,
}

impl Trigger {
    /// A short id for summaries: the CloudTrail eventID, or what the trigger names.
    pub fn id(&self) -> String {
        match self {
            Trigger::CloudTrail(e) => e.event_id.clone().unwrap_or_else(|| e.event_name.clone()),
            Trigger::Schedule { region, .. } => {
                format!("sweep:{}", region.as_deref().unwrap_or("?"))
            }
            Trigger::Direct { clusters } => clusters.join(","),
            Trigger::Recheck(r) => format!("recheck:{}#{}", r.cluster, r.attempt),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::CloudTrail(_) => "cloudtrail",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Direct { .. } => "direct",
            Trigger::Recheck(_) => "recheck",
        }
    }
}

/// One unit of input: a trigger (or why it is not one), and the SQS message it came in, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub message_id: Option<String>,
    pub trigger: Result<Trigger, String>,
}

/// The payload is not one we accept at all (not JSON, or no known shape).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

/// Parses any accepted payload: an SQS batch, an EventBridge envelope, a bare CloudTrail record,
/// a re-check message or a direct invoke.
pub fn parse_payload(v: &Value) -> Result<Vec<Item>, PayloadError> {
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        return Ok(records.iter().map(sqs_record).collect());
    }
    match parse_one(v) {
        Some(t) => Ok(vec![Item { message_id: None, trigger: t }]),
        None => Err(PayloadError(
            "not a known payload: expected an SQS batch, an EventBridge event, a re-check message or {\"clusters\": [...]}".into(),
        )),
    }
}

fn sqs_record(r: &Value) -> Item {
    let message_id = r
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let trigger = match r.get("body") {
        Some(Value::String(body)) => match serde_json::from_str::<Value>(body) {
            Ok(v) => {
                parse_one(&v).unwrap_or_else(|| Err("message body is not a known event".into()))
            }
            Err(e) => Err(format!("message body is not JSON: {e}")),
        },
        Some(v @ Value::Object(_)) => {
            parse_one(v).unwrap_or_else(|| Err("message body is not a known event".into()))
        }
        _ => Err("SQS record without a body".into()),
    };
    Item {
        message_id,
        trigger,
    }
}

/// `None`: not a shape we know. `Some(Err)`: a known shape we decline, with the reason.
fn parse_one(v: &Value) -> Option<Result<Trigger, String>> {
    let obj = v.as_object()?;
    if obj.get("kind").and_then(Value::as_str) == Some("recheck") {
        return Some(
            serde_json::from_value::<Recheck>(v.clone())
                .map(Trigger::Recheck)
                .map_err(|e| format!("bad re-check message: {e}")),
        );
    }
    if let Some(clusters) = obj.get("clusters") {
        let names: Option<Vec<String>> = clusters.as_array().map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        });
        return Some(match names {
            Some(n) if !n.is_empty() => Ok(Trigger::Direct { clusters: n }),
            _ => Err("\"clusters\" must be a non-empty list of cluster names".into()),
        });
    }
    let detail_type = obj.get("detail-type").and_then(Value::as_str);
    let account = str_at(v, "account");
    let region = str_at(v, "region");
    match detail_type {
        Some("Scheduled Event") => return Some(Ok(Trigger::Schedule { account, region })),
        Some(_) => {
            let detail = obj.get("detail")?;
            return Some(cloudtrail(detail, account, region));
        }
        None => {}
    }
    // A bare CloudTrail record (a test or a replay).
    if obj.contains_key("eventSource") && obj.contains_key("eventName") {
        return Some(cloudtrail(v, None, None));
    }
    None
}

fn cloudtrail(
    d: &Value,
    account: Option<String>,
    region: Option<String>,
) -> Result<Trigger, String> {
    let event_source = str_at(d, "eventSource").ok_or("CloudTrail record without eventSource")?;
    let event_name = str_at(d, "eventName").ok_or("CloudTrail record without eventName")?;
    Ok(Trigger::CloudTrail(Box::new(CloudTrailEvent {
        event_source,
        event_name,
        event_id: str_at(d, "eventID"),
        event_time: str_at(d, "eventTime"),
        // The envelope's account and region, else the record's own.
        account: account
            .or_else(|| str_at(d, "recipientAccountId"))
            .or_else(|| {
                d.get("userIdentity")
                    .and_then(|u| u.get("accountId"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
        region: region.or_else(|| str_at(d, "awsRegion")),
        actor_arn: d.get("userIdentity").and_then(|u| {
            str_at(u, "arn")
                .or_else(|| str_at(u, "invokedBy"))
                .or_else(|| str_at(u, "type"))
        }),
        source_ip: str_at(d, "sourceIPAddress"),
        error_code: str_at(d, "errorCode"),
        request: d.get("requestParameters").cloned().unwrap_or(Value::Null),
        response: d.get("responseElements").cloned().unwrap_or(Value::Null),
    })))
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Every string found at a dotted path, tolerant of CloudTrail's XML-to-JSON leftovers: `items` / `item`
/// wrappers, a single item as an object instead of a one-element list, empty collections as `{}`.
/// Path segments are matched case-insensitively (`GroupId` vs `groupId`).
pub fn strings_at(root: &Value, path: &str) -> Vec<String> {
    let mut current = vec![root];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            for v in flatten(v) {
                if let Some(obj) = v.as_object() {
                    if let Some((_, child)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(seg))
                    {
                        next.push(child);
                    }
                }
            }
        }
        current = next;
    }
    let mut out = Vec::new();
    for v in current {
        for v in flatten(v) {
            if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                let s = percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Looks through lists and `items`/`item` wrappers to the values they hold.
fn flatten(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().flat_map(flatten).collect(),
        Value::Object(o) if o.len() <= 2 && (o.contains_key("items") || o.contains_key("item")) => {
            o.iter()
                .filter(|(k, _)| *k == "items" || *k == "item")
                .flat_map(|(_, v)| flatten(v))
                .collect()
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_at_sees_through_items_wrappers_and_single_objects() {
        let v = json!({"ipPermissions": {"items": [{"groups": {"items": [{"groupId": "sg-1"}]}}, {"groups": {"item": {"groupId": "sg-2"}}}]}});
        assert_eq!(
            strings_at(&v, "ipPermissions.groups.groupId"),
            vec!["sg-1", "sg-2"]
        );
        let v = json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-9", "tag": 1}});
        assert_eq!(
            strings_at(&v, "modifySecurityGroupRulesRequest.groupId"),
            vec!["sg-9"]
        );
        assert!(strings_at(&json!({"a": {}}), "a.b").is_empty());
        assert!(strings_at(&Value::Null, "a").is_empty());
        assert_eq!(
            strings_at(&json!({"resourceArn": "arn%3Aaws%3Aeks"}), "resourceArn"),
            vec!["arn:aws:eks"]
        );
    }

    #[test]
    fn unknown_and_broken_payloads() {
        assert!(parse_payload(&json!({"hello": 1})).is_err());
        assert!(parse_payload(&json!([1, 2])).is_err());
        let items = parse_payload(
            &json!({"Records": [{"messageId": "m1", "body": "not json"}, {"messageId": "m2"}]}),
        )
        .unwrap();
        assert!(items.iter().all(|i| i.trigger.is_err()));
        assert_eq!(items[0].message_id.as_deref(), Some("m1"));
        let items = parse_payload(
            &json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "X"}}),
        )
        .unwrap();
        assert!(items[0].trigger.is_err());
        assert!(parse_payload(&json!({"clusters": []})).unwrap()[0]
            .trigger
            .is_err());
    }

    #[test]
    fn envelope_account_and_region_win_over_the_record() {
        let v = json!({"detail-type": "AWS API Call via CloudTrail", "account": "111", "region": "eu-west-1",
            "detail": {"eventSource": "eks.amazonaws.com", "eventName": "UpdateClusterConfig", "awsRegion": "us-east-1",
                "recipientAccountId": "222", "requestParameters": null}});
        match &parse_payload(&v).unwrap()[0].trigger {
            Ok(Trigger::CloudTrail(e)) => {
                assert_eq!(e.account.as_deref(), Some("111"));
                assert_eq!(e.region.as_deref(), Some("eu-west-1"));
                assert_eq!(e.request, Value::Null);
            }
            other => panic!("{other:?}"),
        }
    }
}
