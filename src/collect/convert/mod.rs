//! SDK shapes → our model. The only place that knows both.

use crate::model::*;
use aws_sdk_ec2::types as ec2;
use aws_sdk_eks::types as eks;
use std::collections::BTreeMap;

mod network;
pub use network::*;

fn map_tags(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(super) fn ec2_tags(tags: &[ec2::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn not_returned<T>(what: &str) -> Fact<T> {
    Fact::unknown("NotReturned", format!("the API answered without {what}"))
}

/// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME` → (account, region); empty strings when the ARN is unusable.
pub fn account_and_region(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, _, region, account, _] => (account.to_string(), region.to_string()),
        _ => (String::new(), String::new()),
    }
}

// `EncryptionConfig.resources` is deprecated (EKS now encrypts all API data with its own keys); it still
// says which resources use a customer KMS key, which is what the secrets rule judges.
#[allow(deprecated)]
pub fn cluster(c: &eks::Cluster, asked: &str) -> Cluster {
    let vpc = c.resources_vpc_config();
    let endpoint = match vpc {
        // The SDK reads absent flags as false, which is also what EKS means by them.
        Some(v) => Fact::Known(Endpoint {
            public_access: v.endpoint_public_access(),
            private_access: v.endpoint_private_access(),
            public_access_cidrs: v.public_access_cidrs().to_vec(),
        }),
        None => not_returned("resourcesVpcConfig"),
    };
    let logging = match c.logging() {
        Some(l) => Fact::Known(
            l.cluster_logging()
                .iter()
                .map(|s| LogSetup {
                    types: s.types().iter().map(|t| t.as_str().to_string()).collect(),
                    enabled: s.enabled().unwrap_or(false),
                })
                .collect(),
        ),
        None => not_returned("logging"),
    };
    let authentication_mode = match c.access_config().and_then(|a| a.authentication_mode()) {
        Some(m) => Fact::Known(m.as_str().to_string()),
        None => not_returned("accessConfig.authenticationMode"),
    };
    let deletion_protection = match c.deletion_protection() {
        Some(d) => Fact::Known(d),
        None => not_returned("deletionProtection"),
    };
    Cluster {
        name: c.name().unwrap_or(asked).to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        status: c
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        version: c.version().map(str::to_string),
        endpoint,
        cluster_security_group_id: vpc
            .and_then(|v| v.cluster_security_group_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        vpc_id: vpc
            .and_then(|v| v.vpc_id())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        logging,
        // EKS leaves `encryptionConfig` out when nothing is encrypted with a customer key: absent is none.
        encryption: Fact::Known(
            c.encryption_config()
                .iter()
                .map(|e| EncryptionConfig {
                    resources: e.resources().to_vec(),
                    key_arn: e.provider().and_then(|p| p.key_arn()).map(str::to_string),
                })
                .collect(),
        ),
        authentication_mode,
        deletion_protection,
        tags: map_tags(c.tags()),
    }
}

pub fn nodegroup(n: &eks::Nodegroup) -> Nodegroup {
    Nodegroup {
        name: n.nodegroup_name().unwrap_or_default().to_string(),
        status: n
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        subnet_ids: n.subnets().to_vec(),
        remote_access: n.remote_access().map(|r| RemoteAccess {
            ec2_ssh_key: r
                .ec2_ssh_key()
                .filter(|k| !k.is_empty())
                .map(str::to_string),
            source_security_groups: r.source_security_groups().to_vec(),
        }),
        remote_access_security_group: n
            .resources()
            .and_then(|r| r.remote_access_security_group())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        launch_template: n.launch_template().map(|l| LaunchTemplateRef {
            id: l.id().filter(|s| !s.is_empty()).map(str::to_string),
            name: l.name().filter(|s| !s.is_empty()).map(str::to_string),
            version: l.version().filter(|s| !s.is_empty()).map(str::to_string),
            // Filled by the collector once the template versions are read.
            in_use: Fact::unknown("NotCollected", "the launch template was not read"),
        }),
        tags: map_tags(n.tags()),
    }
}

pub fn instance(i: &ec2::Instance) -> Option<Instance> {
    let tags = ec2_tags(i.tags());
    Some(Instance {
        id: i.instance_id()?.to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        subnet_id: i.subnet_id().map(str::to_string),
        public_ip: i
            .public_ip_address()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
        nodegroup: tags.get("eks:nodegroup-name").cloned(),
        metadata_options: match i.metadata_options() {
            Some(m) => Fact::Known(MetadataOptions {
                http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
                http_put_response_hop_limit: m.http_put_response_hop_limit(),
                http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
            }),
            None => not_returned("MetadataOptions"),
        },
    })
}

/// A launch template version. `None` without the identifying fields.
pub fn launch_template_version(v: &ec2::LaunchTemplateVersion) -> Option<LaunchTemplateVersion> {
    Some(LaunchTemplateVersion {
        template_id: v.launch_template_id()?.to_string(),
        template_name: v.launch_template_name().map(str::to_string),
        version_number: v.version_number()?,
        metadata_options: v
            .launch_template_data()
            .and_then(|d| d.metadata_options())
            .map(|m| MetadataOptions {
                http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
                http_put_response_hop_limit: m.http_put_response_hop_limit(),
                http_endpoint: m.http_endpoint().map(|e| e.as_str().to_string()),
            }),
    })
}

/// Picks the version a nodegroup's reference means from what DescribeLaunchTemplateVersions returned:
/// `$Default` is the one flagged default, `$Latest` the highest number (it was asked for, so it is there).
pub fn pick_version<'a>(
    wanted: &str,
    versions: &'a [(bool, LaunchTemplateVersion)],
) -> Option<&'a LaunchTemplateVersion> {
    match wanted {
        "$Default" => versions
            .iter()
            .find(|(default, _)| *default)
            .map(|(_, v)| v),
        "$Latest" => versions
            .iter()
            .map(|(_, v)| v)
            .max_by_key(|v| v.version_number),
        n => {
            let n: i64 = n.parse().ok()?;
            versions
                .iter()
                .map(|(_, v)| v)
                .find(|v| v.version_number == n)
        }
    }
}

pub fn access_policy(p: &eks::AssociatedAccessPolicy) -> Option<AccessPolicyAssociation> {
    Some(AccessPolicyAssociation {
        policy_arn: p.policy_arn()?.to_string(),
        scope: p
            .access_scope()
            .and_then(|s| s.r#type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        namespaces: p
            .access_scope()
            .map(|s| s.namespaces().to_vec())
            .unwrap_or_default(),
    })
}

/// EKS's statement about one Kubernetes version.
// `status` is deprecated in favour of `versionStatus`; it is read only when an older answer lacks the new field.
#[allow(deprecated)]
pub fn version_support(v: &eks::ClusterVersionInformation) -> Option<VersionSupport> {
    let status = match (v.version_status(), v.status()) {
        (Some(s), _) => s.as_str().to_string(),
        (None, Some(old)) => old.as_str().to_ascii_uppercase().replace('-', "_"),
        (None, None) => String::new(),
    };
    let day = |d: Option<&aws_smithy_types::DateTime>| {
        d.and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            .map(|s| s.chars().take(10).collect::<String>())
    };
    Some(VersionSupport {
        version: v.cluster_version()?.to_string(),
        status,
        end_of_standard_support: day(v.end_of_standard_support_date()),
        end_of_extended_support: day(v.end_of_extended_support_date()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_parts() {
        assert_eq!(
            account_and_region("arn:aws:eks:eu-west-1:111122223333:cluster/prod"),
            ("111122223333".to_string(), "eu-west-1".to_string())
        );
        assert_eq!(
            account_and_region("garbage"),
            (String::new(), String::new())
        );
    }

    fn lt(n: i64) -> LaunchTemplateVersion {
        LaunchTemplateVersion {
            template_id: "lt-1".into(),
            template_name: None,
            version_number: n,
            metadata_options: None,
        }
    }

    #[test]
    fn launch_template_aliases_resolve() {
        let versions = vec![(false, lt(7)), (true, lt(3)), (false, lt(5))];
        let pick = |w: &str| pick_version(w, &versions).map(|v| v.version_number);
        assert_eq!(pick("$Default"), Some(3));
        assert_eq!(pick("$Latest"), Some(7));
        assert_eq!(pick("5"), Some(5));
        assert_eq!(pick("4"), None);
        assert_eq!(pick("bogus"), None);
    }

    #[test]
    #[allow(deprecated)]
    fn version_status_prefers_the_new_field() {
        let v = eks::ClusterVersionInformation::builder()
            .cluster_version("1.29")
            .status(eks::ClusterVersionStatus::ExtendedSupport)
            .end_of_standard_support_date(aws_smithy_types::DateTime::from_secs(1_742_774_400))
            .build();
        let got = version_support(&v).unwrap();
        assert_eq!(got.status, "EXTENDED_SUPPORT");
        assert_eq!(got.end_of_standard_support.as_deref(), Some("2025-03-24"));
        let v = eks::ClusterVersionInformation::builder()
            .cluster_version("1.33")
            .status(eks::ClusterVersionStatus::ExtendedSupport)
            .version_status(eks::VersionStatus::StandardSupport)
            .build();
        assert_eq!(version_support(&v).unwrap().status, "STANDARD_SUPPORT");
    }
}
