//! Error paths at the SDK boundary with aws-smithy-mocks: what the emulator cannot produce on demand.

use crate::common;

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
