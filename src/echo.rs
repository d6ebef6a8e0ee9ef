//! The function's own echo: each fix eks-warden applies comes back as a CloudTrail event. The fix was
//! already verified on a fresh read, so evaluating the cluster again would only repeat that read.
//!
//! An event is an echo when its call is one of the fix calls (the IAM actions of the catalog's automatic
//! fixes) and its actor is the function itself: the role of its own credentials, or, for a central
//! deployment, the member role it assumes in another account with the session name `eks-warden`.
//! A person's change is never an echo, even with the same call: only an assumed-role identity can match.

use crate::event::CloudTrailEvent;

/// Why an echo is ignored.
pub const REASON: &str = "eks-warden's own fix, verified on a fresh read";

/// The session name the function uses when it assumes the member role.
pub const MEMBER_SESSION: &str = "eks-warden";

/// Whether `source`/`name` is a call one of the automatic fixes makes (`eks:UpdateClusterConfig` ↔
/// `eks.amazonaws.com`/`UpdateClusterConfig`).
pub fn is_fix_call(source: &str, name: &str) -> bool {
    let Some(service) = source.strip_suffix(".amazonaws.com") else {
        return false;
    };
    crate::rules::ALL
        .iter()
        .filter_map(|r| r.meta.fix_permission)
        .any(|p| p.split_once(':') == Some((service, name)))
}

/// An assumed-role identity: `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole<'a> {
    pub account: &'a str,
    pub role: &'a str,
    pub session: &'a str,
}

impl<'a> AssumedRole<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", _, "sts", "", account, resource] = parts.as_slice() else {
            return None;
        };
        let mut r = resource.splitn(3, '/');
        let (Some("assumed-role"), Some(role), Some(session)) = (r.next(), r.next(), r.next())
        else {
            return None;
        };
        (!account.is_empty() && !role.is_empty()).then_some(AssumedRole {
            account,
            role,
            session,
        })
    }
}

/// Whether `e` is the function's own fix coming back. `own_arn` is the function's caller identity
/// (STS GetCallerIdentity); `member_role` the role name it assumes in other accounts, if any.
pub fn is_own_fix(e: &CloudTrailEvent, own_arn: &str, member_role: Option<&str>) -> bool {
    if !is_fix_call(&e.event_source, &e.event_name) {
        return false;
    }
    let Some(actor) = e.actor_arn.as_deref().and_then(AssumedRole::parse) else {
        return false;
    };
    if let Some(own) = AssumedRole::parse(own_arn) {
        if own.account == actor.account && own.role == actor.role {
            return true;
        }
    }
    member_role.is_some_and(|m| actor.role == m && actor.session == MEMBER_SESSION)
}

/// The function's own account and ARN, as STS knows them (for a Lambda: its role's assumed-role ARN).
pub async fn caller_identity(config: &aws_config::SdkConfig) -> Result<(String, String), String> {
    let id = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::collect::error_line("sts:GetCallerIdentity", &e))?;
    match (id.account(), id.arn()) {
        (Some(account), Some(arn)) => Ok((account.to_string(), arn.to_string())),
        _ => Err("sts:GetCallerIdentity returned no account or ARN".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "arn:aws:sts::111122223333:assumed-role/eks-warden-FunctionRole-1AB2/eks-warden-Function-9XY";

    fn event(source: &str, name: &str, actor: Option<&str>) -> CloudTrailEvent {
        CloudTrailEvent {
            event_source: source.into(),
            event_name: name.into(),
            event_id: None,
            event_time: None,
            account: None,
            region: None,
            actor_arn: actor.map(str::to_string),
            source_ip: None,
            error_code: None,
            request: serde_json::Value::Null,
            response: serde_json::Value::Null,
        }
    }

    #[test]
    fn fix_calls_come_from_the_catalog() {
        assert!(is_fix_call(
            "ec2.amazonaws.com",
            "RevokeSecurityGroupIngress"
        ));
        assert!(is_fix_call("eks.amazonaws.com", "UpdateClusterConfig"));
        assert!(is_fix_call("eks.amazonaws.com", "UpdateAddon"));
        assert!(!is_fix_call(
            "ec2.amazonaws.com",
            "AuthorizeSecurityGroupIngress"
        ));
        assert!(!is_fix_call(
            "eks.amazonaws.com",
            "RevokeSecurityGroupIngress"
        ));
        assert!(!is_fix_call(
            "redshift.amazonaws.com",
            "UpdateClusterConfig"
        ));
    }

    /// Guards: only the function's own role (or its member-role session) making a fix call is ignored;
    /// a person, another role, another session of the member role, or a non-fix call still routes.
    #[test]
    fn only_the_functions_own_fix_is_an_echo() {
        let ec2 = "ec2.amazonaws.com";
        let revoke = "RevokeSecurityGroupIngress";
        let other_session =
            "arn:aws:sts::111122223333:assumed-role/eks-warden-FunctionRole-1AB2/other";
        assert!(is_own_fix(&event(ec2, revoke, Some(OWN)), OWN, None));
        assert!(
            is_own_fix(&event(ec2, revoke, Some(other_session)), OWN, None),
            "any session of the own role"
        );
        let member = "arn:aws:sts::444455556666:assumed-role/eks-warden-member/eks-warden";
        assert!(is_own_fix(
            &event(ec2, revoke, Some(member)),
            OWN,
            Some("eks-warden-member")
        ));
        assert!(!is_own_fix(&event(ec2, revoke, Some(member)), OWN, None));
        let person_in_member_role = "arn:aws:sts::444455556666:assumed-role/eks-warden-member/jane";
        assert!(!is_own_fix(
            &event(ec2, revoke, Some(person_in_member_role)),
            OWN,
            Some("eks-warden-member")
        ));
        let same_role_other_account =
            "arn:aws:sts::999999999999:assumed-role/eks-warden-FunctionRole-1AB2/x";
        assert!(!is_own_fix(
            &event(ec2, revoke, Some(same_role_other_account)),
            OWN,
            None
        ));
        assert!(!is_own_fix(
            &event(ec2, "AuthorizeSecurityGroupIngress", Some(OWN)),
            OWN,
            None
        ));
        assert!(!is_own_fix(&event(ec2, revoke, None), OWN, None));
        // A person running `eks-warden handle` with user credentials: their own changes are not echoes.
        let user = "arn:aws:iam::111122223333:user/ops";
        assert!(!is_own_fix(&event(ec2, revoke, Some(user)), user, None));
    }

    #[test]
    fn assumed_role_arns() {
        let a = AssumedRole::parse(OWN).unwrap();
        assert_eq!(
            (a.account, a.role),
            ("111122223333", "eks-warden-FunctionRole-1AB2")
        );
        assert_eq!(AssumedRole::parse("arn:aws:iam::1:role/x"), None);
        assert_eq!(AssumedRole::parse("AWSService"), None);
        assert_eq!(AssumedRole::parse("arn:aws:sts::1:assumed-role/r"), None);
    }
}
