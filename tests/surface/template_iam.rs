//! The deployment's permissions cannot drift from the code: the queue accepts only the rules that
//! target it; the function's role may make every AWS call the code makes; write permissions follow the
//! opted-in rules; the member role grants what the central role grants.

use crate::common;

use common::template::*;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
