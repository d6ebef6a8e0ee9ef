//! Guardrails: pure judgements of whether a planned action may run, from the fresh snapshot alone.
//!
//! Each refusal is a sentence naming the reason and, where there is one, the other party; the pass turns it
//! into a `skipped` remediation. The guardrails that need reads (who else uses a group) live in
//! [`super::ownership`]; the ones that need history or a budget in [`super::limits`].

use super::ownership::OtherUser;
use super::plans::Action;
use crate::model::{ClusterSnapshot, Fact, IngressRule};

/// Whether `action` is safe on this snapshot; `Err` says why not.
pub fn check(action: &Action, s: &ClusterSnapshot) -> Result<(), String> {
    match action {
        Action::UpdateClusterConfig {
            endpoint_public_access,
            endpoint_private_access,
            public_access_cidrs,
            ..
        } => endpoint_keeps_a_path(
            s,
            *endpoint_public_access,
            *endpoint_private_access,
            public_access_cidrs.is_some(),
        ),
        Action::DisableMapPublicIpOnLaunch { subnet_id } => {
            subnet_has_another_way_out(s, subnet_id)
        }
        Action::RevokeSecurityGroupIngress {
            group_id, revoked, ..
        } => not_the_sole_private_path(s, group_id, revoked),
        _ => Ok(()),
    }
}

/// Public access off, or narrowed to an allow-list, only when private access is on after the same update:
/// otherwise nodes and operators outside the allow-list lose the API.
fn endpoint_keeps_a_path(
    s: &ClusterSnapshot,
    public: Option<bool>,
    private: Option<bool>,
    narrows: bool,
) -> Result<(), String> {
    if public != Some(false) && !narrows {
        return Ok(());
    }
    let ep = s
        .cluster
        .endpoint
        .as_ref()
        .map_err(|u| format!("endpoint access unreadable ({u}): not changed"))?;
    if private.unwrap_or(ep.private_access) {
        return Ok(());
    }
    if public == Some(false) {
        return Err(
            "private endpoint access is off: turning public access off would cut every node and \
             operator off the API"
                .into(),
        );
    }
    Err(
        "private endpoint access is off: narrowing public access to the allow-list would cut nodes and \
         operators outside it off the API; opt into endpoint-private-disabled as well and one \
         UpdateClusterConfig turns private access on with the narrowing"
            .into(),
    )
}

/// `MapPublicIpOnLaunch` off only where nodes have another way out than an internet gateway.
fn subnet_has_another_way_out(s: &ClusterSnapshot, subnet_id: &str) -> Result<(), String> {
    let subnet = match s.subnets.get(subnet_id) {
        Some(Fact::Known(sn)) => sn,
        Some(Fact::Unknown(u)) => return Err(format!("subnet {subnet_id} unreadable ({u})")),
        None => return Err(format!("subnet {subnet_id} is not in the snapshot")),
    };
    let table = subnet.route_table.as_ref().map_err(|u| {
        format!("the route table of {subnet_id} is unreadable ({u}): its way out is unknown")
    })?;
    // Only the IPv4 default route matters: public IPv4 addresses are what the fix takes away.
    if let Some(r) = table
        .routes
        .iter()
        .find(|r| r.destination == "0.0.0.0/0" && r.to_internet_gateway())
    {
        return Err(format!(
            "the default route of {subnet_id} (route table {}) goes to internet gateway {}: nodes there \
             have no other way out (no NAT), so without public addresses they cannot pull images or reach \
             the API; move the nodegroup to private subnets",
            table.id, r.target
        ));
    }
    Ok(())
}

/// The control-plane groups: the cluster security group and the additional ones.
fn control_plane_groups(s: &ClusterSnapshot) -> Vec<&str> {
    s.cluster
        .cluster_security_group_id
        .iter()
        .chain(s.cluster.security_group_ids.iter())
        .map(String::as_str)
        .collect()
}

fn admits_443(r: &IngressRule) -> bool {
    if r.all_ports() {
        return true;
    }
    matches!(r.protocol.as_str(), "tcp" | "6")
        && matches!((r.from_port, r.to_port), (Some(f), Some(t)) if f <= 443 && 443 <= t)
}

/// On a private-only endpoint, 443 on the control-plane groups is the only way in: never revoke the last
/// rule admitting it. A narrower rule (a CIDR, a group, a prefix list) keeps the path, so the revoke may go.
fn not_the_sole_private_path(
    s: &ClusterSnapshot,
    group_id: &str,
    revoked: &[IngressRule],
) -> Result<(), String> {
    let groups = control_plane_groups(s);
    if !groups.contains(&group_id) || !revoked.iter().any(admits_443) {
        return Ok(());
    }
    let ep = s.cluster.endpoint.as_ref().map_err(|u| {
        format!("endpoint access unreadable ({u}): {group_id} may carry the only path to the API")
    })?;
    if ep.public_access {
        return Ok(());
    }
    let mut kept = false;
    for g in &groups {
        match s.security_groups.get(*g) {
            Some(Fact::Known(sg)) => {
                // A rule admitting the cluster's own groups (EKS's self-referencing cluster group) lets
                // only its nodes and control plane in, never an operator: it is no path to keep.
                let own = |r: &IngressRule| {
                    r.referenced_group_id
                        .as_deref()
                        .is_some_and(|id| groups.contains(&id))
                };
                kept |= sg.ingress.iter().any(|r| {
                    admits_443(r) && !revoked.contains(r) && r.world_source().is_none() && !own(r)
                });
            }
            _ => {
                return Err(format!(
                    "control-plane group {g} is unreadable: {group_id}'s 443 rule may be the only path to \
                     the private-only endpoint"
                ))
            }
        }
    }
    if kept {
        return Ok(());
    }
    Err(format!(
        "the world-open rule on {group_id} is the only ingress path to port 443 of the private-only \
         endpoint of {}: add a narrower 443 rule (the VPN or bastion CIDR) first",
        s.cluster.name
    ))
}

/// A group is changed only when this cluster alone uses it; `fix_shared` (`EKS_WARDEN_FIX_SHARED`) allows
/// shared groups, but never one that a user of it is exempt from.
pub fn sole_user(group: &str, users: &[OtherUser], fix_shared: bool) -> Result<(), String> {
    if let Some(u) = users
        .iter()
        .find(|u| matches!(u, OtherUser::Cluster { exempt: true, .. }))
    {
        return Err(format!(
            "security group {group} is also used by {u}, which is exempt from this rule: it is never \
             changed on another cluster's behalf"
        ));
    }
    if users.is_empty() || fix_shared {
        return Ok(());
    }
    let names: Vec<String> = users.iter().take(5).map(ToString::to_string).collect();
    let more = users.len().saturating_sub(names.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Err(format!(
        "security group {group} is shared: also used by {}{more}; fixes act only on what this cluster \
         alone uses ({}=true allows shared groups)",
        names.join(", "),
        super::policy::ENV_FIX_SHARED
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Route, RouteTable};
    use crate::rules::testkit::{self, baseline, CLUSTER_SG, SUBNET_A};

    #[test]
    fn shared_groups_are_left_alone_and_exempt_users_always_win() {
        let eni = OtherUser::Interface {
            id: "eni-9".into(),
            what: "instance i-web".into(),
        };
        let exempt = OtherUser::Cluster {
            name: "legacy".into(),
            exempt: true,
        };
        assert!(sole_user("sg-1", &[], false).is_ok());
        let e = sole_user("sg-1", std::slice::from_ref(&eni), false).unwrap_err();
        assert!(
            e.contains("eni-9") && e.contains("EKS_WARDEN_FIX_SHARED"),
            "{e}"
        );
        assert!(sole_user("sg-1", std::slice::from_ref(&eni), true).is_ok());
        let e = sole_user("sg-1", &[eni, exempt], true).unwrap_err();
        assert!(e.contains("cluster legacy (exempt)"), "{e}");
    }

    #[test]
    fn narrowing_needs_private_access_after_the_update() {
        let mut s = baseline();
        testkit::endpoint_mut(&mut s).private_access = false;
        let narrow = |private| Action::UpdateClusterConfig {
            cluster: "c".into(),
            endpoint_public_access: None,
            endpoint_private_access: private,
            public_access_cidrs: Some(vec!["203.0.113.0/24".into()]),
        };
        let e = check(&narrow(None), &s).unwrap_err();
        assert!(e.contains("private endpoint access is off"), "{e}");
        assert!(check(&narrow(Some(true)), &s).is_ok());
        testkit::endpoint_mut(&mut s).private_access = true;
        assert!(check(&narrow(None), &s).is_ok());
    }

    #[test]
    fn an_internet_gateway_subnet_keeps_its_public_addresses() {
        let mut s = baseline();
        let route = |target: &str| Route {
            destination: "0.0.0.0/0".into(),
            target: target.into(),
            state: "active".into(),
        };
        let a = Action::DisableMapPublicIpOnLaunch {
            subnet_id: SUBNET_A.into(),
        };
        testkit::subnet_mut(&mut s, SUBNET_A).route_table = Fact::Known(RouteTable {
            id: "rtb-1".into(),
            explicit: true,
            routes: vec![route("igw-1")],
        });
        let e = check(&a, &s).unwrap_err();
        assert!(e.contains("igw-1") && e.contains("private subnets"), "{e}");
        testkit::subnet_mut(&mut s, SUBNET_A).route_table = Fact::Known(RouteTable {
            id: "rtb-1".into(),
            explicit: true,
            routes: vec![route("nat-1")],
        });
        assert!(check(&a, &s).is_ok());
        testkit::subnet_mut(&mut s, SUBNET_A).route_table = Fact::unknown("AccessDenied", "");
        assert!(check(&a, &s).is_err());
    }

    #[test]
    fn the_last_443_path_to_a_private_endpoint_stays() {
        let mut s = baseline();
        testkit::endpoint_mut(&mut s).public_access = false;
        testkit::endpoint_mut(&mut s).private_access = true;
        testkit::sg_mut(&mut s, CLUSTER_SG).ingress.clear();
        testkit::open_ingress(&mut s, CLUSTER_SG, "0.0.0.0/0", "tcp", 443, 443);
        let open = testkit::sg_mut(&mut s, CLUSTER_SG).ingress.clone();
        let a = Action::RevokeSecurityGroupIngress {
            group_id: CLUSTER_SG.into(),
            rule_ids: vec!["sgr-1".into()],
            revoked: open,
        };
        let e = check(&a, &s).unwrap_err();
        assert!(e.contains("only ingress path"), "{e}");
        // EKS's own self-referencing rule admits the cluster's nodes, never an operator: no path kept.
        testkit::sg_mut(&mut s, CLUSTER_SG)
            .ingress
            .push(IngressRule {
                protocol: "-1".into(),
                referenced_group_id: Some(CLUSTER_SG.into()),
                ..IngressRule::default()
            });
        let e = check(&a, &s).unwrap_err();
        assert!(e.contains("only ingress path"), "{e}");
        testkit::open_ingress(&mut s, CLUSTER_SG, "10.0.0.0/8", "tcp", 443, 443);
        assert!(check(&a, &s).is_ok());
    }
}
