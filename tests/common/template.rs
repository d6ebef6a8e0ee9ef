//! Reading the CloudFormation templates: the short-form tags (`!Ref`, `!GetAtt`, `!If`, …) stay as
//! `serde_yaml` tagged values.

use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const CENTRAL: &str = "template.yaml";
pub const MEMBER: &str = "templates/member-role.yaml";
pub const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn template(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// The value under a tag (`!GetAtt X.Arn` → `X.Arn`), or the value itself.
pub fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => untag(&t.value),
        other => other,
    }
}

pub fn tag_of(v: &Yaml) -> Option<String> {
    match v {
        Yaml::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

/// (logical id, resource) of every resource of a type.
pub fn resources<'a>(t: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().expect("logical id").to_string(), r))
        .collect()
}

/// YAML (tag-free, as event patterns are) → JSON.
pub fn to_json(v: &Yaml) -> Value {
    serde_json::to_value(v).expect("a pattern converts to JSON")
}

/// The CloudTrail rules of a template: logical id → pattern JSON.
pub fn cloudtrail_rules(t: &Yaml) -> BTreeMap<String, Value> {
    resources(t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| !r["Properties"]["EventPattern"].is_null())
        .map(|(id, r)| (id, to_json(&r["Properties"]["EventPattern"])))
        .filter(|(_, p)| p["detail-type"] == json!([CLOUDTRAIL]))
        .collect()
}
