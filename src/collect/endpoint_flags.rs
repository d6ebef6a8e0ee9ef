//! Whether DescribeCluster actually carried the endpoint access flags.
//!
//! The SDK reads `endpointPublicAccess`/`endpointPrivateAccess` as plain booleans, so an answer without
//! them looks like "off" — which would fail a cluster on a field nobody returned, or let a fix plan on a
//! guess. This interceptor looks at the raw answer, and the collector turns a missing flag into `Unknown`.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};

/// The endpoint flags missing from the raw DescribeCluster answer, once it has been read.
#[derive(Debug, Clone, Default)]
pub struct EndpointFlags(Arc<Mutex<Vec<&'static str>>>);

impl EndpointFlags {
    /// The flags the answer lacked (empty when both were there, or the body was not readable JSON).
    pub fn missing(&self) -> Vec<&'static str> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The flags a DescribeCluster body lacks; empty when it has both, has no `resourcesVpcConfig` (judged
/// elsewhere), or is not JSON at all (nothing to say).
pub fn missing_flags(body: &[u8]) -> Vec<&'static str> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    let Some(vpc) = v
        .get("cluster")
        .and_then(|c| c.get("resourcesVpcConfig"))
        .and_then(|c| c.as_object())
    else {
        return vec![];
    };
    ["endpointPublicAccess", "endpointPrivateAccess"]
        .into_iter()
        .filter(|k| !vpc.get(*k).is_some_and(serde_json::Value::is_boolean))
        .collect()
}

/// The cluster as converted, its endpoint `Unknown` when the answer lacked a flag.
pub fn unless_missing(
    mut cluster: crate::model::Cluster,
    flags: &EndpointFlags,
) -> crate::model::Cluster {
    let missing = flags.missing();
    if !missing.is_empty() && cluster.endpoint.known().is_some() {
        cluster.endpoint = crate::model::Fact::unknown(
            "NotReturned",
            format!("DescribeCluster returned no {}", missing.join(" or ")),
        );
    }
    cluster
}

impl Intercept for EndpointFlags {
    fn name(&self) -> &'static str {
        "EndpointFlags"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            if let Ok(mut m) = self.0.lock() {
                *m = missing_flags(bytes);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_flags_are_named() {
        let both = br#"{"cluster":{"resourcesVpcConfig":{"endpointPublicAccess":true,"endpointPrivateAccess":false}}}"#;
        assert!(missing_flags(both).is_empty());
        let none = br#"{"cluster":{"resourcesVpcConfig":{"subnetIds":["subnet-1"]}}}"#;
        assert_eq!(
            missing_flags(none),
            ["endpointPublicAccess", "endpointPrivateAccess"]
        );
        let one = br#"{"cluster":{"resourcesVpcConfig":{"endpointPrivateAccess":true}}}"#;
        assert_eq!(missing_flags(one), ["endpointPublicAccess"]);
        assert!(missing_flags(b"").is_empty());
        assert!(missing_flags(br#"{"cluster":{}}"#).is_empty());
    }

    /// The rules' side (an unknown endpoint is UNKNOWN, never a verdict) is tested with each rule.
    #[test]
    fn a_missing_flag_makes_the_endpoint_unknown() {
        let cluster: crate::model::Cluster = serde_json::from_value(serde_json::json!({
            "name": "prod", "arn": "arn:aws:eks:eu-west-1:111122223333:cluster/prod",
            "status": "ACTIVE", "version": "1.31",
            "endpoint": {"known": {"public_access": false, "private_access": true,
                                   "public_access_cidrs": []}},
            "cluster_security_group_id": null, "security_group_ids": [], "subnet_ids": [],
            "vpc_id": null, "logging": {"known": []}, "encryption": {"known": []},
            "authentication_mode": {"known": "API"}, "deletion_protection": {"known": true},
            "tags": {}
        }))
        .expect("a cluster");
        let flags = EndpointFlags::default();
        assert_eq!(unless_missing(cluster.clone(), &flags), cluster);
        if let Ok(mut m) = flags.0.lock() {
            *m = vec!["endpointPrivateAccess"];
        }
        let unknown = unless_missing(cluster, &flags);
        let u = unknown.endpoint.as_ref().unwrap_err();
        assert_eq!(u.code, "NotReturned");
        assert!(u.message.contains("endpointPrivateAccess"), "{u}");
    }
}
