//! The deployment cannot drift from the code.
//!
//! * The EventBridge patterns of template.yaml (and of the member accounts' forwarding rules in
//!   templates/member-role.yaml) select exactly the (eventSource, eventName) rows of `route::TABLE`, and
//!   drop failed calls in the pattern itself.
//! * Every events/ fixture, and a success and a failure of every routed call, goes through those very
//!   patterns on an emulated event bus (moto's PutEvents matches rule patterns and delivers to an SQS
//!   target); exactly the routed, successful ones arrive.
//! * The queue accepts only the rules that target it; the function's role may make every AWS call the
//!   code makes; the member role grants what the central role grants.
//!
//! The templates use CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!If`, …), which `serde_yaml`
//! keeps as tagged values.

mod common;

use eks_warden::route::TABLE;
use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CENTRAL: &str = "template.yaml";
const MEMBER: &str = "templates/member-role.yaml";
const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
/// No other test binary uses this region.
const REGION: &str = "ap-northeast-1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// The value under a tag (`!GetAtt X.Arn` → `X.Arn`), or the value itself.
fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn tag_of(v: &Yaml) -> Option<String> {
    match v {
        Yaml::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

/// (logical id, resource) of every resource of a type.
fn resources<'a>(t: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().expect("logical id").to_string(), r))
        .collect()
}

/// YAML (tag-free, as event patterns are) → JSON.
fn to_json(v: &Yaml) -> Value {
    serde_json::to_value(v).expect("a pattern converts to JSON")
}

/// The CloudTrail rules of a template: logical id → pattern JSON.
fn cloudtrail_rules(t: &Yaml) -> BTreeMap<String, Value> {
    resources(t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| !r["Properties"]["EventPattern"].is_null())
        .map(|(id, r)| (id, to_json(&r["Properties"]["EventPattern"])))
        .filter(|(_, p)| p["detail-type"] == json!([CLOUDTRAIL]))
        .collect()
}

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

/// Every `!GetAtt X.Arn` under a value → X.
fn get_att_arns(v: &Yaml, out: &mut BTreeSet<String>) {
    match v {
        Yaml::Tagged(t) if t.tag == "GetAtt" => {
            if let Some(s) = t.value.as_str().and_then(|s| s.strip_suffix(".Arn")) {
                out.insert(s.to_string());
            }
        }
        Yaml::Tagged(t) => get_att_arns(&t.value, out),
        Yaml::Sequence(s) => s.iter().for_each(|x| get_att_arns(x, out)),
        Yaml::Mapping(m) => m.values().for_each(|x| get_att_arns(x, out)),
        _ => {}
    }
}

#[test]
fn the_queue_accepts_exactly_the_rules_that_target_it() {
    let t = template(CENTRAL);
    let targeting: BTreeSet<String> = resources(&t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| {
            r["Properties"]["Targets"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|target| {
                    tag_of(&target["Arn"]).as_deref() == Some("!GetAtt")
                        && untag(&target["Arn"]).as_str() == Some("Queue.Arn")
                })
        })
        .map(|(id, _)| id)
        .collect();
    let rules: BTreeSet<String> = cloudtrail_rules(&t).into_keys().collect();
    assert!(
        rules.is_subset(&targeting),
        "every CloudTrail rule feeds the queue: {rules:?} vs {targeting:?}"
    );
    assert!(
        targeting.contains("SweepRule"),
        "the sweep goes through the queue"
    );

    let (_, policy) = resources(&t, "AWS::SQS::QueuePolicy")
        .into_iter()
        .next()
        .expect("a queue policy");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    let allow: Vec<&Yaml> = statements
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .collect();
    assert_eq!(allow.len(), 1, "one Allow: the rules");
    assert_eq!(
        allow[0]["Principal"]["Service"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(allow[0]["Action"].as_str(), Some("sqs:SendMessage"));
    let mut allowed = BTreeSet::new();
    get_att_arns(
        &allow[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        &mut allowed,
    );
    assert_eq!(
        allowed, targeting,
        "the queue policy's aws:SourceArn must list exactly the rules targeting the queue"
    );
}

/// Actions of the Allow statements of a policy document.
fn actions(doc: &Yaml, out: &mut BTreeSet<String>) {
    for s in doc["Statement"].as_sequence().into_iter().flatten() {
        // `!If [condition, statement, AWS::NoValue]`: a statement granted when its fix is opted in.
        let s = match tag_of(s).as_deref() {
            Some(t) if t.ends_with("If") => &untag(s)[1],
            _ => s,
        };
        if s["Effect"].as_str() != Some("Allow") {
            continue;
        }
        match untag(&s["Action"]) {
            Yaml::String(a) => {
                out.insert(a.clone());
            }
            Yaml::Sequence(v) => {
                out.extend(v.iter().filter_map(|a| a.as_str().map(str::to_string)))
            }
            _ => {}
        }
    }
}

/// policy name → actions, for a role's inline policies and the RolePolicy resources attached to it.
fn role_policies(t: &Yaml, role: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let (_, r) = resources(t, "AWS::IAM::Role")
        .into_iter()
        .find(|(id, _)| id == role)
        .unwrap_or_else(|| panic!("no role {role}"));
    for p in r["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let mut a = BTreeSet::new();
        actions(&p["PolicyDocument"], &mut a);
        out.insert(p["PolicyName"].as_str().unwrap().to_string(), a);
    }
    for (_, p) in resources(t, "AWS::IAM::RolePolicy") {
        if untag(&p["Properties"]["RoleName"]).as_str() == Some(role) {
            let mut a = BTreeSet::new();
            actions(&p["Properties"]["PolicyDocument"], &mut a);
            out.insert(
                p["Properties"]["PolicyName"].as_str().unwrap().to_string(),
                a,
            );
        }
    }
    out
}

#[test]
fn the_member_role_grants_what_the_central_role_grants() {
    let central = role_policies(&template(CENTRAL), "FunctionRole");
    let member = role_policies(&template(MEMBER), "MemberRole");
    for name in ["read-clusters", "remediate", "secrets-key", "security-hub"] {
        assert_eq!(
            central.get(name),
            member.get(name),
            "policy {name}: template.yaml and templates/member-role.yaml differ"
        );
    }
}

/// Calls that need no IAM permission of their own: `TransactWriteItems` is authorised per item (as
/// PutItem, DeleteItem), and `state create-table` runs as the operator, never in the function.
const NO_PERMISSION: &[&str] = &[
    "GetCallerIdentity",
    "TransactWriteItems",
    "CreateTable",
    "UpdateTimeToLive",
    "UpdateContinuousBackups",
];
/// The rule ids a condition opts in, following `!Condition` references.
fn opted_rules(conditions: &Yaml, name: &str, out: &mut BTreeSet<String>) {
    let text = serde_json::to_string(&to_json(&conditions[name])).unwrap();
    for r in eks_warden::rules::ALL {
        if text.contains(&format!(",{},", r.meta.id)) {
            out.insert(r.meta.id.to_string());
        }
    }
    fn refs(v: &Yaml, out: &mut Vec<String>) {
        if tag_of(v).is_some_and(|t| t.ends_with("Condition")) {
            out.extend(untag(v).as_str().map(str::to_string));
        }
        match untag(v) {
            Yaml::Sequence(s) => s.iter().for_each(|x| refs(x, out)),
            Yaml::Mapping(m) => m.values().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    refs(&conditions[name], &mut names);
    for n in names {
        opted_rules(conditions, &n, out);
    }
}

/// Each write statement of both roles is granted only when a rule whose fix makes that call is listed in
/// RemediateRules: exactly those rules, by the catalog's own record of each fix's permission.
#[test]
fn write_permissions_follow_the_opted_in_rules() {
    for (path, policy) in [
        (CENTRAL, "RemediationPolicy"),
        (MEMBER, "MemberRemediationPolicy"),
    ] {
        let t = template(path);
        let (_, p) = resources(&t, "AWS::IAM::RolePolicy")
            .into_iter()
            .find(|(id, _)| id == policy)
            .unwrap_or_else(|| panic!("{path}: no {policy}"));
        let statements = p["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap();
        assert!(!statements.is_empty());
        for s in statements {
            assert!(
                tag_of(s).is_some_and(|t| t.ends_with("If")),
                "{path}: an unconditional write statement"
            );
            let parts = untag(s).as_sequence().unwrap();
            let condition = parts[0].as_str().unwrap();
            let mut granted = BTreeSet::new();
            actions(
                &serde_yaml::from_str(&format!(
                    "Statement: [{}]",
                    serde_json::to_string(&to_json(&parts[1])).unwrap()
                ))
                .unwrap(),
                &mut granted,
            );
            let mut opted = BTreeSet::new();
            opted_rules(&t["Conditions"], condition, &mut opted);
            let needing: BTreeSet<String> = eks_warden::rules::ALL
                .iter()
                .filter(|r| r.meta.fix_permission.is_some_and(|p| granted.contains(p)))
                .map(|r| r.meta.id.to_string())
                .collect();
            assert_eq!(
                opted, needing,
                "{path}: condition {condition} grants {granted:?}"
            );
        }
    }
}

/// Verbs of the SDK operations the code may call (fluent builders: `.describe_cluster()`).
const VERBS: &[&str] = &[
    "describe_",
    "list_",
    "update_",
    "associate_",
    "disassociate_",
    "revoke_",
    "authorize_",
    "modify_",
    "create_",
    "delete_",
    "send_message",
    "send_message_batch",
    "query",
    "put_item",
    "transact_write_items",
    "publish",
    "assume_role",
    "get_caller_identity",
    "get_parameter",
];

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `.describe_cluster()` and the like in src/: the SDK operations the code calls, PascalCase.
fn sdk_calls() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Tests inside src/ may call anything on mocks.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, _) in code.match_indices('.') {
            let rest = &code[i + 1..];
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !rest[ident.len()..].starts_with("()") {
                continue;
            }
            if VERBS
                .iter()
                .any(|v| ident == *v || (v.ends_with('_') && ident.starts_with(v)))
            {
                let where_ = f.strip_prefix(root()).unwrap().display().to_string();
                out.entry(pascal(&ident)).or_insert(where_);
            }
        }
    }
    out
}

#[test]
fn the_function_role_may_make_every_call_the_code_makes() {
    let granted: BTreeSet<String> = role_policies(&template(CENTRAL), "FunctionRole")
        .into_values()
        .flatten()
        .filter_map(|a| a.split_once(':').map(|(_, op)| op.to_string()))
        .collect();
    let calls = sdk_calls();
    assert!(
        calls.contains_key("DescribeCluster"),
        "the scan found the SDK calls: {calls:?}"
    );
    let missing: Vec<String> = calls
        .iter()
        .filter(|(op, _)| {
            // SendMessageBatch is authorized as sqs:SendMessage.
            let action = if *op == "SendMessageBatch" {
                "SendMessage"
            } else {
                op.as_str()
            };
            !granted.contains(action) && !NO_PERMISSION.contains(&op.as_str())
        })
        .map(|(op, file)| format!("{op} (called in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "the code calls what the function's role does not allow; add the action to template.yaml \
         (and templates/member-role.yaml):\n  {}",
        missing.join("\n  ")
    );
}

// ------------------------------------------------------------------------------ patterns on moto

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
