//! The actuator: the only place eks-warden writes to AWS.

use super::plans::Action;
use crate::collect::Clients;
use aws_sdk_ec2::types::{AttributeBooleanValue, HttpTokensState};
use aws_sdk_eks::operation::update_cluster_config::builders::UpdateClusterConfigFluentBuilder;
use aws_sdk_eks::types::{
    AuthenticationMode, EncryptionConfig, LogSetup, LogType, Logging, Provider, ResolveConflicts,
    UpdateAccessConfigRequest, VpcConfigRequest,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The write calls the actuator can make; a dry run counts on this being the only place they happen.
pub(super) async fn execute(clients: &Clients, a: &Action) -> Result<(), String> {
    match a {
        Action::UpdateClusterConfig {
            cluster,
            endpoint_public_access,
            endpoint_private_access,
            public_access_cidrs,
        } => {
            let vpc = VpcConfigRequest::builder()
                .set_endpoint_public_access(*endpoint_public_access)
                .set_endpoint_private_access(*endpoint_private_access)
                .set_public_access_cidrs(public_access_cidrs.clone())
                .build();
            update_cluster(clients, cluster, |u| u.resources_vpc_config(vpc)).await
        }
        Action::RevokeSecurityGroupIngress {
            group_id, rule_ids, ..
        } => {
            let sent = clients
                .ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_security_group_rule_ids(Some(rule_ids.clone()))
                .send()
                .await;
            done("RevokeSecurityGroupIngress", sent)
        }
        Action::DisableMapPublicIpOnLaunch { subnet_id } => {
            let sent = clients
                .ec2
                .modify_subnet_attribute()
                .subnet_id(subnet_id)
                .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
                .send()
                .await;
            done("ModifySubnetAttribute", sent)
        }
        Action::EnableClusterLogging { cluster, types } => {
            let setup = types
                .iter()
                .fold(LogSetup::builder().enabled(true), |b, t| {
                    b.types(LogType::from(t.as_str()))
                })
                .build();
            let logging = Logging::builder().cluster_logging(setup).build();
            update_cluster(clients, cluster, |u| u.logging(logging)).await
        }
        Action::EnableAccessEntries { cluster } => {
            let access = UpdateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                .build();
            update_cluster(clients, cluster, |u| u.access_config(access)).await
        }
        Action::EnableDeletionProtection { cluster } => {
            update_cluster(clients, cluster, |u| u.deletion_protection(true)).await
        }
        Action::EnableVpcCniNetworkPolicy {
            cluster,
            configuration_values,
        } => {
            let sent = clients
                .eks
                .update_addon()
                .cluster_name(cluster)
                .addon_name("vpc-cni")
                .configuration_values(configuration_values)
                .resolve_conflicts(ResolveConflicts::Preserve)
                .send()
                .await;
            done("UpdateAddon", sent)
        }
        Action::RequireImdsV2 { instance_ids } => require_imds_v2(clients, instance_ids).await,
        Action::EncryptSecrets { cluster, key_arn } => {
            encrypt_secrets(clients, cluster, key_arn).await
        }
    }
}

/// One UpdateClusterConfig call on `cluster`, with what `change` sets (EKS takes one change a call).
async fn update_cluster(
    clients: &Clients,
    cluster: &str,
    change: impl FnOnce(UpdateClusterConfigFluentBuilder) -> UpdateClusterConfigFluentBuilder,
) -> Result<(), String> {
    let sent = change(clients.eks.update_cluster_config().name(cluster))
        .send()
        .await;
    done("UpdateClusterConfig", sent)
}

/// IMDSv2 required (hop limit 1) on each instance in turn; the first failure stops the rest.
async fn require_imds_v2(clients: &Clients, instance_ids: &[String]) -> Result<(), String> {
    for instance_id in instance_ids {
        let sent = clients
            .ec2
            .modify_instance_metadata_options()
            .instance_id(instance_id)
            .http_tokens(HttpTokensState::Required)
            .http_put_response_hop_limit(1)
            .send()
            .await;
        done("ModifyInstanceMetadataOptions", sent)?;
    }
    Ok(())
}

/// Envelope encryption of the cluster's secrets with the customer key.
// `EncryptionConfig.resources` is deprecated in the model, but AssociateEncryptionConfig still takes the
// `secrets` resource to say what the customer key envelopes.
#[allow(deprecated)]
async fn encrypt_secrets(clients: &Clients, cluster: &str, key_arn: &str) -> Result<(), String> {
    let config = EncryptionConfig::builder()
        .resources("secrets")
        .provider(Provider::builder().key_arn(key_arn).build())
        .build();
    let sent = clients
        .eks
        .associate_encryption_config()
        .cluster_name(cluster)
        .encryption_config(config)
        .send()
        .await;
    done("AssociateEncryptionConfig", sent)
}

/// A write call's answer as the actuator reports it: nothing on success, the error line otherwise.
fn done<T, E, R>(op: &str, sent: Result<T, SdkError<E, R>>) -> Result<(), String>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    sent.map(|_| ())
        .map_err(|e| crate::collect::error_line(op, &e))
}
