//! What the operator allowed: the mode, the opted-in rules and the few permissions a fix needs.

use crate::rules;
use serde::Serialize;
use std::collections::BTreeSet;

use super::plans::planner;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Notify only.
    #[default]
    Report,
    /// Compute and report the exact calls; make none.
    DryRun,
    /// Apply the fixes of the opted-in rules.
    Remediate,
}

/// What the operator allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub mode: Mode,
    /// Rule ids whose fixes may run (`EKS_WARDEN_REMEDIATE_RULES`).
    pub rules: BTreeSet<String>,
    /// `endpoint-public-unrestricted` with no allow-list may turn public access off (private on in the same
    /// call). Off by default: it cuts off every operator who reaches the API over the internet.
    pub allow_public_endpoint_off: bool,
    /// The KMS key `secrets-not-encrypted` associates (`EKS_WARDEN_SECRETS_KMS_KEY_ARN`); without it that fix
    /// is skipped. Associating is irreversible.
    pub secrets_key_arn: Option<String>,
    /// Security groups another user shares may be changed (`EKS_WARDEN_FIX_SHARED`); never one a user of
    /// it is exempt from.
    pub fix_shared: bool,
    /// Write calls per invocation (`EKS_WARDEN_MAX_FIXES`); the rest is deferred to the re-check.
    pub max_fixes: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Report,
            rules: BTreeSet::new(),
            allow_public_endpoint_off: false,
            secrets_key_arn: None,
            fix_shared: false,
            max_fixes: super::limits::DEFAULT_MAX_FIXES,
        }
    }
}

pub const ENV_MODE: &str = "EKS_WARDEN_MODE";
pub const ENV_RULES: &str = "EKS_WARDEN_REMEDIATE_RULES";
pub const ENV_ALLOW_PUBLIC_OFF: &str = "EKS_WARDEN_ALLOW_PUBLIC_ENDPOINT_OFF";
pub const ENV_SECRETS_KEY: &str = "EKS_WARDEN_SECRETS_KMS_KEY_ARN";
pub const ENV_FIX_SHARED: &str = "EKS_WARDEN_FIX_SHARED";
pub const ENV_MAX_FIXES: &str = "EKS_WARDEN_MAX_FIXES";

/// `true`/`false` (or unset: `false`), naming the variable when it is neither.
fn flag(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Result<bool, PolicyError> {
    match get(var).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(PolicyError {
            var,
            message: format!("{other:?} is not true or false"),
        }),
    }
}

/// A bad remediation setting, naming its variable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct PolicyError {
    pub var: &'static str,
    pub message: String,
}

impl Policy {
    pub fn from_env() -> Result<Self, PolicyError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let mode = match get(ENV_MODE).as_deref().map(str::trim) {
            None | Some("") | Some("report") => Mode::Report,
            Some("dry-run") => Mode::DryRun,
            Some("remediate") => Mode::Remediate,
            Some(other) => {
                return Err(PolicyError {
                    var: ENV_MODE,
                    message: format!("{other:?} is not report, dry-run or remediate"),
                })
            }
        };
        let mut rules = BTreeSet::new();
        for id in crate::settings::split_list(&get(ENV_RULES).unwrap_or_default()) {
            match rules::find(id) {
                Some(r) if planner(r.meta.id).is_some() => {
                    rules.insert(id.to_string());
                }
                Some(_) => {
                    return Err(PolicyError {
                        var: ENV_RULES,
                        message: format!("rule {id} has no automatic fix"),
                    })
                }
                None => {
                    return Err(PolicyError {
                        var: ENV_RULES,
                        message: format!("unknown rule id {id:?}"),
                    })
                }
            }
        }
        let allow_public_endpoint_off = flag(&get, ENV_ALLOW_PUBLIC_OFF)?;
        let fix_shared = flag(&get, ENV_FIX_SHARED)?;
        let max_fixes = match get(ENV_MAX_FIXES).as_deref().map(str::trim) {
            None | Some("") => super::limits::DEFAULT_MAX_FIXES,
            Some(v) => v.parse::<u32>().map_err(|_| PolicyError {
                var: ENV_MAX_FIXES,
                message: format!("{v:?} is not a whole number of write calls"),
            })?,
        };
        let secrets_key_arn = match get(ENV_SECRETS_KEY)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            Some(arn) if arn.starts_with("arn:") && arn.contains(":kms:") => Some(arn),
            Some(other) => {
                return Err(PolicyError {
                    var: ENV_SECRETS_KEY,
                    message: format!("{other:?} is not a KMS key ARN"),
                })
            }
            None => None,
        };
        Ok(Policy {
            mode,
            rules,
            allow_public_endpoint_off,
            secrets_key_arn,
            fix_shared,
            max_fixes,
        })
    }

    pub fn active(&self) -> bool {
        self.mode != Mode::Report && !self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn report_mode_by_default() {
        let p = Policy::from_lookup(env(&[])).unwrap();
        assert_eq!(p, Policy::default());
        assert!(!p.active());
    }

    #[test]
    fn modes_and_rules() {
        let p = Policy::from_lookup(env(&[
            (ENV_MODE, "dry-run"),
            (ENV_RULES, "sg-open-ingress, nodes-public-ip"),
        ]))
        .unwrap();
        assert_eq!(p.mode, Mode::DryRun);
        assert!(p.active());
        assert_eq!(p.rules.len(), 2);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = Policy::from_lookup(env(&[(ENV_MODE, "fix-everything")])).unwrap_err();
        assert_eq!(e.var, ENV_MODE);
        let e = Policy::from_lookup(env(&[(ENV_RULES, "subnets-single-az")])).unwrap_err();
        assert!(e.to_string().contains("has no automatic fix"), "{e}");
        let e = Policy::from_lookup(env(&[(ENV_RULES, "nope")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("EKS_WARDEN_REMEDIATE_RULES: unknown rule id"),
            "{e}"
        );
        let e = Policy::from_lookup(env(&[(ENV_ALLOW_PUBLIC_OFF, "yes")])).unwrap_err();
        assert_eq!(e.var, ENV_ALLOW_PUBLIC_OFF);
        let e = Policy::from_lookup(env(&[(ENV_FIX_SHARED, "1")])).unwrap_err();
        assert_eq!(e.var, ENV_FIX_SHARED);
        let e = Policy::from_lookup(env(&[(ENV_MAX_FIXES, "ten")])).unwrap_err();
        assert_eq!(e.var, ENV_MAX_FIXES);
        let p =
            Policy::from_lookup(env(&[(ENV_MAX_FIXES, "3"), (ENV_FIX_SHARED, "true")])).unwrap();
        assert_eq!((p.max_fixes, p.fix_shared), (3, true));
    }
}
