//! The deployment cannot drift from the code.
//!
//! * The EventBridge patterns of template.yaml (and of the member accounts' forwarding rules in
//!   templates/member-role.yaml) select exactly the (eventSource, eventName) rows of `route::TABLE`, and
//!   drop failed calls in the pattern itself.
//! * Every events/ fixture, and a success and a failure of every routed call, goes through those very
//!   patterns on an emulated event bus (moto's PutEvents matches rule patterns and delivers to an SQS
//!   target); exactly the routed, successful ones arrive.
//!
//! The permissions' side is `tests/surface/template_iam.rs`.
//!
//! The templates use CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!If`, …), which `serde_yaml`
//! keeps as tagged values.

use crate::common;

use common::template::*;

use eks_warden::route::TABLE;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// No other module of this test binary uses this region (`layout.rs`).
const REGION: &str = "ap-northeast-1";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// eventSource → event names, from the rules of a template. Panics (a failed test) on a malformed rule.
fn pattern_events(
    path: &str,
    rules: &BTreeMap<String, Value>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, p) in rules {
        let ctx = format!("{path} {id}");
        let keys: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["source", "detail-type", "detail"]),
            "{ctx}: a pattern selects by source, detail-type and detail only"
        );
        let detail = p["detail"].as_object().expect("detail");
        let dkeys: BTreeSet<&str> = detail.keys().map(String::as_str).collect();
        assert_eq!(
            dkeys,
            BTreeSet::from(["eventSource", "eventName", "errorCode"]),
            "{ctx}: detail selects by eventSource and eventName and drops failed calls, nothing else"
        );
        assert_eq!(
            p["detail"]["errorCode"],
            json!([{"exists": false}]),
            "{ctx}: failed calls (errorCode) must be excluded in the pattern"
        );
        let sources = strings(&p["source"]);
        let event_sources = strings(&p["detail"]["eventSource"]);
        assert!(
            sources.len() == 1 && event_sources.len() == 1,
            "{ctx}: one source per rule, got {sources:?} / {event_sources:?}"
        );
        let service = event_sources[0]
            .strip_suffix(".amazonaws.com")
            .unwrap_or_else(|| panic!("{ctx}: eventSource {:?}", event_sources[0]));
        assert_eq!(
            sources[0],
            format!("aws.{service}"),
            "{ctx}: source and eventSource disagree"
        );
        let names = strings(&p["detail"]["eventName"]);
        let set: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(
            set.len(),
            names.len(),
            "{ctx}: an event name is listed twice"
        );
        let into = out.entry(event_sources[0].clone()).or_default();
        for n in set {
            assert!(
                into.insert(n.clone()),
                "{ctx}: {n} is selected by two rules"
            );
        }
    }
    out
}

/// eventSource → event names of the router's table.
fn table_events() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for route in TABLE {
        for name in route.names {
            out.entry(route.source.to_string())
                .or_default()
                .insert(name.to_string());
        }
    }
    out
}

/// Every difference between the table and a template, in words.
fn drift(
    path: &str,
    table: &BTreeMap<String, BTreeSet<String>>,
    patterns: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let sources: BTreeSet<&String> = table.keys().chain(patterns.keys()).collect();
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for source in sources {
        let (t, p) = (
            table.get(source).unwrap_or(&empty),
            patterns.get(source).unwrap_or(&empty),
        );
        for n in t.difference(p) {
            out.push(format!(
                "{source} {n}: routed in src/route.rs TABLE but not selected by {path}"
            ));
        }
        for n in p.difference(t) {
            out.push(format!(
                "{source} {n}: selected by {path} but not in src/route.rs TABLE"
            ));
        }
    }
    out
}

#[test]
fn event_patterns_select_exactly_the_routing_table() {
    let table = table_events();
    assert!(!table.is_empty());
    let mut problems = Vec::new();
    for path in [CENTRAL, MEMBER] {
        let rules = cloudtrail_rules(&template(path));
        assert!(!rules.is_empty(), "{path}: no CloudTrail rule");
        problems.extend(drift(path, &table, &pattern_events(path, &rules)));
    }
    assert!(
        problems.is_empty(),
        "the deployment drifted from the router:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn drift_is_reported_in_both_directions() {
    let table = table_events();
    let mut patterns = table.clone();
    let eks = patterns.get_mut("eks.amazonaws.com").unwrap();
    eks.remove("CreateCluster");
    eks.insert("DescribeCluster".into());
    let found = drift("t", &table, &patterns);
    assert_eq!(
        found,
        vec![
            "eks.amazonaws.com CreateCluster: routed in src/route.rs TABLE but not selected by t",
            "eks.amazonaws.com DescribeCluster: selected by t but not in src/route.rs TABLE",
        ]
    );
}

/// One event put on the bus, and whether the router wants it.
struct Probe {
    marker: String,
    source: String,
    detail_type: String,
    detail: Value,
    relevant: bool,
}

/// The events/ fixtures that are EventBridge CloudTrail envelopes, each marked by its file name.
fn fixture_probes() -> Vec<Probe> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        // sqs-batch, scheduled-event and direct-invoke are not CloudTrail envelopes.
        if v["detail-type"] != CLOUDTRAIL {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let mut detail = v["detail"].clone();
        let relevant = TABLE.iter().any(|r| {
            Some(r.source) == detail["eventSource"].as_str()
                && detail["eventName"]
                    .as_str()
                    .is_some_and(|n| r.names.contains(&n))
        }) && detail.get("errorCode").is_none();
        // The patterns never look at eventID: it carries the marker back from the queue.
        detail["eventID"] = json!(format!("fixture:{name}"));
        out.push(Probe {
            marker: format!("fixture:{name}"),
            source: v["source"].as_str().unwrap().to_string(),
            detail_type: CLOUDTRAIL.to_string(),
            detail,
            relevant,
        });
    }
    out
}

/// A minimal success and a failure of every routed call, so a name without a fixture is covered too.
fn table_probes() -> Vec<Probe> {
    let mut out = Vec::new();
    for route in TABLE {
        let service = route.source.strip_suffix(".amazonaws.com").unwrap();
        for name in route.names {
            for failed in [false, true] {
                let marker = format!("table:{name}:{}", if failed { "failed" } else { "ok" });
                let mut detail = json!({
                    "eventVersion": "1.09", "eventSource": route.source, "eventName": name,
                    "eventID": marker, "awsRegion": REGION, "requestParameters": null,
                });
                if failed {
                    detail["errorCode"] = json!("AccessDenied");
                    detail["errorMessage"] = json!("User is not authorized");
                }
                out.push(Probe {
                    marker,
                    source: format!("aws.{service}"),
                    detail_type: CLOUDTRAIL.to_string(),
                    detail,
                    relevant: !failed,
                });
            }
        }
    }
    // Same source and detail-type, a name no rule routes (read-only calls never reach EventBridge, but a
    // pattern must not let them through either).
    out.push(Probe {
        marker: "table:DescribeCluster:ok".into(),
        source: "aws.eks".into(),
        detail_type: CLOUDTRAIL.into(),
        detail: json!({"eventSource": "eks.amazonaws.com", "eventName": "DescribeCluster", "eventID": "table:DescribeCluster:ok"}),
        relevant: false,
    });
    out
}

#[tokio::test]
async fn every_fixture_goes_through_the_template_patterns_on_an_emulated_bus() {
    let conf = common::sdk_config(REGION).await;
    let events = aws_sdk_eventbridge::Client::new(&conf);

    let bus = "eks-warden-patterns";
    events.create_event_bus().name(bus).send().await.unwrap();
    let queue = common::sns::Queue::create(&conf, "eks-warden-patterns").await;

    // The template's own rules, pattern JSON as CloudFormation would pass it.
    let rules = cloudtrail_rules(&template(CENTRAL));
    assert_eq!(rules.len(), 2, "one rule per source: {:?}", rules.keys());
    for (id, pattern) in &rules {
        events
            .put_rule()
            .name(id)
            .event_bus_name(bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(id)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(&queue.arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    let mut probes = fixture_probes();
    assert!(
        probes.len() >= 30,
        "the CloudTrail fixtures were found: {}",
        probes.len()
    );
    assert!(
        probes.iter().any(|p| !p.relevant),
        "some fixtures must be ignored"
    );
    probes.extend(table_probes());
    let markers: BTreeSet<&str> = probes.iter().map(|p| p.marker.as_str()).collect();
    assert_eq!(markers.len(), probes.len(), "markers are unique");

    for chunk in probes.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .map(|p| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(&p.source)
                    .detail_type(&p.detail_type)
                    .detail(p.detail.to_string())
                    .build()
            })
            .collect();
        let out = events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count, 0, "{:?}", out.entries);
    }

    // Delivery is synchronous in the emulator: drain the queue until it is empty.
    let mut arrived: BTreeMap<String, u32> = BTreeMap::new();
    for m in queue.drain().await {
        let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        let marker = body["detail"]["eventID"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        *arrived.entry(marker).or_default() += 1;
    }

    let expected: BTreeSet<String> = probes
        .iter()
        .filter(|p| p.relevant)
        .map(|p| p.marker.clone())
        .collect();
    let got: BTreeSet<String> = arrived.keys().cloned().collect();
    let missing: Vec<&String> = expected.difference(&got).collect();
    let unexpected: Vec<&String> = got.difference(&expected).collect();
    let twice: Vec<&String> = arrived
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(m, _)| m)
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && twice.is_empty(),
        "template.yaml's patterns vs src/route.rs TABLE on the emulated bus:\n  \
         relevant but not delivered: {missing:?}\n  delivered but not relevant: {unexpected:?}\n  \
         delivered twice: {twice:?}"
    );
    // The fixture set proves the shapes the table routes: successes of both sources and a failure.
    for must in [
        "fixture:eks-update-cluster-config.json",
        "fixture:ec2-authorize-sg-ingress-items.json",
        "fixture:null-request-parameters.json",
    ] {
        assert!(got.contains(must), "{must} must arrive");
    }
    for never in [
        "fixture:error-authorize-sg-ingress.json",
        "fixture:unknown-ec2-event.json",
        "fixture:unrelated-s3-put-bucket-policy.json",
    ] {
        assert!(!got.contains(never), "{never} must not arrive");
    }
}
