//! The catalog's EKS reads (add-ons, access entries, cluster versions, accessConfig, deletionProtection)
//! when they are denied, not offered, or skipped, with aws-smithy-mocks. Their verdicts and fixes over
//! HTTP are in catalog_emulator.rs, against the emulator's EKS extension.

use crate::common;

use aws_sdk_ec2::operation::{
    describe_instances::DescribeInstancesOutput,
    describe_launch_template_versions::{
        DescribeLaunchTemplateVersionsError, DescribeLaunchTemplateVersionsOutput,
    },
};
use aws_sdk_ec2::types as ec2;
use aws_sdk_eks::operation::{
    describe_addon::{DescribeAddonError, DescribeAddonOutput},
    describe_cluster_versions::{DescribeClusterVersionsError, DescribeClusterVersionsOutput},
    describe_nodegroup::DescribeNodegroupOutput,
    list_access_entries::{ListAccessEntriesError, ListAccessEntriesOutput},
    list_addons::{ListAddonsError, ListAddonsOutput},
    list_associated_access_policies::{
        ListAssociatedAccessPoliciesError, ListAssociatedAccessPoliciesOutput,
    },
    list_nodegroups::ListNodegroupsOutput,
};
use aws_sdk_eks::types::{
    AccessConfigResponse, AccessScope, AccessScopeType, Addon, AssociatedAccessPolicy,
    AuthenticationMode, ClusterVersionInformation, EncryptionConfig, LaunchTemplateSpecification,
    LogSetup, LogType, Logging, Nodegroup, NodegroupStatus, Provider, VersionStatus,
    VpcConfigResponse,
};
use aws_smithy_mocks::{mock, Rule};
use common::mocked::{self, error as meta, no_nodegroups, Mocked};
use common::report::{only, results as verdict};
use eks_warden::rules::Status;
use eks_warden::scan::evaluate_cluster;
use eks_warden::settings::Settings;

const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const CREATOR: &str = "arn:aws:iam::111122223333:role/terraform";

/// What DescribeCluster answers; the default is a cluster every catalog rule passes.
#[derive(Clone)]
struct Spec {
    mode: AuthenticationMode,
    encrypted: bool,
    log_types: Vec<LogType>,
    deletion_protection: bool,
    tags: Vec<(&'static str, &'static str)>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            mode: AuthenticationMode::ApiAndConfigMap,
            encrypted: true,
            log_types: vec![LogType::Api, LogType::Audit, LogType::Authenticator],
            deletion_protection: true,
            tags: vec![],
        }
    }
}

fn describe_cluster(s: Spec) -> Rule {
    let logging = s
        .log_types
        .iter()
        .fold(LogSetup::builder().enabled(true), |b, t| b.types(t.clone()))
        .build();
    let mut c = mocked::cluster("prod")
        .version("1.31")
        .resources_vpc_config(
            VpcConfigResponse::builder()
                .endpoint_public_access(false)
                .endpoint_private_access(true)
                .build(),
        )
        .access_config(
            AccessConfigResponse::builder()
                .authentication_mode(s.mode)
                .build(),
        )
        .logging(
            Logging::builder()
                .cluster_logging(logging)
                .cluster_logging(
                    LogSetup::builder()
                        .types(LogType::Scheduler)
                        .enabled(false)
                        .build(),
                )
                .build(),
        )
        .deletion_protection(s.deletion_protection);
    for (k, v) in s.tags {
        c = c.tags(k, v);
    }
    if s.encrypted {
        // `resources` is deprecated but still what names Secrets as the encrypted resource.
        #[allow(deprecated)]
        let e = EncryptionConfig::builder().resources("secrets");
        c = c.encryption_config(
            e.provider(
                Provider::builder()
                    .key_arn("arn:aws:kms:eu-west-1:111122223333:key/k")
                    .build(),
            )
            .build(),
        );
    }
    mocked::describe_cluster(c.build())
}

fn one_nodegroup() -> [Rule; 2] {
    [
        mock!(aws_sdk_eks::Client::list_nodegroups)
            .then_output(|| ListNodegroupsOutput::builder().nodegroups("ng").build()),
        mock!(aws_sdk_eks::Client::describe_nodegroup).then_output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(
                    Nodegroup::builder()
                        .nodegroup_name("ng")
                        .status(NodegroupStatus::Active)
                        .launch_template(
                            LaunchTemplateSpecification::builder().id("lt-0abc").build(),
                        )
                        .build(),
                )
                .build()
        }),
    ]
}

fn list_addons(names: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_eks::Client::list_addons).then_output(move || {
        names
            .iter()
            .fold(ListAddonsOutput::builder(), |b, n| b.addons(*n))
            .build()
    })
}

/// DescribeAddon answers only for vpc-cni (any other name finds no rule and is noticed).
fn vpc_cni(config: &'static str) -> Rule {
    mock!(aws_sdk_eks::Client::describe_addon)
        .match_requests(|r| r.addon_name() == Some("vpc-cni"))
        .then_output(move || {
            DescribeAddonOutput::builder()
                .addon(
                    Addon::builder()
                        .addon_name("vpc-cni")
                        .configuration_values(config)
                        .build(),
                )
                .build()
        })
}

/// ListAccessEntries answers only when filtered to the cluster-admin policy.
fn admin_entries(principals: &'static [&'static str]) -> Rule {
    mock!(aws_sdk_eks::Client::list_access_entries)
        .match_requests(|r| r.associated_policy_arn() == Some(ADMIN_POLICY))
        .then_output(move || {
            principals
                .iter()
                .fold(ListAccessEntriesOutput::builder(), |b, p| {
                    b.access_entries(*p)
                })
                .build()
        })
}

fn cluster_scope_admin() -> Rule {
    mock!(aws_sdk_eks::Client::list_associated_access_policies).then_compute_output(|r| {
        ListAssociatedAccessPoliciesOutput::builder()
            .cluster_name("prod")
            .principal_arn(r.principal_arn().unwrap_or_default())
            .associated_access_policies(
                AssociatedAccessPolicy::builder()
                    .policy_arn(ADMIN_POLICY)
                    .access_scope(
                        AccessScope::builder()
                            .r#type(AccessScopeType::Cluster)
                            .build(),
                    )
                    .build(),
            )
            .build()
    })
}

/// DescribeClusterVersions answers only for exactly the cluster's version, with includeAll.
fn version(status: VersionStatus) -> Rule {
    mock!(aws_sdk_eks::Client::describe_cluster_versions)
        .match_requests(|r| r.cluster_versions() == ["1.31"] && r.include_all() == Some(true))
        .then_output(move || {
            DescribeClusterVersionsOutput::builder()
                .cluster_versions(
                    ClusterVersionInformation::builder()
                        .cluster_version("1.31")
                        .version_status(status.clone())
                        .end_of_standard_support_date(aws_smithy_types::DateTime::from_secs(
                            1_764_115_200,
                        ))
                        .end_of_extended_support_date(aws_smithy_types::DateTime::from_secs(
                            1_795_651_200,
                        ))
                        .build(),
                )
                .build()
        })
}

fn imds_v2() -> ec2::InstanceMetadataOptionsResponse {
    ec2::InstanceMetadataOptionsResponse::builder()
        .http_tokens(ec2::HttpTokensState::Required)
        .http_put_response_hop_limit(1)
        .http_endpoint(ec2::InstanceMetadataEndpointState::Enabled)
        .build()
}

fn template_version(tokens: &'static str, default: bool) -> ec2::LaunchTemplateVersion {
    ec2::LaunchTemplateVersion::builder()
        .launch_template_id("lt-0abc")
        .version_number(if default { 3 } else { 4 })
        .default_version(default)
        .launch_template_data(
            ec2::ResponseLaunchTemplateData::builder()
                .metadata_options(
                    ec2::LaunchTemplateInstanceMetadataOptions::builder()
                        .http_tokens(ec2::LaunchTemplateHttpTokensState::from(tokens))
                        .http_put_response_hop_limit(1)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// `$Default` of lt-0abc is version 3, requiring IMDSv2.
fn template_versions() -> Rule {
    mock!(aws_sdk_ec2::Client::describe_launch_template_versions)
        .match_requests(|r| {
            r.launch_template_id() == Some("lt-0abc") && r.versions() == ["$Default"]
        })
        .then_output(|| {
            DescribeLaunchTemplateVersionsOutput::builder()
                .launch_template_versions(template_version("required", true))
                .build()
        })
}

/// One running node on IMDSv2 and the quiet EC2 answers, besides `extra`; EKS answers only what the
/// test gives.
fn ec2_with(extra: &[&Rule]) -> Mocked {
    let instances = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        DescribeInstancesOutput::builder()
            .reservations(
                ec2::Reservation::builder()
                    .instances(
                        ec2::Instance::builder()
                            .instance_id("i-0abc")
                            .state(
                                ec2::InstanceState::builder()
                                    .name(ec2::InstanceStateName::Running)
                                    .build(),
                            )
                            .metadata_options(imds_v2())
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    Mocked::new().quiet_ec2().ec2(&[&instances]).ec2(extra)
}

#[tokio::test]
async fn access_denied_on_catalog_reads_is_unknown() {
    let denied = || meta("AccessDeniedException");
    let describe = describe_cluster(Spec::default());
    let addons = mock!(aws_sdk_eks::Client::list_addons)
        .then_error(move || ListAddonsError::generic(denied()));
    let entries = mock!(aws_sdk_eks::Client::list_access_entries)
        .then_error(move || ListAccessEntriesError::generic(denied()));
    let versions = mock!(aws_sdk_eks::Client::describe_cluster_versions)
        .then_error(move || DescribeClusterVersionsError::generic(denied()));
    let [list_ng, describe_ng] = one_nodegroup();
    let lt = mock!(aws_sdk_ec2::Client::describe_launch_template_versions)
        .then_error(|| DescribeLaunchTemplateVersionsError::generic(meta("UnauthorizedOperation")));
    let clients = ec2_with(&[&lt])
        .eks(&[&describe, &list_ng, &describe_ng, &addons, &entries])
        .eks(&[&versions])
        .clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    for rule in [
        "network-policy-not-enforced",
        "access-entry-broad-admin",
        "version-unsupported",
    ] {
        let (st, msg) = only(&r, rule);
        assert_eq!(st, Status::Unknown, "{rule}: {msg}");
        assert!(msg.contains("AccessDeniedException"), "{rule}: {msg}");
    }
    let ng: Vec<_> = verdict(&r, "nodes-imdsv1")
        .into_iter()
        .filter(|x| x.resource_id == "ng")
        .collect();
    assert_eq!(ng.len(), 1);
    assert_eq!(ng[0].status, Status::Unknown);
    assert!(
        ng[0].message.contains("UnauthorizedOperation"),
        "{}",
        ng[0].message
    );
    // What DescribeCluster answered is still judged.
    assert_eq!(only(&r, "secrets-not-encrypted").0, Status::Pass);

    // A denied second-level read is unknown for exactly what it would have told.
    let addons = list_addons(&["vpc-cni"]);
    let cni = mock!(aws_sdk_eks::Client::describe_addon)
        .then_error(move || DescribeAddonError::generic(denied()));
    let entries = admin_entries(&[CREATOR]);
    let policies = mock!(aws_sdk_eks::Client::list_associated_access_policies)
        .then_error(move || ListAssociatedAccessPoliciesError::generic(denied()));
    let versions = version(VersionStatus::StandardSupport);
    let clients = ec2_with(&[])
        .eks(&[&describe, &no_nodegroups(), &addons, &cni, &entries])
        .eks(&[&policies, &versions])
        .clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    let (st, msg) = only(&r, "network-policy-not-enforced");
    assert_eq!(st, Status::Unknown);
    assert!(
        msg.contains("vpc-cni") && msg.contains("AccessDeniedException"),
        "{msg}"
    );
    let admin = verdict(&r, "access-entry-broad-admin");
    assert_eq!(admin.len(), 1);
    assert_eq!(
        (admin[0].resource_id.as_str(), admin[0].status),
        (CREATOR, Status::Unknown)
    );
}

/// moto's answer to an API it lacks: a 404 HTML page, which the SDK cannot parse as an AWS error.
#[tokio::test]
async fn an_api_the_endpoint_lacks_is_unknown_not_a_failed_evaluation() {
    let page = || Some("<!doctype html><title>404 Not Found</title><h1>Not Found</h1>".to_string());
    let describe = describe_cluster(Spec::default());
    let addons = mock!(aws_sdk_eks::Client::list_addons)
        .sequence()
        .http_status(404, page())
        .build();
    let entries = mock!(aws_sdk_eks::Client::list_access_entries)
        .sequence()
        .http_status(404, page())
        .build();
    let versions = mock!(aws_sdk_eks::Client::describe_cluster_versions)
        .sequence()
        .http_status(404, page())
        .build();
    // No quiet EKS answers: a second ListAddons would find its 404 rule spent and fail, not pass.
    let clients = ec2_with(&[])
        .eks(&[&describe, &no_nodegroups(), &addons, &entries, &versions])
        .clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    for (rule, op) in [
        ("network-policy-not-enforced", "ListAddons"),
        ("access-entry-broad-admin", "ListAccessEntries"),
        ("version-unsupported", "DescribeClusterVersions"),
    ] {
        let (st, msg) = only(&r, rule);
        assert_eq!(st, Status::Unknown, "{rule}: {msg}");
        assert!(
            msg.contains("NotImplemented") && msg.contains(op) && msg.contains("not offered"),
            "{rule}: {msg}"
        );
    }
    // Each was asked once: a 404 is not retried.
    assert_eq!(
        (
            addons.num_calls(),
            entries.num_calls(),
            versions.num_calls()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn disabled_rules_skip_their_reads() {
    let describe = describe_cluster(Spec::default());
    let addons = list_addons(&["vpc-cni"]);
    let cni = vpc_cni(r#"{"enableNetworkPolicy": "true"}"#);
    let entries = admin_entries(&[CREATOR]);
    let policies = cluster_scope_admin();
    let versions = version(VersionStatus::StandardSupport);
    let [list_ng, describe_ng] = one_nodegroup();
    let lt = template_versions();
    let clients = ec2_with(&[&lt])
        .eks(&[&describe, &list_ng, &describe_ng, &addons, &cni])
        .eks(&[&entries, &policies, &versions])
        .clients();
    let settings = common::context::disabling(&[
        "network-policy-not-enforced",
        "access-entry-broad-admin",
        "version-unsupported",
        "nodes-imdsv1",
    ]);
    let r = evaluate_cluster(&clients, "prod", &settings).await.unwrap();
    for rule in [&addons, &cni, &entries, &policies, &versions, &lt] {
        assert_eq!(rule.num_calls(), 0);
    }
    // DescribeCluster, ListNodegroups, DescribeInstances; DescribeNodegroup. Nothing else.
    assert_eq!(r.aws_calls, 4);
    assert!(r
        .results
        .iter()
        .all(|x| !settings.disabled_rules.contains(&x.rule_id)));
}
