//! Settings from the environment (DESIGN.md section 7), overridable by CLI flags.
//!
//! A bad value is an error naming the variable, never a panic and never a silent default.

use ipnet::IpNet;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// CIDRs the public API endpoint may be open to. Empty: no allow-list, only the whole-internet test applies.
    pub allowed_public_cidrs: Vec<IpNet>,
    /// Rule ids not evaluated at all.
    pub disabled_rules: BTreeSet<String>,
}

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
}

pub const ENV_ALLOWED_PUBLIC_CIDRS: &str = "EKS_WARDEN_ALLOWED_PUBLIC_CIDRS";
pub const ENV_DISABLED_RULES: &str = "EKS_WARDEN_DISABLED_RULES";

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
        Ok(s)
    }
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
