//! SNS notifications: one message per evaluated cluster with violations, a form per protocol.

use crate::event::Trigger;
use crate::rules::{ResourceType, RuleResult, Severity, Status};
use crate::sanitize;
use crate::scan::ClusterReport;
use crate::state::store::StoredMessage;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

pub mod change;

/// What a subscriber needs to know about who changed what.
pub fn trigger_json(t: &Trigger) -> Value {
    match t {
        Trigger::CloudTrail(e) => json!({
            "kind": "cloudtrail",
            "eventSource": e.event_source,
            "eventName": e.event_name,
            "eventID": e.event_id,
            "eventTime": e.event_time,
            "actor": e.actor_arn,
            "sourceIPAddress": e.source_ip,
        }),
        other => json!({"kind": other.kind(), "id": other.id()}),
    }
}

pub(crate) fn event_name(triggers: &[Trigger]) -> String {
    triggers
        .iter()
        .find_map(|t| match t {
            Trigger::CloudTrail(e) => Some(e.event_name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| {
            triggers
                .first()
                .map(|t| t.kind().to_string())
                .unwrap_or_default()
        })
}

/// SNS takes at most 256 KiB per message; the body holds the machine JSON three times over.
pub(crate) const MAX_BODY: usize = 250 * 1024;
/// Triggers named in a message; a storm's hundreds of records about one cluster are counted, not listed.
pub(crate) const MAX_TRIGGERS: usize = 10;

/// The message for one cluster (`"notification": "full"`), or `None` when it has no violation.
pub fn message(report: &ClusterReport, all_triggers: &[Trigger]) -> Option<StoredMessage> {
    let mut all_fails: Vec<&RuleResult> = report.failures().collect();
    all_fails.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let triggers = &all_triggers[..all_triggers.len().min(MAX_TRIGGERS)];
    let more_triggers = all_triggers.len() - triggers.len();
    // Worst findings first; halve the list until the message fits (the subject keeps the true count).
    let mut keep = all_fails.len();
    loop {
        let m = build(
            report,
            &all_fails,
            &all_fails[..keep],
            triggers,
            more_triggers,
        );
        if m.as_ref().is_none_or(|m| m.body.len() <= MAX_BODY) || keep <= 1 {
            return m;
        }
        keep /= 2;
    }
}

fn build(
    report: &ClusterReport,
    all_fails: &[&RuleResult],
    fails: &[&RuleResult],
    triggers: &[Trigger],
    more_triggers: usize,
) -> Option<StoredMessage> {
    let highest = fails.iter().map(|r| r.severity).max()?;
    let rule_ids: BTreeSet<&str> = all_fails.iter().map(|r| r.rule_id.as_str()).collect();
    let n = all_fails.len();
    let subject = format!(
        "[{highest}] eks-warden: {n} violation{} on {} ({}/{})",
        if n == 1 { "" } else { "s" },
        report.cluster,
        report.account,
        report.region
    );
    let subject = sanitize::subject(&subject);
    let unknown = unknowns(report);
    let keep = fails.len().max(1);
    let machine = Value::Object(machine_json(
        report,
        "full",
        highest,
        (triggers, more_triggers),
        (fails, n),
        &unknown,
        keep,
    ));
    let chat = chatbot(report, fails, triggers, more_triggers, highest, &subject);
    let email = email(report, fails, triggers, more_triggers, keep);
    Some(StoredMessage {
        notification: "full".into(),
        subject,
        body: protocol_body(&machine, email, &chat),
        attributes: attributes(report, highest, "full", &rule_ids, triggers),
    })
}

/// The cluster's results that could not be judged (UNKNOWN): every message lists them, so a gap is seen.
pub(crate) fn unknowns(report: &ClusterReport) -> Vec<&RuleResult> {
    report
        .results
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .collect()
}

/// What every machine-readable message carries: the cluster, the worst severity, the triggers (named, and
/// counted), the open findings (listed, and counted), and the unknowns and fixes, which the size guard
/// cuts to `keep` with the findings: a storm of fixes or unknowns must not cut the message.
pub(crate) fn machine_json(
    report: &ClusterReport,
    notification: &str,
    highest: Severity,
    (triggers, more_triggers): (&[Trigger], usize),
    (findings, findings_total): (&[&RuleResult], usize),
    unknown: &[&RuleResult],
    keep: usize,
) -> Map<String, Value> {
    let machine = json!({
        "notification": notification,
        "cluster": report.cluster,
        "account": report.account,
        "region": report.region,
        "status": report.status,
        "highest_severity": highest,
        "triggers": triggers.iter().map(trigger_json).collect::<Vec<_>>(),
        "triggers_total": triggers.len() + more_triggers,
        "findings": findings,
        "findings_total": findings_total,
        "unknown": &unknown[..unknown.len().min(keep)],
        "unknown_total": unknown.len(),
        "remediations": &report.remediations[..report.remediations.len().min(keep)],
        "remediations_total": report.remediations.len(),
    });
    match machine {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The SNS body of `message_structure: json`: the machine JSON for queues and functions, the text for
/// e-mail, the chat card for HTTPS (Amazon Q Developer in chat applications).
pub(crate) fn protocol_body(machine: &Value, email: String, chat: &Value) -> String {
    json!({
        "default": machine.to_string(),
        "sqs": machine.to_string(),
        "lambda": machine.to_string(),
        "email": email,
        "https": chat.to_string(),
    })
    .to_string()
}

/// Message attributes for subscription filters: `severity` is the message's worst, `rule_ids` the rules it
/// is about; `event_name` only when the triggers name one (SNS refuses an attribute without a value).
pub(crate) fn attributes(
    report: &ClusterReport,
    highest: Severity,
    notification: &str,
    rule_ids: &BTreeSet<&str>,
    triggers: &[Trigger],
) -> Vec<(String, String, String)> {
    let s = |k: &str, v: &str| (k.to_string(), "String".to_string(), v.to_string());
    let mut attributes = vec![
        s("severity", highest.as_str()),
        s("cluster", &report.cluster),
        s("account", &report.account),
        s("region", &report.region),
    ];
    let event = event_name(triggers);
    if !event.is_empty() {
        attributes.push(s("event_name", &event));
    }
    attributes.push(s("notification", notification));
    attributes.push((
        "rule_ids".into(),
        "String.Array".into(),
        serde_json::to_string(rule_ids).unwrap_or_default(),
    ));
    attributes
}

pub(crate) fn who(triggers: &[Trigger], more: usize) -> Vec<String> {
    let mut lines: Vec<String> = triggers
        .iter()
        .map(|t| match t {
            Trigger::CloudTrail(e) => format!(
                "{} by {} from {} at {} (event {})",
                e.event_name,
                e.actor_arn.as_deref().unwrap_or("?"),
                e.source_ip.as_deref().unwrap_or("?"),
                e.event_time.as_deref().unwrap_or("?"),
                e.event_id.as_deref().unwrap_or("?")
            ),
            other => format!("{} {}", other.kind(), other.id()),
        })
        .collect();
    if more > 0 {
        lines.push(format!("…and {more} more change(s) in the same batch"));
    }
    lines
}

fn email(
    report: &ClusterReport,
    fails: &[&RuleResult],
    triggers: &[Trigger],
    more: usize,
    keep: usize,
) -> String {
    let mut out = format!(
        "eks-warden found {} violation(s) on EKS cluster {} in account {}, region {}.\n\nTriggered by:\n",
        report.failures().count(),
        report.cluster,
        report.account,
        report.region
    );
    out += &email_triggers(triggers, more);
    out += "\nViolations:\n";
    let mut sorted = fails.to_vec();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.severity));
    for r in sorted {
        out += &result_email_line(r);
        out += &advice_line(&r.rule_id);
    }
    if !report.remediations.is_empty() {
        out += "\nAutomatic remediation:\n";
        for m in report.remediations.iter().take(keep) {
            out += &format!(
                "  - {:?} {} on {}: {}\n",
                m.outcome,
                m.rule_id,
                sanitize::plain(&m.resource_id),
                sanitize::plain(&m.detail)
            );
            if let Some(crate::remediate::Action::RevokeSecurityGroupIngress {
                group_id,
                revoked,
                ..
            }) = &m.action
            {
                for r in revoked {
                    out += &format!(
                        "      revoked from {group_id}: {} {} from {} (restore with aws ec2 authorize-security-group-ingress)\n",
                        r.rule_id.as_deref().unwrap_or("?"),
                        r.ports(),
                        r.world_source().unwrap_or("?")
                    );
                }
            }
        }
        if report.remediations.len() > keep {
            out += &format!("  …and {} more\n", report.remediations.len() - keep);
        }
    }
    out
}

/// Next steps for a chat message: one per rule, worst first (the channel shows the first few), each with
/// the rule's documentation link; at most five.
pub(crate) fn next_steps<'a>(items: impl Iterator<Item = (Severity, &'a str)>) -> Vec<String> {
    let mut worst: Vec<(Severity, &str)> = vec![];
    for (sev, id) in items {
        match worst.iter_mut().find(|(_, r)| *r == id) {
            Some(w) => w.0 = w.0.max(sev),
            None => worst.push((sev, id)),
        }
    }
    worst.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut next: Vec<String> = worst
        .into_iter()
        .take(5)
        .filter_map(|(sev, id)| {
            let rule = crate::rules::find(id)?;
            let docs = crate::formats::docs_url(id)
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            Some(format!("[{sev}] {id}: {}{docs}", rule.meta.resolution))
        })
        .collect();
    if next.is_empty() {
        next.push("Review the findings in the eks-warden message".into());
    }
    next
}

/// The chat notification's id: unique per message, naming the cluster it is about.
pub(crate) fn chat_id(report: &ClusterReport, kind: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "eks-warden/{}/{}/{}/{kind}/{ms}",
        report.account, report.region, report.cluster
    )
}

/// Amazon Q Developer in chat applications (AWS Chatbot) custom notification.
fn chatbot(
    report: &ClusterReport,
    fails: &[&RuleResult],
    triggers: &[Trigger],
    more: usize,
    highest: Severity,
    title: &str,
) -> Value {
    let mut lines: Vec<String> = fails.iter().take(10).map(|r| result_chat_line(r)).collect();
    if fails.len() > 10 {
        lines.push(format!("…and {} more", fails.len() - 10));
    }
    chat_card(
        report,
        (triggers, more),
        ChatCard {
            kind: "violations",
            title,
            lines,
            next_steps: next_steps(fails.iter().map(|r| (r.severity, r.rule_id.as_str()))),
            keywords: vec![
                highest.as_str(),
                report.cluster.as_str(),
                report.account.as_str(),
                report.region.as_str(),
            ],
            related: fails
                .iter()
                .map(|r| crate::formats::resource_arn(report, r))
                .collect(),
        },
    )
}

/// What a chat card says beyond the cluster and the triggers, which every card carries.
pub(crate) struct ChatCard<'a> {
    /// `violations`, `change` or `reminder`: in the card's id and event type.
    pub kind: &'a str,
    pub title: &'a str,
    pub lines: Vec<String>,
    pub next_steps: Vec<String>,
    pub keywords: Vec<&'a str>,
    /// ARNs of the resources the card is about.
    pub related: BTreeSet<String>,
}

/// A custom notification for Amazon Q Developer in chat applications, threaded per cluster; outside strings
/// are escaped for Slack.
pub(crate) fn chat_card(
    report: &ClusterReport,
    (triggers, more): (&[Trigger], usize),
    card: ChatCard<'_>,
) -> Value {
    let who: Vec<String> = who(triggers, more)
        .iter()
        .map(|w| sanitize::slack(w))
        .collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": chat_id(report, card.kind),
        "content": {
            "textType": "client-markdown",
            "title": sanitize::slack(card.title),
            "description": format!("{}\n\n_Triggered by_: {}", card.lines.join("\n"), who.join("; ")),
            "nextSteps": card.next_steps,
            "keywords": card.keywords,
        },
        "metadata": {
            "threadId": format!("eks-warden/{}/{}/{}", report.account, report.region, report.cluster),
            "summary": card.title,
            "eventType": format!("eks-warden-{}", card.kind),
            "relatedResources": card.related,
            "additionalContext": {"cluster": report.cluster, "account": report.account, "region": report.region},
        },
    })
}

/// One finding as a line of a chat card, after a label such as `*new* ` (or none).
pub(crate) fn chat_line(
    label: &str,
    severity: Severity,
    rule_id: &str,
    resource_id: &str,
    message: &str,
) -> String {
    format!(
        "• {label}*{severity}* `{rule_id}` on `{}`: {}",
        sanitize::slack(resource_id),
        sanitize::slack(message)
    )
}

/// An open finding as a line of a chat card.
pub(crate) fn result_chat_line(r: &RuleResult) -> String {
    chat_line("", r.severity, &r.rule_id, &r.resource_id, &r.message)
}

/// An open finding as a line of the e-mail text.
pub(crate) fn result_email_line(r: &RuleResult) -> String {
    email_line(
        r.severity,
        &r.rule_id,
        r.resource_type,
        &r.resource_id,
        &r.message,
    )
}

/// One finding as a line of the e-mail text; the resource id and the message are outside strings.
pub(crate) fn email_line(
    severity: Severity,
    rule_id: &str,
    resource_type: ResourceType,
    resource_id: &str,
    message: &str,
) -> String {
    format!(
        "  [{severity}] {rule_id} on {} {}: {}\n",
        resource_type.as_str(),
        sanitize::plain(resource_id),
        sanitize::plain(message)
    )
}

/// What to do about a finding of this rule, under its e-mail line (nothing for a rule no longer known).
pub(crate) fn advice_line(rule_id: &str) -> String {
    crate::rules::find(rule_id)
        .map(|rule| format!("      What to do: {}\n", rule.meta.resolution))
        .unwrap_or_default()
}

/// Who set the evaluation off, one e-mail line each.
pub(crate) fn email_triggers(triggers: &[Trigger], more: usize) -> String {
    who(triggers, more)
        .iter()
        .map(|w| format!("  - {}\n", sanitize::plain(w)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CloudTrailEvent;
    use crate::rules::{ResourceType, RuleResult};

    fn report(fails: usize, cluster: &str) -> ClusterReport {
        let results = (0..fails)
            .map(|i| RuleResult {
                rule_id: if i == 0 {
                    "sg-open-ingress".into()
                } else {
                    "endpoint-private-disabled".into()
                },
                severity: if i == 0 {
                    Severity::Critical
                } else {
                    Severity::Medium
                },
                status: Status::Fail,
                resource_type: ResourceType::SecurityGroup,
                resource_id: format!("sg-{i}"),
                message: format!("finding {i}"),
                evidence: Default::default(),
                discriminator: None,
                finding_id: String::new(),
            })
            .collect();
        crate::formats::fixture::cluster(cluster, results)
    }

    fn trigger() -> Trigger {
        Trigger::CloudTrail(Box::new(CloudTrailEvent {
            event_source: "ec2.amazonaws.com".into(),
            event_name: "AuthorizeSecurityGroupIngress".into(),
            event_id: Some("e-1".into()),
            event_time: Some("2026-11-27T01:00:00Z".into()),
            account: Some("111122223333".into()),
            region: Some("eu-west-1".into()),
            actor_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            source_ip: Some("198.51.100.7".into()),
            error_code: None,
            request: Value::Null,
            response: Value::Null,
        }))
    }

    #[test]
    fn no_violation_no_message() {
        assert!(message(&report(0, "prod"), &[trigger()]).is_none());
    }

    #[test]
    fn every_protocol_gets_its_form() {
        let m = message(&report(3, "prod"), &[trigger()]).unwrap();
        assert_eq!(
            m.subject,
            "[CRITICAL] eks-warden: 3 violations on prod (111122223333/eu-west-1)"
        );
        let body: Value = serde_json::from_str(&m.body).unwrap();
        for key in ["default", "sqs", "lambda", "email", "https"] {
            assert!(body[key].is_string(), "{key}");
        }
        let machine: Value = serde_json::from_str(body["default"].as_str().unwrap()).unwrap();
        assert_eq!(
            machine["triggers"][0]["actor"],
            "arn:aws:iam::111122223333:user/alice"
        );
        assert_eq!(machine["findings"].as_array().unwrap().len(), 3);
        let email = body["email"].as_str().unwrap();
        assert!(
            email.contains("alice")
                && email.contains("[CRITICAL] sg-open-ingress")
                && email.contains("What to do")
        );
        let chat: Value = serde_json::from_str(body["https"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert!(chat["content"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
        assert_eq!(
            chat["metadata"]["threadId"],
            "eks-warden/111122223333/eu-west-1/prod"
        );
        let names: Vec<&str> = m.attributes.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "severity",
                "cluster",
                "account",
                "region",
                "event_name",
                "notification",
                "rule_ids"
            ]
        );
        let (_, data_type, rule_ids) = &m.attributes[6];
        assert_eq!(data_type, "String.Array");
        assert_eq!(
            rule_ids,
            r#"["endpoint-private-disabled","sg-open-ingress"]"#
        );
    }

    #[test]
    fn long_subjects_are_printable_ascii_under_100_characters() {
        let m = message(&report(1, &"c".repeat(300)), &[trigger()]).unwrap();
        assert!(m.subject.len() <= 99, "{}", m.subject);
        assert!(m.subject.chars().all(|c| (' '..='~').contains(&c)));
        assert!(m.subject.ends_with("..."));
    }

    fn hostile_trigger() -> Trigger {
        let Trigger::CloudTrail(mut e) = trigger() else {
            unreachable!()
        };
        e.actor_arn = Some("arn:aws:iam::111122223333:user/<!channel>".into());
        e.source_ip = Some("198.51.100.7\nViolations: none, all clear".into());
        Trigger::CloudTrail(e)
    }

    /// Guards: outside strings can neither mention a channel or forge a link in Slack, nor forge lines in
    /// the e-mail text.
    #[test]
    fn outside_strings_cannot_mention_link_or_forge_lines() {
        let mut r = report(1, "prod");
        r.results[0].message = "group <https://evil.example|Click to acknowledge> @here".into();
        r.results[0].finding_id = "ewf-1".into();
        let d =
            crate::state::diff::evaluated(&Default::default(), &r.results, "2026-12-02T00:00:00Z");
        assert_eq!(d.new.len(), 1);
        let change = change::message(&r, &[hostile_trigger()], &d, change::Kind::Change, &[]);
        let full = message(&r, &[hostile_trigger()]).unwrap();
        for m in [full.body, change.body] {
            let body: Value = serde_json::from_str(&m).unwrap();
            let chat = body["https"].as_str().unwrap();
            let chat: Value = serde_json::from_str(chat).unwrap();
            let text = chat["content"]["description"].as_str().unwrap();
            assert!(!text.contains("<!channel>"), "{text}");
            assert!(!text.contains("<https://"), "{text}");
            assert!(!text.contains("@here"), "{text}");
            assert!(text.contains("&lt;!channel&gt;"), "{text}");
            let email = body["email"].as_str().unwrap();
            assert!(
                !email.lines().any(|l| l.starts_with("Violations: none")),
                "{email}"
            );
            assert!(email.contains("198.51.100.7\\nViolations"), "{email}");
            assert!(chat["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("eks-warden/")));
        }
    }

    /// Guards: the first next step is the worst finding's, whatever the rule ids' alphabetical order.
    #[test]
    fn next_steps_lead_with_the_worst_and_link_the_docs() {
        let steps = next_steps(
            [
                (Severity::Low, "deletion-protection-off"),
                (Severity::Medium, "auth-configmap-only"),
                (Severity::Critical, "sg-open-ingress"),
                (Severity::High, "sg-open-ingress"),
            ]
            .into_iter(),
        );
        assert!(
            steps[0].starts_with("[CRITICAL] sg-open-ingress"),
            "{steps:?}"
        );
        assert!(steps[1].starts_with("[MEDIUM] auth-configmap-only"));
        assert_eq!(steps.len(), 3);
        assert!(
            steps[0].contains("(https://docs.aws.amazon.com/"),
            "{steps:?}"
        );
    }

    /// Guards: a pass of 300 fixes (and as many unknowns) still fits one SNS message.
    #[test]
    fn three_hundred_fixes_fit_one_message() {
        use crate::remediate::{Outcome, Remediation};
        let mut r = report(300, "prod");
        r.remediations = (0..300)
            .map(|i| Remediation {
                rule_id: "sg-open-ingress".into(),
                resource_id: format!("sg-{i:017}"),
                outcome: Outcome::Remediated,
                action: None,
                permission: Some("ec2:RevokeSecurityGroupIngress"),
                detail: format!("revoked {} ", "x".repeat(900)),
            })
            .collect();
        for i in 0..300 {
            r.results.push(RuleResult {
                status: Status::Unknown,
                message: format!("could not be read: {}", "y".repeat(900)),
                resource_id: format!("sg-u{i}"),
                ..r.results[0].clone()
            });
        }
        let m = message(&r, &[trigger()]).unwrap();
        assert!(m.body.len() <= MAX_BODY, "{}", m.body.len());
        let body: Value = serde_json::from_str(&m.body).unwrap();
        let machine: Value = serde_json::from_str(body["default"].as_str().unwrap()).unwrap();
        assert_eq!(machine["remediations_total"], 300);
        assert_eq!(machine["unknown_total"], 300);
    }
}

#[cfg(test)]
mod storm_tests {
    use super::*;

    #[test]
    fn a_storm_of_triggers_and_findings_still_fits_in_one_sns_message() {
        let results = (0..3000)
            .map(|i| crate::rules::RuleResult {
                rule_id: "sg-open-ingress".into(),
                severity: if i == 2999 { Severity::Critical } else { Severity::High },
                status: Status::Fail,
                resource_type: crate::rules::ResourceType::SecurityGroup,
                resource_id: format!("sg-{i:017}"),
                message: format!("security group sg-{i:017} allows ingress on tcp/22 from 0.0.0.0/0, a long message {}", "x".repeat(80)),
                evidence: Default::default(),
                discriminator: None,
                finding_id: String::new(),
            })
            .collect();
        let report = crate::formats::fixture::cluster("prod", results);
        let triggers: Vec<Trigger> = (0..500)
            .map(|i| Trigger::Direct {
                clusters: vec![format!("prod-{i}")],
                account: None,
                region: None,
            })
            .collect();
        let m = message(&report, &triggers).unwrap();
        assert!(m.body.len() <= MAX_BODY, "{} bytes", m.body.len());
        assert!(
            m.subject
                .starts_with("[CRITICAL] eks-warden: 3000 violations"),
            "{}",
            m.subject
        );
        let body: Value = serde_json::from_str(&m.body).unwrap();
        let machine: Value = serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(machine["findings_total"], 3000);
        assert_eq!(machine["triggers_total"], 500);
        assert_eq!(machine["triggers"].as_array().unwrap().len(), MAX_TRIGGERS);
        // The worst finding survives the cut.
        assert_eq!(machine["findings"][0]["severity"], "CRITICAL");
        assert!(body["email"]
            .as_str()
            .unwrap()
            .contains("…and 490 more change(s)"));
    }
}
