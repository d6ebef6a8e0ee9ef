//! Handler contexts, settings and fix policies as the tests need them: a test names only what differs
//! from the defaults.

use eks_warden::collect::Clients;
use eks_warden::handler::Context;
use eks_warden::remediate::{Mode, Policy};
use eks_warden::settings::Settings;

/// A handler context against the emulator in `region`: its clients, default settings, nothing else set.
pub async fn context(region: &str) -> Context {
    let conf = super::sdk_config(region).await;
    let (clients, _) = super::clients(region).await;
    Context::new(&conf, clients, Settings::default())
}

/// A handler context over these clients, with default settings.
pub fn context_over(conf: &aws_config::SdkConfig, clients: Clients) -> Context {
    Context::new(conf, clients, Settings::default())
}

/// The default settings with these rules disabled.
pub fn disabling(rules: &[&str]) -> Settings {
    Settings {
        disabled_rules: rules.iter().map(|r| r.to_string()).collect(),
        ..Settings::default()
    }
}

/// The default settings with this allow-list for the public endpoint.
pub fn allowing_public(cidrs: &[&str]) -> Settings {
    Settings {
        allowed_public_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        ..Settings::default()
    }
}

/// A fix policy in `mode` opted into `rules`, everything else at its default.
pub fn fix_policy(mode: Mode, rules: &[&str]) -> Policy {
    Policy {
        mode,
        rules: rules.iter().map(|r| r.to_string()).collect(),
        ..Policy::default()
    }
}

/// The same configuration with the credentials of `role_arn` (moto keeps accounts apart, so a role in
/// another account acts in that account).
pub async fn assume_role(
    conf: &aws_config::SdkConfig,
    role_arn: &str,
    session: &str,
) -> aws_config::SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(session)
        .configure(conf)
        .build()
        .await;
    conf.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// Clients acting in `account` through its `eks-warden-member` role.
pub async fn member_clients(conf: &aws_config::SdkConfig, account: &str) -> Clients {
    let role = format!("arn:aws:iam::{account}:role/eks-warden-member");
    Clients::new(&assume_role(conf, &role, "seed").await)
}
