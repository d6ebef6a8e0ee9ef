//! What the enabled rules read: the union of their declared [`Part`]s, answered to the collector
//! through [`ReadPlan`], so the collector reads what the catalog needs without knowing any rule.

use super::{declared_engine, engine_addon, ALL, VPC_CNI};
use crate::model::{Cluster, Part, ReadPlan};
use crate::settings::Settings;

impl ReadPlan for Settings {
    fn needs(&self, part: Part) -> bool {
        ALL.iter()
            .filter(|r| self.enabled(r.meta.id))
            .any(|r| r.meta.reads.contains(&part))
    }

    /// `vpc-cni`'s configuration decides the network-policy verdict only when no engine add-on is
    /// installed and the cluster declares no engine by tag.
    fn addon_configurations(&self, cluster: &Cluster, addons: &[String]) -> Vec<String> {
        let decides = self.needs(Part::AddonConfiguration)
            && addons.iter().any(|n| n == VPC_CNI)
            && declared_engine(&cluster.tags).is_none()
            && engine_addon(addons.iter().map(String::as_str), self).is_none();
        if decides {
            vec![VPC_CNI.to_string()]
        } else {
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{self, NODE_SG, SUBNET_A};
    use super::*;
    use crate::model::{ClusterSnapshot, Fact};

    fn not_collected<T>() -> Fact<T> {
        Fact::unknown("NotCollected", "not declared")
    }

    /// The snapshot as the collector leaves it when only `reads` are read.
    fn only(mut s: ClusterSnapshot, reads: &[Part]) -> ClusterSnapshot {
        let has = |p| reads.contains(&p);
        if !has(Part::Subnets) {
            s.subnets.values_mut().for_each(|f| *f = not_collected());
        }
        if !has(Part::SecurityGroups) {
            s.security_groups
                .values_mut()
                .for_each(|f| *f = not_collected());
        }
        if !has(Part::LaunchTemplates) {
            if let Fact::Known(ngs) = &mut s.nodegroups {
                for lt in ngs.iter_mut().filter_map(|n| n.launch_template.as_mut()) {
                    lt.in_use = not_collected();
                }
            }
        }
        if !has(Part::Nodegroups) {
            s.nodegroups = not_collected();
        }
        if !has(Part::Instances) {
            s.instances = not_collected();
        }
        if !has(Part::AddonConfiguration) {
            if let Fact::Known(addons) = &mut s.addons {
                addons
                    .iter_mut()
                    .for_each(|a| a.configuration_values = not_collected());
            }
        }
        if !has(Part::Addons) {
            s.addons = not_collected();
        }
        if !has(Part::AccessEntries) {
            s.cluster_admin_entries = not_collected();
        }
        if !has(Part::VersionSupport) {
            s.version_support = not_collected();
        }
        s
    }

    fn snapshots() -> Vec<ClusterSnapshot> {
        let mut failing = testkit::baseline();
        testkit::make_public(&mut failing, SUBNET_A);
        testkit::open_ingress(&mut failing, NODE_SG, "0.0.0.0/0", "tcp", 22, 22);
        failing.cluster.endpoint = Fact::Known(crate::model::Endpoint {
            public_access: true,
            private_access: false,
            public_access_cidrs: vec!["0.0.0.0/0".into()],
        });
        vec![testkit::baseline(), failing]
    }

    /// Guards the collector's skipping: a rule that read a part it does not declare would judge
    /// `NotCollected` data whenever only it is enabled. Each rule must give the same verdicts on a
    /// snapshot stripped to its declared parts as on the whole one.
    #[test]
    fn every_rule_declares_all_it_reads() {
        let settings = Settings::default();
        for s in snapshots() {
            for rule in ALL {
                let whole = (rule.check)(&s, &settings);
                let stripped = (rule.check)(&only(s.clone(), rule.meta.reads), &settings);
                assert_eq!(
                    whole, stripped,
                    "{} reads more than it declares",
                    rule.meta.id
                );
            }
        }
    }

    /// The stripping above really hides data: a rule judged on no parts at all changes its verdict.
    #[test]
    fn stripping_a_declared_part_changes_the_verdict() {
        let settings = Settings::default();
        for rule in ALL.iter().filter(|r| !r.meta.reads.is_empty()) {
            let changed = snapshots().into_iter().any(|s| {
                (rule.check)(&s, &settings) != (rule.check)(&only(s.clone(), &[]), &settings)
            });
            assert!(changed, "{} declares parts it never reads", rule.meta.id);
        }
    }

    #[test]
    fn disabled_rules_need_nothing_and_enabled_ones_their_parts() {
        let all = Settings::default();
        assert!(all.needs(Part::Subnets) && all.needs(Part::VersionSupport));
        let few = Settings {
            disabled_rules: ALL
                .iter()
                .map(|r| r.meta.id.to_string())
                .filter(|id| id != "subnets-single-az")
                .collect(),
            ..Settings::default()
        };
        assert!(few.needs(Part::Subnets));
        for p in [
            Part::SecurityGroups,
            Part::Nodegroups,
            Part::LaunchTemplates,
            Part::Instances,
            Part::Addons,
            Part::AddonConfiguration,
            Part::AccessEntries,
            Part::VersionSupport,
        ] {
            assert!(!few.needs(p), "{p:?}");
        }
    }

    #[test]
    fn vpc_cni_configuration_only_when_it_decides() {
        let s = Settings::default();
        let c = testkit::baseline().cluster;
        let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.addon_configurations(&c, &names(&["vpc-cni"])),
            ["vpc-cni"]
        );
        assert!(s.addon_configurations(&c, &names(&["coredns"])).is_empty());
        let mut tagged = c.clone();
        tagged
            .tags
            .insert(super::super::NETWORK_POLICY_TAG.into(), "calico".into());
        assert!(s
            .addon_configurations(&tagged, &names(&["vpc-cni"]))
            .is_empty());
    }
}
