//! Nodes seeded into the emulator: managed nodegroups, launch templates and node instances tagged the
//! way EKS tags them. Part of [`super`] (the seeding helpers), re-exported there.

use super::Error;
use aws_sdk_ec2::types::{
    HttpTokensState, InstanceMetadataOptionsRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateInstanceMetadataOptionsRequest, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};
use aws_sdk_eks::types::{LaunchTemplateSpecification, RemoteAccessConfig};

/// Remote access of a seeded nodegroup.
pub enum Ssh<'a> {
    /// A key and no source groups: SSH open to the internet.
    OpenToWorld,
    /// A key restricted to these source groups.
    From(&'a [&'a str]),
}

pub async fn nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    subnets: &[&str],
    ssh: Ssh<'_>,
) -> Result<(), Error> {
    let remote = match ssh {
        Ssh::OpenToWorld => RemoteAccessConfig::builder().ec2_ssh_key("ops-key").build(),
        Ssh::From(groups) => groups
            .iter()
            .fold(
                RemoteAccessConfig::builder().ec2_ssh_key("ops-key"),
                |b, g| b.source_security_groups(*g),
            )
            .build(),
    };
    eks.create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .set_subnets(Some(subnets.iter().map(|s| s.to_string()).collect()))
        .node_role("arn:aws:iam::123456789012:role/eks-node")
        .remote_access(remote)
        .send()
        .await?;
    Ok(())
}

/// A managed nodegroup launched from a launch template (`version` None: the template's default).
/// No remote access (plain moto would invent one, docs/emulator.md).
pub async fn nodegroup_from_template(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
    subnets: &[&str],
    template_id: &str,
    version: Option<&str>,
) -> Result<(), Error> {
    eks.create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .set_subnets(Some(subnets.iter().map(|s| s.to_string()).collect()))
        .node_role("arn:aws:iam::123456789012:role/eks-node")
        .launch_template(
            LaunchTemplateSpecification::builder()
                .id(template_id)
                .set_version(version.map(str::to_string))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// A launch template whose only setting is the metadata options (`None`: it sets none). Returns its id.
pub async fn launch_template(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    imds: Option<(&str, i32)>,
) -> Result<String, Error> {
    let mut data = RequestLaunchTemplateData::builder().image_id("ami-12c6146b");
    if let Some((tokens, hops)) = imds {
        data = data.metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::from(tokens))
                .http_put_response_hop_limit(hops)
                .build(),
        );
    }
    create_template(ec2, name, data.build(), None).await
}

/// A launch template with no settings but the `eks:cluster-name` tag of `cluster` (which leads an
/// event about the template to its cluster). Returns its id.
pub async fn cluster_launch_template(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    cluster: &str,
) -> Result<String, Error> {
    let data = RequestLaunchTemplateData::builder()
        .image_id("ami-12c6146b")
        .build();
    let tag = cluster_name_tag(ResourceType::LaunchTemplate, cluster);
    create_template(ec2, name, data, Some(tag)).await
}

async fn create_template(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    data: RequestLaunchTemplateData,
    tags: Option<TagSpecification>,
) -> Result<String, Error> {
    let out = ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data)
        .set_tag_specifications(tags.map(|t| vec![t]))
        .send()
        .await?;
    Ok(out
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .ok_or("no launch template id")?
        .to_string())
}

/// A new version of a template with other metadata options. Returns its number.
pub async fn launch_template_version(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
    imds: (&str, i32),
) -> Result<i64, Error> {
    let out = ec2
        .create_launch_template_version()
        .launch_template_id(template_id)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .metadata_options(
                    LaunchTemplateInstanceMetadataOptionsRequest::builder()
                        .http_tokens(LaunchTemplateHttpTokensState::from(imds.0))
                        .http_put_response_hop_limit(imds.1)
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    Ok(out
        .launch_template_version()
        .and_then(|v| v.version_number())
        .ok_or("no version number")?)
}

/// A node instance tagged the way EKS tags managed nodes. Returns the instance id.
pub async fn node(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    subnet: &str,
    groups: &[&str],
) -> Result<String, Error> {
    node_with(ec2, cluster, nodegroup, subnet, groups, None).await
}

/// A node instance with explicit metadata options (HttpTokens, hop limit); moto's default is
/// `optional` with hop limit 1.
pub async fn node_with(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    subnet: &str,
    groups: &[&str],
    imds: Option<(&str, i32)>,
) -> Result<String, Error> {
    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(
            Tag::builder()
                .key(format!("kubernetes.io/cluster/{cluster}"))
                .value("owned")
                .build(),
        )
        .tags(
            Tag::builder()
                .key("eks:cluster-name")
                .value(cluster)
                .build(),
        );
    if let Some(ng) = nodegroup {
        tags = tags.tags(Tag::builder().key("eks:nodegroup-name").value(ng).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Medium)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .set_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
        .tag_specifications(tags.build())
        .set_metadata_options(imds.map(|(tokens, hops)| {
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::from(tokens))
                .http_put_response_hop_limit(hops)
                .build()
        }))
        .send()
        .await?;
    Ok(out
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .ok_or("no instance id")?
        .to_string())
}

/// The `eks:cluster-name` tag EKS puts on what it creates for `cluster`, on a resource of `kind`.
pub fn cluster_name_tag(kind: ResourceType, cluster: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(
            Tag::builder()
                .key("eks:cluster-name")
                .value(cluster)
                .build(),
        )
        .build()
}
