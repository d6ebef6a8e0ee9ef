//! One SQS batch the size of a Terraform apply: CloudTrail records of the kinds an apply emits, in the
//! EventBridge envelope, each in an SQS record, naming the resources of three clusters.

use serde_json::{json, Value};

pub struct StormCluster {
    pub name: String,
    pub node_sg: String,
    pub instance: String,
    pub subnet: String,
    pub route_table: String,
    pub template: String,
}

const ACCOUNT: &str = "123456789012";

fn envelope(
    region: &str,
    i: usize,
    source: &str,
    name: &str,
    request: Value,
    response: Value,
) -> Value {
    let service = source.trim_end_matches(".amazonaws.com");
    let detail = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEID:terraform",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/terraform"),
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{ACCOUNT}:role/ci-deployer"), "accountId": ACCOUNT, "userName": "ci-deployer"}}
        },
        "eventTime": "2025-06-01T10:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": format!("req-{i:06}"),
        "eventID": format!("evt-{i:06}"),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"
    });
    json!({
        "version": "0",
        "id": format!("eb-{i:06}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": ACCOUNT,
        "time": "2025-06-01T10:00:05Z",
        "region": region,
        "resources": [],
        "detail": detail
    })
}

/// The i-th record of the storm: eight kinds of change in turn, over the clusters in turn.
fn record(region: &str, i: usize, clusters: &[StormCluster]) -> Value {
    let c = &clusters[i % clusters.len()];
    let (source, name, request, response) = match (i / clusters.len()) % 8 {
        0 => (
            "eks.amazonaws.com",
            "UpdateClusterConfig",
            json!({"name": c.name, "logging": {"clusterLogging": [{"types": ["api", "audit"], "enabled": true}]}}),
            json!({"update": {"id": format!("upd-{i}"), "status": "InProgress", "type": "LoggingUpdate"}}),
        ),
        1 => (
            "eks.amazonaws.com",
            "TagResource",
            json!({"resourceArn": format!("arn%3Aaws%3Aeks%3A{region}%3A{ACCOUNT}%3Acluster%2F{}", c.name), "tags": {"cost-center": format!("cc-{i}")}}),
            Value::Null,
        ),
        2 => (
            "eks.amazonaws.com",
            "UpdateNodegroupConfig",
            json!({"name": c.name, "nodegroupName": "general", "scalingConfig": {"desiredSize": 3}}),
            json!({"update": {"id": format!("upd-{i}"), "status": "InProgress"}}),
        ),
        3 => (
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress",
            json!({"groupId": c.node_sg, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                "groups": {}, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/16"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}}),
            json!({"_return": true, "securityGroupRuleSet": {"items": [{"groupId": c.node_sg, "securityGroupRuleId": format!("sgr-{i:08x}")}]}}),
        ),
        4 => (
            "ec2.amazonaws.com",
            "ModifyInstanceMetadataOptions",
            json!({"ModifyInstanceMetadataOptionsRequest": {"InstanceId": c.instance, "HttpTokens": "required", "HttpPutResponseHopLimit": 1}}),
            json!({"ModifyInstanceMetadataOptionsResponse": {"instanceId": c.instance}}),
        ),
        5 => (
            "ec2.amazonaws.com",
            "ModifySubnetAttribute",
            json!({"subnetId": c.subnet, "mapPublicIpOnLaunch": {"value": false}}),
            json!({"_return": true}),
        ),
        6 => (
            "ec2.amazonaws.com",
            "CreateRoute",
            json!({"routeTableId": c.route_table, "destinationCidrBlock": "192.0.2.0/24", "natGatewayId": "nat-0a1b2c3d4e5f60718"}),
            json!({"_return": true}),
        ),
        _ => (
            "ec2.amazonaws.com",
            "CreateLaunchTemplateVersion",
            json!({"CreateLaunchTemplateVersionRequest": {"LaunchTemplateId": c.template, "SourceVersion": "1",
                "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}}}),
            json!({"CreateLaunchTemplateVersionResponse": {"launchTemplateVersion": {"launchTemplateId": c.template, "versionNumber": 2}}}),
        ),
    };
    envelope(region, i, source, name, request, response)
}

/// `n` records in one SQS batch.
pub fn batch(region: &str, n: usize, clusters: &[StormCluster]) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let body = record(region, i, clusters).to_string();
            json!({
                "messageId": format!("00000000-0000-4000-8000-{i:012}"),
                "receiptHandle": format!("AQEB{i:08}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1748772005000",
                    "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1748772005100"},
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{region}:{ACCOUNT}:eks-warden-events"),
                "awsRegion": region
            })
        })
        .collect();
    json!({ "Records": records })
}
