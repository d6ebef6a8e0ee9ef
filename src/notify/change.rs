//! Change and reminder messages (with a state table): what changed on a cluster leads, the full list of
//! open violations follows, and the fixes applied since the last message are shown.

use super::{
    advice_line, attributes, chat_card, chat_line, email_line, email_triggers, machine_json,
    next_steps, protocol_body, result_chat_line, result_email_line, unknowns, ChatCard, MAX_BODY,
    MAX_TRIGGERS,
};
use crate::event::Trigger;
use crate::rules::{RuleResult, Severity, Status};
use crate::sanitize;
use crate::scan::ClusterReport;
use crate::state::diff::{Change, Diff};
use crate::state::store::{AuditEntry, StoredMessage};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something changed: new, resolved or exempted findings.
    Change,
    /// Nothing changed, but violations stay open and the last message is old (the sweep's reminder).
    Reminder,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Change => "change",
            Kind::Reminder => "reminder",
        }
    }
}

/// The message for one cluster's diff (or reminder); it always fits in one SNS message.
pub fn message(
    report: &ClusterReport,
    all_triggers: &[Trigger],
    d: &Diff,
    kind: Kind,
    audit: &[&AuditEntry],
) -> StoredMessage {
    let triggers = &all_triggers[..all_triggers.len().min(MAX_TRIGGERS)];
    let more = all_triggers.len() - triggers.len();
    let mut open: Vec<&RuleResult> = report
        .failures()
        .filter(|r| {
            d.open
                .get(&r.finding_id)
                .is_some_and(|f| f.status == Status::Fail)
        })
        .collect();
    open.sort_by_key(|r| std::cmp::Reverse(r.severity));
    // Halve the lists until the message fits; the subject and the totals keep the true counts.
    let mut keep = open
        .len()
        .max(d.new.len())
        .max(d.resolved.len())
        .max(d.exempted.len());
    let parts = Parts {
        report,
        triggers,
        more,
        d,
        kind,
        audit,
        open: &open,
    };
    loop {
        let m = build(&parts, keep);
        if m.body.len() <= MAX_BODY || keep <= 1 {
            return m;
        }
        keep /= 2;
    }
}

fn counts(d: &Diff) -> String {
    let mut parts = vec![];
    for (n, what) in [
        (d.new.len(), "new"),
        (d.resolved.len(), "resolved"),
        (d.exempted.len(), "exempted"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// What every part of one message is built from: the cluster, its triggers (those named, and how many
/// more), the diff, the kind, the fixes since the last message and the open violations, worst first.
#[derive(Clone, Copy)]
struct Parts<'a> {
    report: &'a ClusterReport,
    triggers: &'a [Trigger],
    more: usize,
    d: &'a Diff,
    kind: Kind,
    audit: &'a [&'a AuditEntry],
    open: &'a [&'a RuleResult],
}

/// The message with every list cut to `keep` items.
fn build(parts: &Parts<'_>, keep: usize) -> StoredMessage {
    let Parts {
        report,
        d,
        kind,
        open,
        ..
    } = *parts;
    let (triggers, more) = (parts.triggers, parts.more);
    let highest = match kind {
        Kind::Change => d.highest(),
        Kind::Reminder => open.iter().map(|r| r.severity).max(),
    }
    .unwrap_or(Severity::Low);
    let what = match kind {
        Kind::Change => counts(d),
        Kind::Reminder => format!(
            "reminder, {} open violation{}",
            open.len(),
            if open.len() == 1 { "" } else { "s" }
        ),
    };
    let subject = sanitize::subject(&format!(
        "[{highest}] eks-warden: {what} on {} ({}/{})",
        report.cluster, report.account, report.region
    ));
    let cut = |c: &[Change]| c.iter().take(keep).cloned().collect::<Vec<_>>();
    let audit_json: Vec<&Value> = parts.audit.iter().map(|a| &a.entry).collect();
    let unknown = unknowns(report);
    let mut machine = machine_json(
        report,
        kind.as_str(),
        highest,
        (triggers, more),
        (&open[..open.len().min(keep)], open.len()),
        &unknown,
        keep,
    );
    machine.extend([
        (
            "generated_at".to_string(),
            json!(crate::state::rfc3339(std::time::SystemTime::now())),
        ),
        ("version".to_string(), json!(env!("CARGO_PKG_VERSION"))),
        ("cluster_arn".to_string(), json!(report.cluster_arn)),
        (
            "changes".to_string(),
            json!({"new": cut(&d.new), "resolved": cut(&d.resolved), "exempted": cut(&d.exempted)}),
        ),
        (
            "changes_total".to_string(),
            json!({"new": d.new.len(), "resolved": d.resolved.len(), "exempted": d.exempted.len()}),
        ),
        (
            "audit".to_string(),
            json!(&audit_json[..audit_json.len().min(keep)]),
        ),
        ("audit_total".to_string(), json!(audit_json.len())),
    ]);
    let text = email(parts, &unknown, keep);
    let chat = chatbot(parts, highest, &subject);
    let rule_ids: BTreeSet<&str> = match kind {
        Kind::Change => d
            .new
            .iter()
            .chain(&d.resolved)
            .chain(&d.exempted)
            .map(|c| c.rule_id.as_str())
            .collect(),
        Kind::Reminder => open.iter().map(|r| r.rule_id.as_str()).collect(),
    };
    StoredMessage {
        notification: kind.as_str().into(),
        subject,
        body: protocol_body(&Value::Object(machine), text, &chat),
        attributes: attributes(report, highest, kind.as_str(), &rule_ids, triggers),
    }
}

fn change_lines(out: &mut String, title: &str, changes: &[Change], keep: usize, advice: bool) {
    if changes.is_empty() {
        return;
    }
    *out += &format!("{title} ({}):\n", changes.len());
    for c in changes.iter().take(keep) {
        *out += &email_line(
            c.severity,
            &c.rule_id,
            c.resource_type,
            &c.resource_id,
            &c.message,
        );
        if advice {
            *out += &advice_line(&c.rule_id);
        }
    }
    if changes.len() > keep {
        *out += &format!("  …and {} more\n", changes.len() - keep);
    }
    *out += "\n";
}

/// The e-mail text: what changed, who set it off, the fixes since the last message, what could not be
/// read, then every open violation.
fn email(parts: &Parts<'_>, unknown: &[&RuleResult], keep: usize) -> String {
    let Parts {
        report,
        triggers,
        more,
        d,
        kind,
        audit,
        open,
    } = *parts;
    let mut out = match kind {
        Kind::Change => format!(
            "eks-warden: {} on EKS cluster {} in account {}, region {}.\n\n",
            counts(d),
            report.cluster,
            report.account,
            report.region
        ),
        Kind::Reminder => format!(
            "eks-warden reminder: {} violation(s) stay open on EKS cluster {} in account {}, region {}.\n\n",
            open.len(),
            report.cluster,
            report.account,
            report.region
        ),
    };
    change_lines(&mut out, "New", &d.new, keep, true);
    change_lines(&mut out, "Resolved", &d.resolved, keep, false);
    change_lines(&mut out, "Exempted", &d.exempted, keep, false);
    out += "Triggered by:\n";
    out += &email_triggers(triggers, more);
    if !audit.is_empty() {
        out += "\nFixes applied since the last message (remediation audit):\n";
        for a in audit.iter().take(keep) {
            let e = &a.entry;
            out += &format!(
                "  - {} {} on {}: {} {}\n",
                sanitize::plain(&a.at),
                e["rule_id"].as_str().unwrap_or("?"),
                sanitize::plain(e["resource_id"].as_str().unwrap_or("?")),
                sanitize::plain(e["detail"].as_str().unwrap_or("")),
                sanitize::plain(&e.get("action").map(Value::to_string).unwrap_or_default())
            );
        }
        if audit.len() > keep {
            out += &format!("  …and {} more\n", audit.len() - keep);
        }
    }
    if !unknown.is_empty() {
        out += "\nCould not be read (UNKNOWN; the last known state of these stands):\n";
        for r in unknown.iter().take(keep) {
            out += &format!(
                "  - {} on {}: {}\n",
                r.rule_id,
                sanitize::plain(&r.resource_id),
                sanitize::plain(&r.message)
            );
        }
    }
    out += &format!("\nOpen violations now ({}):\n", open.len());
    for r in open.iter().take(keep) {
        out += &result_email_line(r);
    }
    out
}

/// The chat card, threaded with the cluster's other cards; its next steps are for what is new (or, in a
/// reminder, still open), worst first.
fn chatbot(parts: &Parts<'_>, highest: Severity, title: &str) -> Value {
    let (report, d, kind, open) = (parts.report, parts.d, parts.kind, parts.open);
    let next = match kind {
        Kind::Change => next_steps(d.new.iter().map(|c| (c.severity, c.rule_id.as_str()))),
        Kind::Reminder => next_steps(open.iter().map(|r| (r.severity, r.rule_id.as_str()))),
    };
    chat_card(
        report,
        (parts.triggers, parts.more),
        ChatCard {
            kind: kind.as_str(),
            title,
            lines: chat_lines(d, kind, open),
            next_steps: next,
            keywords: vec![
                highest.as_str(),
                kind.as_str(),
                report.cluster.as_str(),
                report.account.as_str(),
                report.region.as_str(),
            ],
            related: d
                .new
                .iter()
                .chain(&d.resolved)
                .chain(&d.exempted)
                .map(|c| crate::formats::arn_of(report, c.resource_type, &c.resource_id))
                .collect(),
        },
    )
}

/// The card's text: the changes (and, in a reminder, the open violations), ten of each at most, then the
/// count of open violations.
fn chat_lines(d: &Diff, kind: Kind, open: &[&RuleResult]) -> Vec<String> {
    let mut lines: Vec<String> = vec![];
    for (label, changes) in [
        ("new", &d.new),
        ("resolved", &d.resolved),
        ("exempted", &d.exempted),
    ] {
        for c in changes.iter().take(10) {
            let label = format!("*{label}* ");
            lines.push(chat_line(
                &label,
                c.severity,
                &c.rule_id,
                &c.resource_id,
                &c.message,
            ));
        }
        if changes.len() > 10 {
            lines.push(format!("…and {} more {label}", changes.len() - 10));
        }
    }
    if kind == Kind::Reminder {
        for r in open.iter().take(10) {
            lines.push(result_chat_line(r));
        }
    }
    lines.push(format!("_Open violations now_: {}", open.len()));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fixture;
    use crate::rules::ResourceType;
    use crate::state::diff::{diff, evaluated, Seen};
    use std::collections::BTreeMap;

    fn result(rule: &str, resource: &str, severity: Severity, status: Status) -> RuleResult {
        RuleResult {
            severity,
            ..fixture::result(rule, status, ResourceType::SecurityGroup, resource)
        }
    }

    fn report(results: Vec<RuleResult>) -> ClusterReport {
        fixture::cluster("prod", results)
    }

    fn machine(m: &StoredMessage) -> Value {
        let body: Value = serde_json::from_str(&m.body).unwrap();
        serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn a_change_message_leads_with_the_change_and_keeps_the_open_list() {
        let before = report(vec![
            result("sg-open-ingress", "sg-1", Severity::High, Status::Fail),
            result(
                "deletion-protection-off",
                "prod",
                Severity::Low,
                Status::Fail,
            ),
        ]);
        let prev = evaluated(&BTreeMap::new(), &before.results, "t1").open;
        let now = report(vec![
            result("sg-open-ingress", "sg-1", Severity::High, Status::Pass),
            result(
                "deletion-protection-off",
                "prod",
                Severity::Low,
                Status::Fail,
            ),
            result("sg-open-ingress", "sg-2", Severity::Critical, Status::Fail),
            result("sg-open-ingress", "sg-3", Severity::High, Status::Fail),
        ]);
        let d = evaluated(&prev, &now.results, "t2");
        let m = message(&now, &[], &d, Kind::Change, &[]);
        assert_eq!(
            m.subject,
            "[CRITICAL] eks-warden: 2 new, 1 resolved on prod (111122223333/eu-west-1)"
        );
        let j = machine(&m);
        assert_eq!(j["notification"], "change");
        assert_eq!(j["changes"]["new"].as_array().unwrap().len(), 2);
        assert_eq!(j["changes"]["resolved"][0]["resource_id"], "sg-1");
        assert_eq!(
            j["changes"]["resolved"][0]["finding_id"],
            "ewf-sg-open-ingress-sg-1"
        );
        assert_eq!(j["findings_total"], 3, "the full open list rides along");
        assert!(j["version"].is_string() && j["generated_at"].is_string());
        let attr = |k: &str| m.attributes.iter().find(|a| a.0 == k).map(|a| a.2.clone());
        assert_eq!(attr("notification").as_deref(), Some("change"));
        assert_eq!(attr("severity").as_deref(), Some("CRITICAL"));
        let body: Value = serde_json::from_str(&m.body).unwrap();
        let email = body["email"].as_str().unwrap();
        assert!(
            email.starts_with("eks-warden: 2 new, 1 resolved on EKS cluster prod"),
            "{email}"
        );
        assert!(email.find("New (2)").unwrap() < email.find("Open violations now (3)").unwrap());
        let chat: Value = serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
        assert!(chat["content"]["description"]
            .as_str()
            .unwrap()
            .starts_with("• *new*"));
    }

    #[test]
    fn a_resolution_carries_its_own_severity_and_a_reminder_the_open_ones() {
        let before = report(vec![result(
            "sg-open-ingress",
            "sg-1",
            Severity::High,
            Status::Fail,
        )]);
        let prev = evaluated(&BTreeMap::new(), &before.results, "t1").open;
        let d = diff(&prev, Seen::Gone, "t2");
        let m = message(&before, &[], &d, Kind::Change, &[]);
        assert!(
            m.subject
                .starts_with("[HIGH] eks-warden: 1 resolved on prod"),
            "{}",
            m.subject
        );
        let same = evaluated(&prev, &before.results, "t3");
        let r = message(&before, &[], &same, Kind::Reminder, &[]);
        assert_eq!(
            r.subject,
            "[HIGH] eks-warden: reminder, 1 open violation on prod (111122223333/eu-west-1)"
        );
        assert_eq!(machine(&r)["notification"], "reminder");
    }
}
