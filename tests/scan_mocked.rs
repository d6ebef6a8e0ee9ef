//! Error paths at the SDK boundary with aws-smithy-mocks: what the emulator cannot produce on demand.

mod common;

use aws_sdk_ec2::operation::{
    describe_instances::DescribeInstancesError, describe_route_tables::DescribeRouteTablesError,
    describe_security_groups::DescribeSecurityGroupsError, describe_subnets::DescribeSubnetsError,
};
use aws_sdk_eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use aws_sdk_eks::operation::list_clusters::ListClustersOutput;
use aws_sdk_eks::operation::list_nodegroups::ListNodegroupsError;
use aws_sdk_eks::types::{Cluster, VpcConfigResponse};
use aws_smithy_mocks::{mock, Rule};
use common::mocked::{self, error as meta, Mocked};
use common::report::{results, statuses};
use eks_warden::collect::CollectError;
use eks_warden::rules::Status;
use eks_warden::scan::{evaluate_cluster, scan};
use eks_warden::settings::Settings;

/// A cluster every endpoint rule fails, in two subnets, with one extra security group.
fn cluster(name: &str) -> Cluster {
    mocked::cluster(name)
        .version("1.31")
        .resources_vpc_config(
            VpcConfigResponse::builder()
                .subnet_ids("subnet-a")
                .subnet_ids("subnet-b")
                .security_group_ids("sg-extra")
                .cluster_security_group_id("sg-cluster")
                .vpc_id("vpc-1")
                .endpoint_public_access(true)
                .endpoint_private_access(false)
                .public_access_cidrs("0.0.0.0/0")
                .build(),
        )
        .build()
}

fn describe_cluster_ok() -> Rule {
    mock!(aws_sdk_eks::Client::describe_cluster).then_compute_output(|req| {
        DescribeClusterOutput::builder()
            .cluster(cluster(req.name().unwrap_or("x")))
            .build()
    })
}

/// Every EC2 read the collector sends answered with the error `code`.
fn ec2_all(code: &'static str) -> [Rule; 4] {
    [
        mock!(aws_sdk_ec2::Client::describe_instances)
            .then_error(move || DescribeInstancesError::generic(meta(code))),
        mock!(aws_sdk_ec2::Client::describe_subnets)
            .then_error(move || DescribeSubnetsError::generic(meta(code))),
        mock!(aws_sdk_ec2::Client::describe_route_tables)
            .then_error(move || DescribeRouteTablesError::generic(meta(code))),
        mock!(aws_sdk_ec2::Client::describe_security_groups)
            .then_error(move || DescribeSecurityGroupsError::generic(meta(code))),
    ]
}

/// An active cluster DescribeCluster answers, EC2 answering every read with `code`, the rest quiet.
fn ec2_failing(code: &'static str) -> Mocked {
    let [a, b, c, d] = ec2_all(code);
    Mocked::quiet()
        .eks(&[&describe_cluster_ok()])
        .ec2(&[&a, &b, &c, &d])
}

#[tokio::test]
async fn access_denied_reads_become_unknown_never_pass() {
    let clients = ec2_failing("UnauthorizedOperation").clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    let by_rule = |id: &str| {
        statuses(&r, id)
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    // What DescribeCluster alone answers is still judged.
    assert_eq!(by_rule("endpoint-public-unrestricted"), vec![Status::Fail]);
    assert_eq!(by_rule("endpoint-private-disabled"), vec![Status::Fail]);
    // Everything that needs EC2 is unknown, with the reason.
    for id in [
        "subnets-single-az",
        "vpc-no-private-subnet",
        "nodes-in-public-subnet",
        "nodes-public-ip",
        "sg-open-ingress",
        "nodes-imdsv1",
    ] {
        let st = by_rule(id);
        assert!(
            !st.is_empty() && st.iter().all(|s| *s == Status::Unknown),
            "{id}: {st:?}"
        );
    }
    let unknown = results(&r, "subnets-single-az")[0];
    assert!(
        unknown.message.contains("UnauthorizedOperation"),
        "{}",
        unknown.message
    );
}

#[tokio::test]
async fn denied_nodegroup_listing_is_unknown_for_nodegroup_rules() {
    let denied = mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_error(|| ListNodegroupsError::generic(meta("AccessDeniedException")));
    let clients = ec2_failing("UnauthorizedOperation")
        .eks(&[&denied])
        .clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    let ssh = results(&r, "nodegroup-ssh-open");
    assert_eq!(ssh.len(), 1);
    assert_eq!(ssh[0].status, Status::Unknown);
    assert!(
        ssh[0].message.contains("AccessDeniedException"),
        "{}",
        ssh[0].message
    );
}

#[tokio::test]
async fn cluster_deleted_mid_scan_is_skipped_and_the_rest_evaluated() {
    let list = mock!(aws_sdk_eks::Client::list_clusters).then_output(|| {
        ListClustersOutput::builder()
            .clusters("alive")
            .clusters("gone")
            .build()
    });
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_compute_response(|req| {
        if req.name() == Some("gone") {
            aws_smithy_mocks::MockResponse::Error(DescribeClusterError::ResourceNotFoundException(
                aws_sdk_eks::types::error::ResourceNotFoundException::builder()
                    .message("No cluster found for name: gone.")
                    .build(),
            ))
        } else {
            aws_smithy_mocks::MockResponse::Output(
                DescribeClusterOutput::builder()
                    .cluster(cluster("alive"))
                    .build(),
            )
        }
    });
    let [a, b, c, d] = ec2_all("UnauthorizedOperation");
    let clients = Mocked::quiet()
        .eks(&[&list, &describe])
        .ec2(&[&a, &b, &c, &d])
        .clients();
    let report = scan(&clients, &[], &Settings::default()).await.unwrap();
    assert_eq!(report.clusters.len(), 1, "{report:?}");
    assert_eq!(report.clusters[0].cluster, "alive");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].cluster, "gone");
    assert!(report.errors.is_empty());

    // Named explicitly, a missing cluster is an error the CLI reports.
    let report = scan(&clients, &["gone".to_string()], &Settings::default())
        .await
        .unwrap();
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].error.contains("not found"),
        "{}",
        report.errors[0].error
    );
}

#[tokio::test]
async fn persistent_throttling_fails_the_evaluation_instead_of_judging() {
    let clients = ec2_failing("RequestLimitExceeded").clients();
    match evaluate_cluster(&clients, "prod", &Settings::default()).await {
        Err(CollectError::Aws { code, .. }) => assert_eq!(code, "RequestLimitExceeded"),
        other => panic!("expected a failed evaluation, got {other:?}"),
    }
}

// ---- The catalog's EKS reads (add-ons, access entries, cluster versions, accessConfig,
// ---- deletionProtection) when they are denied, not offered, or skipped. Their verdicts and fixes over
// ---- HTTP are in catalog_emulator.rs, against the emulator's EKS extension.

mod catalog {
    use super::common::mocked::{self, error as meta, no_nodegroups, Mocked};
    use super::common::report::{only, results as verdict};
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
        AuthenticationMode, ClusterVersionInformation, EncryptionConfig,
        LaunchTemplateSpecification, LogSetup, LogType, Logging, Nodegroup, NodegroupStatus,
        Provider, VersionStatus, VpcConfigResponse,
    };
    use aws_smithy_mocks::{mock, Rule};
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
        let lt = mock!(aws_sdk_ec2::Client::describe_launch_template_versions).then_error(|| {
            DescribeLaunchTemplateVersionsError::generic(meta("UnauthorizedOperation"))
        });
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
        let page =
            || Some("<!doctype html><title>404 Not Found</title><h1>Not Found</h1>".to_string());
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
        let settings = super::common::context::disabling(&[
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
}

/// Right after a change the two security-group reads can disagree: DescribeSecurityGroups lists a world-open
/// rule that DescribeSecurityGroupRules does not return yet. The verdict judges the union, so the group
/// fails instead of passing on the narrower read.
#[tokio::test]
async fn the_two_security_group_reads_disagreeing_never_hide_an_open_rule() {
    use aws_sdk_ec2::operation::{
        describe_security_group_rules::DescribeSecurityGroupRulesOutput,
        describe_security_groups::DescribeSecurityGroupsOutput,
    };
    use aws_sdk_ec2::types as ec2;
    let perm = |port: i32, cidr: &str| {
        ec2::IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port)
            .ip_ranges(ec2::IpRange::builder().cidr_ip(cidr).build())
            .build()
    };
    let (open, narrow) = (perm(22, "0.0.0.0/0"), perm(443, "10.0.0.0/8"));
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(move || {
        DescribeSecurityGroupsOutput::builder()
            .security_groups(
                ec2::SecurityGroup::builder()
                    .group_id("sg-extra")
                    .group_name("extra")
                    .vpc_id("vpc-1")
                    .ip_permissions(open.clone())
                    .ip_permissions(narrow.clone())
                    .build(),
            )
            .security_groups(
                ec2::SecurityGroup::builder()
                    .group_id("sg-cluster")
                    .group_name("cluster")
                    .vpc_id("vpc-1")
                    .build(),
            )
            .build()
    });
    // The rules read lags: it returns only the narrow rule.
    let rules = mock!(aws_sdk_ec2::Client::describe_security_group_rules).then_output(|| {
        DescribeSecurityGroupRulesOutput::builder()
            .security_group_rules(
                ec2::SecurityGroupRule::builder()
                    .security_group_rule_id("sgr-443")
                    .group_id("sg-extra")
                    .is_egress(false)
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .cidr_ipv4("10.0.0.0/8")
                    .build(),
            )
            .build()
    });
    let clients = Mocked::quiet()
        .eks(&[&describe_cluster_ok()])
        .ec2(&[&groups, &rules])
        .clients();
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    assert_eq!(rules.num_calls(), 1);
    let open: Vec<_> = results(&r, "sg-open-ingress")
        .into_iter()
        .filter(|x| x.resource_id == "sg-extra")
        .collect();
    assert_eq!(open.len(), 1, "{:#?}", r.results);
    assert_eq!(open[0].status, Status::Fail);
    assert_eq!(open[0].evidence["ports"], "tcp/22");
    // No rule id for it yet: the fix will say so rather than guess.
    assert!(!open[0].evidence.contains_key("rule_id"));
}
