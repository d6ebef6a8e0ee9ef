//! Mocked SDK clients (aws-smithy-mocks) for what the emulator cannot produce on demand: denied reads,
//! throttling that outlasts the SDK's retries, a cluster that disappears or stays busy. A test gives the
//! answers particular to it; [`Mocked::quiet`] answers the collector's other reads "nothing there".

use aws_sdk_ec2::operation::{
    describe_instances::DescribeInstancesOutput, describe_route_tables::DescribeRouteTablesOutput,
    describe_security_groups::DescribeSecurityGroupsOutput,
    describe_subnets::DescribeSubnetsOutput,
};
use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
use aws_sdk_eks::operation::describe_cluster_versions::DescribeClusterVersionsOutput;
use aws_sdk_eks::operation::list_access_entries::ListAccessEntriesOutput;
use aws_sdk_eks::operation::list_addons::ListAddonsOutput;
use aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput;
use aws_sdk_eks::types::builders::ClusterBuilder;
use aws_sdk_eks::types::{Cluster, ClusterStatus, VpcConfigResponse};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use eks_warden::collect::Clients;
use eks_warden::handler::Context;
use eks_warden::settings::Settings;

/// The account and region of every mocked answer.
pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "eu-west-1";

/// Mocked EKS and EC2 clients. The test's own rules come first: the first rule that matches a request
/// answers it; the quiet answers, when asked for, come after them.
#[derive(Clone, Default)]
pub struct Mocked {
    eks: Vec<Rule>,
    ec2: Vec<Rule>,
    eks_quiet: Vec<Rule>,
    ec2_quiet: Vec<Rule>,
    no_eks_retries: bool,
}

impl Mocked {
    /// No rule at all: a request no rule of the test answers fails, so it is noticed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The collector's reads answered "nothing there" on both clients, after the test's own rules.
    pub fn quiet() -> Self {
        Self::new().quiet_eks().quiet_ec2()
    }

    /// No nodegroups, add-ons or access entries, and no version EKS lists.
    pub fn quiet_eks(mut self) -> Self {
        self.eks_quiet = vec![
            no_nodegroups(),
            mock!(aws_sdk_eks::Client::list_addons)
                .then_output(|| ListAddonsOutput::builder().build()),
            mock!(aws_sdk_eks::Client::list_access_entries)
                .then_output(|| ListAccessEntriesOutput::builder().build()),
            mock!(aws_sdk_eks::Client::describe_cluster_versions)
                .then_output(|| DescribeClusterVersionsOutput::builder().build()),
        ];
        self
    }

    /// No instances, subnets, route tables or security groups.
    pub fn quiet_ec2(mut self) -> Self {
        self.ec2_quiet = vec![
            mock!(aws_sdk_ec2::Client::describe_instances)
                .then_output(|| DescribeInstancesOutput::builder().build()),
            mock!(aws_sdk_ec2::Client::describe_subnets)
                .then_output(|| DescribeSubnetsOutput::builder().build()),
            mock!(aws_sdk_ec2::Client::describe_route_tables)
                .then_output(|| DescribeRouteTablesOutput::builder().build()),
            mock!(aws_sdk_ec2::Client::describe_security_groups)
                .then_output(|| DescribeSecurityGroupsOutput::builder().build()),
        ];
        self
    }

    /// EKS rules, ahead of the quiet answers. The rules share their call counts with the test's copies.
    pub fn eks(mut self, rules: &[&Rule]) -> Self {
        self.eks.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    /// EC2 rules, ahead of the quiet answers.
    pub fn ec2(mut self, rules: &[&Rule]) -> Self {
        self.ec2.extend(rules.iter().map(|r| (*r).clone()));
        self
    }

    /// The SDK's own retries off on EKS: a throttled answer is final at once.
    pub fn no_eks_retries(mut self) -> Self {
        self.no_eks_retries = true;
        self
    }

    pub fn eks_client(&self) -> aws_sdk_eks::Client {
        let rules = self.eks.iter().chain(&self.eks_quiet);
        if self.no_eks_retries {
            mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules, |c| c
                .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled()))
        } else {
            mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules)
        }
    }

    pub fn ec2_client(&self) -> aws_sdk_ec2::Client {
        mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            self.ec2.iter().chain(&self.ec2_quiet)
        )
    }

    pub fn clients(&self) -> Clients {
        Clients {
            eks: self.eks_client(),
            ec2: self.ec2_client(),
        }
    }

    /// A handler context over these clients in [`REGION`], with default settings, no topic and no
    /// re-check queue: SNS and SQS are never called unless the test sets them.
    pub fn context(&self) -> Context {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .build();
        Context::new(&conf, self.clients(), Settings::default())
    }
}

/// An AWS error with this code, as the SDK parses it.
pub fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

/// ListNodegroups answering none.
pub fn no_nodegroups() -> Rule {
    mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().build())
}

/// A cluster `name` of [`ACCOUNT`] in [`REGION`], ACTIVE; the test adds what it judges.
pub fn cluster(name: &str) -> ClusterBuilder {
    Cluster::builder()
        .name(name)
        .arn(format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}"))
        .status(ClusterStatus::Active)
}

/// A cluster `name` in `status` whose private endpoint access is `private` (nothing else set).
pub fn cluster_in(name: &str, status: ClusterStatus, private: bool) -> Cluster {
    cluster(name)
        .status(status)
        .resources_vpc_config(
            VpcConfigResponse::builder()
                .endpoint_private_access(private)
                .build(),
        )
        .build()
}

/// DescribeCluster answering `cluster`, whatever the name asked.
pub fn describe_cluster(cluster: Cluster) -> Rule {
    mock!(aws_sdk_eks::Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(cluster.clone())
            .build()
    })
}
