//! Settings from the environment (docs/architecture.md, "Settings"), overridable by CLI flags.
//!
//! A bad value is an error naming the variable, never a panic and never a silent default.

use ipnet::IpNet;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// CIDRs the public API endpoint may be open to. Empty: no allow-list, only the whole-internet test applies.
    pub allowed_public_cidrs: Vec<IpNet>,
    /// Rule ids not evaluated at all.
    pub disabled_rules: BTreeSet<String>,
    /// Control-plane log types that must be enabled, spelled as EKS spells them.
    pub required_log_types: BTreeSet<String>,
    /// IAM principal ARNs (with `*` wildcards) allowed to hold cluster-wide `AmazonEKSClusterAdminPolicy`.
    pub allowed_admin_principals: Vec<String>,
    /// Add-on names that count as a network policy engine: the built-in Calico and Cilium names plus
    /// any configured ones, lower-cased.
    pub network_policy_addons: BTreeSet<String>,
    /// Cluster tags that name its owning team, first present wins; carried into every output format so a
    /// fleet-wide deployment can route findings per team.
    pub owner_tags: Vec<String>,
    /// The central exemption list and the day it is judged on, loaded per invocation or scan
    /// ([`crate::exemptions::load`]); empty when none is configured.
    pub exemptions: crate::exemptions::Exemptions,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allowed_public_cidrs: Vec::new(),
            disabled_rules: BTreeSet::new(),
            required_log_types: DEFAULT_REQUIRED_LOG_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            allowed_admin_principals: Vec::new(),
            network_policy_addons: DEFAULT_NETWORK_POLICY_ADDONS
                .iter()
                .map(|t| t.to_string())
                .collect(),
            owner_tags: DEFAULT_OWNER_TAGS.iter().map(|t| t.to_string()).collect(),
            exemptions: Default::default(),
        }
    }
}

impl Settings {
    /// True unless the rule is disabled: the collector skips the calls only disabled rules need.
    pub fn enabled(&self, rule_id: &str) -> bool {
        !self.disabled_rules.contains(rule_id)
    }
}

/// Tags read for a cluster's owner when none are configured.
pub const DEFAULT_OWNER_TAGS: &[&str] = &["owner", "team"];

/// The five control-plane log types EKS offers.
pub const LOG_TYPES: &[&str] = &[
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];

/// What CIS EKS 2.1.1 and the EKS best-practices guide ask for at least.
pub const DEFAULT_REQUIRED_LOG_TYPES: &[&str] = &["api", "audit", "authenticator"];

/// Add-on names of network policy engines: Calico (Tigera's operator, in the EKS community catalog and on
/// AWS Marketplace) and Cilium (Isovalent). Names vary by channel, so the list is extensible by setting.
pub const DEFAULT_NETWORK_POLICY_ADDONS: &[&str] = &[
    "calico",
    "tigera-operator",
    "tigera_calico",
    "tigera_tigera-operator",
    "tigera_calico-enterprise",
    "cilium",
    "isovalent_cilium",
    "isovalent_cilium-enterprise",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("{var}: {value:?} is not a CIDR ({reason})")]
    BadCidr {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("{var}: unknown rule id {id:?} (see `eks-warden rules`)")]
    UnknownRule { var: &'static str, id: String },
    #[error("{var}: unknown log type {value:?} (expected api, audit, authenticator, controllerManager or scheduler)")]
    BadLogType { var: &'static str, value: String },
    #[error(
        "{var}: no log type given (name at least one, or disable control-plane-logging-incomplete)"
    )]
    NoLogTypes { var: &'static str },
    #[error("{var}: {value:?} is not an IAM principal ARN (arn:PARTITION:iam::ACCOUNT:role/NAME, `*` allowed)")]
    BadPrincipal { var: &'static str, value: String },
    #[error("{var}: {value:?} is not a tag key (1 to 128 characters)")]
    BadTagKey { var: &'static str, value: String },
    #[error("{var}: {value:?} is not an add-on name (letters, digits, `-` and `_`, starting with a letter or digit)")]
    BadAddonName { var: &'static str, value: String },
}

pub const ENV_ALLOWED_PUBLIC_CIDRS: &str = "EKS_WARDEN_ALLOWED_PUBLIC_CIDRS";
pub const ENV_DISABLED_RULES: &str = "EKS_WARDEN_DISABLED_RULES";
pub const ENV_REQUIRED_LOG_TYPES: &str = "EKS_WARDEN_REQUIRED_LOG_TYPES";
pub const ENV_ALLOWED_ADMIN_PRINCIPALS: &str = "EKS_WARDEN_ALLOWED_ADMIN_PRINCIPALS";
pub const ENV_NETWORK_POLICY_ADDONS: &str = "EKS_WARDEN_NETWORK_POLICY_ADDONS";
pub const ENV_OWNER_TAGS: &str = "EKS_WARDEN_OWNER_TAGS";

impl Settings {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads every setting through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s = Settings::default();
        if let Some(v) = get(ENV_ALLOWED_PUBLIC_CIDRS) {
            s.allowed_public_cidrs = parse_cidrs(ENV_ALLOWED_PUBLIC_CIDRS, split_list(&v))?;
        }
        if let Some(v) = get(ENV_DISABLED_RULES) {
            s.disabled_rules = parse_rule_ids(ENV_DISABLED_RULES, split_list(&v))?;
        }
        if let Some(v) = get(ENV_REQUIRED_LOG_TYPES) {
            s.required_log_types = parse_log_types(ENV_REQUIRED_LOG_TYPES, split_list(&v))?;
        }
        if let Some(v) = get(ENV_ALLOWED_ADMIN_PRINCIPALS) {
            s.allowed_admin_principals =
                parse_principals(ENV_ALLOWED_ADMIN_PRINCIPALS, split_list(&v))?;
        }
        if let Some(v) = get(ENV_NETWORK_POLICY_ADDONS) {
            s.network_policy_addons.extend(parse_addon_names(
                ENV_NETWORK_POLICY_ADDONS,
                split_list(&v),
            )?);
        }
        if let Some(v) = get(ENV_OWNER_TAGS) {
            s.owner_tags = parse_tag_keys(ENV_OWNER_TAGS, split_list(&v))?;
        }
        Ok(s)
    }

    /// The cluster's owner: the value of the first configured owner tag it carries.
    pub fn owner_of(&self, tags: &std::collections::BTreeMap<String, String>) -> Option<String> {
        self.owner_tags
            .iter()
            .find_map(|k| tags.get(k).filter(|v| !v.trim().is_empty()).cloned())
    }
}

/// Tag keys as AWS allows them (1 to 128 characters); at least one.
pub fn parse_tag_keys<'a>(
    var: &'static str,
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, SettingsError> {
    let keys: Vec<String> = items.map(str::to_string).collect();
    match keys
        .iter()
        .find(|k| k.is_empty() || k.chars().count() > 128)
    {
        Some(bad) => Err(SettingsError::BadTagKey {
            var,
            value: bad.clone(),
        }),
        None if keys.is_empty() => Err(SettingsError::BadTagKey {
            var,
            value: String::new(),
        }),
        None => Ok(keys),
    }
}

/// Log types, matched without regard to case and returned as EKS spells them; at least one.
pub fn parse_log_types<'a>(
    var: &'static str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, SettingsError> {
    let types = items
        .into_iter()
        .map(|item| {
            LOG_TYPES
                .iter()
                .find(|t| t.eq_ignore_ascii_case(item))
                .map(|t| t.to_string())
                .ok_or_else(|| SettingsError::BadLogType {
                    var,
                    value: item.to_string(),
                })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if types.is_empty() {
        return Err(SettingsError::NoLogTypes { var });
    }
    Ok(types)
}

/// IAM principal ARNs: `arn:PARTITION:iam::ACCOUNT:RESOURCE`, where any part may use `*`.
pub fn parse_principals<'a>(
    var: &'static str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, SettingsError> {
    items
        .into_iter()
        .map(|item| {
            let parts: Vec<&str> = item.splitn(6, ':').collect();
            let ok = matches!(
                parts.as_slice(),
                ["arn", partition, "iam", "", account, resource]
                    if !partition.is_empty() && !account.is_empty() && !resource.is_empty()
            );
            if ok {
                Ok(item.to_string())
            } else {
                Err(SettingsError::BadPrincipal {
                    var,
                    value: item.to_string(),
                })
            }
        })
        .collect()
}

/// Add-on names as EKS allows them, lower-cased so that matching ignores case.
pub fn parse_addon_names<'a>(
    var: &'static str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, SettingsError> {
    items
        .into_iter()
        .map(|item| {
            let mut chars = item.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && item.len() <= 100;
            if ok {
                Ok(item.to_ascii_lowercase())
            } else {
                Err(SettingsError::BadAddonName {
                    var,
                    value: item.to_string(),
                })
            }
        })
        .collect()
}

/// Whether `arn` matches an allow-list pattern, where `*` stands for any run of characters.
pub fn principal_matches(pattern: &str, arn: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, rest @ ..] = parts.as_slice() else {
        return false;
    };
    let Some(mut tail) = arn.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// Splits a list setting on commas and white space, dropping empty items.
pub fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parses CIDRs; a bare address is taken as a host route (`/32`, `/128`).
pub fn parse_cidrs<'a>(
    var: &'static str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<IpNet>, SettingsError> {
    items
        .into_iter()
        .map(|item| {
            parse_cidr(item).map_err(|reason| SettingsError::BadCidr {
                var,
                value: item.to_string(),
                reason,
            })
        })
        .collect()
}

/// Parses one CIDR or bare address. The network is normalised (`10.1.2.3/8` → `10.0.0.0/8`).
pub fn parse_cidr(item: &str) -> Result<IpNet, String> {
    if let Ok(net) = item.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    item.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|e| e.to_string())
}

pub fn parse_rule_ids<'a>(
    var: &'static str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, SettingsError> {
    items
        .into_iter()
        .map(|id| {
            if crate::rules::find(id).is_some() {
                Ok(id.to_string())
            } else {
                Err(SettingsError::UnknownRule {
                    var,
                    id: id.to_string(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn empty_environment_gives_defaults() {
        assert_eq!(
            Settings::from_lookup(env(&[])).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn reads_cidrs_and_rules() {
        let s = Settings::from_lookup(env(&[
            (
                ENV_ALLOWED_PUBLIC_CIDRS,
                "203.0.113.0/24, 198.51.100.7 2001:db8::/32",
            ),
            (ENV_DISABLED_RULES, "subnets-single-az"),
        ]))
        .unwrap();
        assert_eq!(
            s.allowed_public_cidrs,
            vec![
                "203.0.113.0/24".parse::<IpNet>().unwrap(),
                "198.51.100.7/32".parse().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ]
        );
        assert!(s.disabled_rules.contains("subnets-single-az"));
    }

    #[test]
    fn bad_cidr_names_the_variable() {
        let err =
            Settings::from_lookup(env(&[(ENV_ALLOWED_PUBLIC_CIDRS, "10.0.0.0/33")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("EKS_WARDEN_ALLOWED_PUBLIC_CIDRS: \"10.0.0.0/33\""),
            "{err}"
        );
    }

    #[test]
    fn reads_the_catalog_settings() {
        let s = Settings::from_lookup(env(&[
            (ENV_REQUIRED_LOG_TYPES, "API,audit scheduler controllermanager"),
            (
                ENV_ALLOWED_ADMIN_PRINCIPALS,
                "arn:aws:iam::111122223333:role/platform-admin, arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*",
            ),
            (ENV_NETWORK_POLICY_ADDONS, "Antrea my_engine"),
        ]))
        .unwrap();
        assert_eq!(
            s.required_log_types.iter().collect::<Vec<_>>(),
            vec!["api", "audit", "controllerManager", "scheduler"]
        );
        assert_eq!(s.allowed_admin_principals.len(), 2);
        assert!(s.network_policy_addons.contains("antrea"));
        assert!(s.network_policy_addons.contains("my_engine"));
        assert!(
            s.network_policy_addons.contains("cilium"),
            "extra names add to the defaults"
        );
    }

    #[test]
    fn defaults_of_the_catalog_settings() {
        let s = Settings::default();
        assert_eq!(
            s.required_log_types.iter().collect::<Vec<_>>(),
            vec!["api", "audit", "authenticator"]
        );
        assert!(s.allowed_admin_principals.is_empty());
        assert!(s.network_policy_addons.contains("tigera-operator"));
        assert!(s.network_policy_addons.contains("isovalent_cilium"));
    }

    #[test]
    fn bad_catalog_settings_name_their_variable() {
        for (var, value) in [
            (ENV_REQUIRED_LOG_TYPES, "api,kubelet"),
            (ENV_REQUIRED_LOG_TYPES, " , "),
            (ENV_ALLOWED_ADMIN_PRINCIPALS, "admin"),
            (ENV_ALLOWED_ADMIN_PRINCIPALS, "arn:aws:s3:::bucket"),
            (ENV_ALLOWED_ADMIN_PRINCIPALS, "arn:aws:iam::111122223333:"),
            (ENV_NETWORK_POLICY_ADDONS, "calico!"),
            (ENV_NETWORK_POLICY_ADDONS, "-cilium"),
        ] {
            let err = Settings::from_lookup(env(&[(var, value)])).unwrap_err();
            assert!(err.to_string().starts_with(var), "{value:?}: {err}");
        }
    }

    #[test]
    fn principal_wildcards() {
        let sso =
            "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*";
        let cases = [
            (sso, "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0a1b", true),
            (sso, "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnly_0a1b", false),
            ("arn:aws:iam::111122223333:role/admin", "arn:aws:iam::111122223333:role/admin", true),
            ("arn:aws:iam::111122223333:role/admin", "arn:aws:iam::111122223333:role/admin2", false),
            ("arn:aws:iam::*:role/admin", "arn:aws:iam::444455556666:role/admin", true),
            ("arn:aws:iam::*:role/a*n", "arn:aws:iam::1:role/an", true),
            ("arn:aws:iam::*:role/a*a", "arn:aws:iam::1:role/a", false),
        ];
        for (pattern, arn, want) in cases {
            assert_eq!(principal_matches(pattern, arn), want, "{pattern} ~ {arn}");
        }
    }

    #[test]
    fn unknown_rule_names_the_variable() {
        let err = Settings::from_lookup(env(&[(ENV_DISABLED_RULES, "no-such-rule")])).unwrap_err();
        assert_eq!(
            err,
            SettingsError::UnknownRule {
                var: ENV_DISABLED_RULES,
                id: "no-such-rule".into()
            }
        );
    }
}
