//! The actuator: the only place eks-warden writes to AWS.

use super::plans::Action;
use crate::collect::Clients;
use aws_sdk_ec2::types::AttributeBooleanValue;
use aws_sdk_eks::types::VpcConfigRequest;

/// The write calls the actuator can make; a dry run counts on this being the only place they happen.
// `EncryptionConfig.resources` is deprecated in the model, but AssociateEncryptionConfig still takes the
// `secrets` resource to say what the customer key envelopes.
#[allow(deprecated)]
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
            clients
                .eks
                .update_cluster_config()
                .name(cluster)
                .resources_vpc_config(vpc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e))
        }
        Action::RevokeSecurityGroupIngress {
            group_id, rule_ids, ..
        } => clients
            .ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(rule_ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("RevokeSecurityGroupIngress", &e)),
        Action::DisableMapPublicIpOnLaunch { subnet_id } => clients
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("ModifySubnetAttribute", &e)),
        Action::EnableClusterLogging { cluster, types } => {
            let setup = types
                .iter()
                .fold(
                    aws_sdk_eks::types::LogSetup::builder().enabled(true),
                    |b, t| b.types(aws_sdk_eks::types::LogType::from(t.as_str())),
                )
                .build();
            clients
                .eks
                .update_cluster_config()
                .name(cluster)
                .logging(
                    aws_sdk_eks::types::Logging::builder()
                        .cluster_logging(setup)
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e))
        }
        Action::EnableAccessEntries { cluster } => clients
            .eks
            .update_cluster_config()
            .name(cluster)
            .access_config(
                aws_sdk_eks::types::UpdateAccessConfigRequest::builder()
                    .authentication_mode(aws_sdk_eks::types::AuthenticationMode::ApiAndConfigMap)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e)),
        Action::EnableDeletionProtection { cluster } => clients
            .eks
            .update_cluster_config()
            .name(cluster)
            .deletion_protection(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateClusterConfig", &e)),
        Action::EnableVpcCniNetworkPolicy {
            cluster,
            configuration_values,
        } => clients
            .eks
            .update_addon()
            .cluster_name(cluster)
            .addon_name("vpc-cni")
            .configuration_values(configuration_values)
            .resolve_conflicts(aws_sdk_eks::types::ResolveConflicts::Preserve)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("UpdateAddon", &e)),
        Action::RequireImdsV2 { instance_ids } => {
            for instance_id in instance_ids {
                clients
                    .ec2
                    .modify_instance_metadata_options()
                    .instance_id(instance_id)
                    .http_tokens(aws_sdk_ec2::types::HttpTokensState::Required)
                    .http_put_response_hop_limit(1)
                    .send()
                    .await
                    .map_err(|e| crate::collect::error_line("ModifyInstanceMetadataOptions", &e))?;
            }
            Ok(())
        }
        Action::EncryptSecrets { cluster, key_arn } => clients
            .eks
            .associate_encryption_config()
            .cluster_name(cluster)
            .encryption_config(
                aws_sdk_eks::types::EncryptionConfig::builder()
                    .resources("secrets")
                    .provider(
                        aws_sdk_eks::types::Provider::builder()
                            .key_arn(key_arn)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::collect::error_line("AssociateEncryptionConfig", &e)),
    }
}
