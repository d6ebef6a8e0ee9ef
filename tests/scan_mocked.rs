//! Error paths at the SDK boundary with aws-smithy-mocks: what the emulator cannot produce on demand.

use aws_sdk_ec2::operation::{
    describe_instances::DescribeInstancesError, describe_route_tables::DescribeRouteTablesError,
    describe_security_groups::DescribeSecurityGroupsError, describe_subnets::DescribeSubnetsError,
};
use aws_sdk_eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use aws_sdk_eks::operation::list_clusters::ListClustersOutput;
use aws_sdk_eks::operation::list_nodegroups::{ListNodegroupsError, ListNodegroupsOutput};
use aws_sdk_eks::types::{Cluster, ClusterStatus, VpcConfigResponse};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use eks_warden::collect::{Clients, CollectError};
use eks_warden::rules::Status;
use eks_warden::scan::{evaluate_cluster, scan};
use eks_warden::settings::Settings;

fn cluster(name: &str) -> Cluster {
    Cluster::builder()
        .name(name)
        .arn(format!("arn:aws:eks:eu-west-1:111122223333:cluster/{name}"))
        .status(ClusterStatus::Active)
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

fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn describe_cluster_ok() -> Rule {
    mock!(aws_sdk_eks::Client::describe_cluster).then_compute_output(|req| {
        DescribeClusterOutput::builder()
            .cluster(cluster(req.name().unwrap_or("x")))
            .build()
    })
}

fn no_nodegroups() -> Rule {
    mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().build())
}

fn ec2_all(code: &'static str) -> aws_sdk_ec2::Client {
    mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [
            &mock!(aws_sdk_ec2::Client::describe_instances)
                .then_error(move || DescribeInstancesError::generic(meta(code))),
            &mock!(aws_sdk_ec2::Client::describe_subnets)
                .then_error(move || DescribeSubnetsError::generic(meta(code))),
            &mock!(aws_sdk_ec2::Client::describe_route_tables)
                .then_error(move || DescribeRouteTablesError::generic(meta(code))),
            &mock!(aws_sdk_ec2::Client::describe_security_groups)
                .then_error(move || DescribeSecurityGroupsError::generic(meta(code))),
        ]
    )
}

#[tokio::test]
async fn access_denied_reads_become_unknown_never_pass() {
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&describe_cluster_ok(), &no_nodegroups()]
    );
    let clients = Clients {
        eks,
        ec2: ec2_all("UnauthorizedOperation"),
    };
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    let by_rule = |id: &str| {
        r.results
            .iter()
            .filter(|x| x.rule_id == id)
            .map(|x| x.status)
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
    ] {
        let st = by_rule(id);
        assert!(
            !st.is_empty() && st.iter().all(|s| *s == Status::Unknown),
            "{id}: {st:?}"
        );
    }
    let unknown = r
        .results
        .iter()
        .find(|x| x.rule_id == "subnets-single-az")
        .unwrap();
    assert!(
        unknown.message.contains("UnauthorizedOperation"),
        "{}",
        unknown.message
    );
}

#[tokio::test]
async fn denied_nodegroup_listing_is_unknown_for_nodegroup_rules() {
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [
            &describe_cluster_ok(),
            &mock!(aws_sdk_eks::Client::list_nodegroups)
                .then_error(|| ListNodegroupsError::generic(meta("AccessDeniedException")))
        ]
    );
    let clients = Clients {
        eks,
        ec2: ec2_all("UnauthorizedOperation"),
    };
    let r = evaluate_cluster(&clients, "prod", &Settings::default())
        .await
        .unwrap();
    let ssh: Vec<_> = r
        .results
        .iter()
        .filter(|x| x.rule_id == "nodegroup-ssh-open")
        .collect();
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
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&list, &describe, &no_nodegroups()]
    );
    let clients = Clients {
        eks,
        ec2: ec2_all("UnauthorizedOperation"),
    };
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
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&describe_cluster_ok(), &no_nodegroups()]
    );
    let clients = Clients {
        eks,
        ec2: ec2_all("RequestLimitExceeded"),
    };
    match evaluate_cluster(&clients, "prod", &Settings::default()).await {
        Err(CollectError::Aws { code, .. }) => assert_eq!(code, "RequestLimitExceeded"),
        other => panic!("expected a failed evaluation, got {other:?}"),
    }
}
