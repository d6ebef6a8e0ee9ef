//! CLI output: the stable JSON report and the table a person reads.

use crate::baseline::{Comparison, Mark};
use crate::rules::{self, Severity, Status};
use crate::scan::{ClusterReport, ScanReport, Summary};
use std::fmt::Write;

pub fn json(report: &ScanReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

struct Paint(bool);

impl Paint {
    fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
        };
        self.wrap(code, &format!("{:<8}", s.as_str()))
    }
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// One line per FAIL (and per UNKNOWN, which a person must look at too), grouped by cluster, worst first.
pub fn table(report: &ScanReport, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    for c in &report.clusters {
        cluster_section(&mut out, &p, c, report.baseline.as_ref());
    }
    remediation_section(&mut out, &p, &report.clusters);
    if let Some(b) = report.baseline.as_ref().filter(|b| !b.resolved.is_empty()) {
        resolved_section(&mut out, b);
    }
    for e in &report.skipped {
        let _ = writeln!(out, "{} — skipped: {}", e.cluster, e.error);
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "{} — {}: {}",
            e.cluster,
            p.wrap("1;31", "not evaluated"),
            e.error
        );
    }
    summary_line(&mut out, &report.summary);
    if let Some(b) = &report.baseline {
        let _ = writeln!(
            out,
            "against {}: {} new, {} unchanged, {} resolved",
            b.source,
            b.new.len(),
            b.unchanged.len(),
            b.resolved.len()
        );
    }
    out
}

/// A cluster's heading with its verdict, then its failures and unknowns, failures first, worst first.
fn cluster_section(out: &mut String, p: &Paint, c: &ClusterReport, baseline: Option<&Comparison>) {
    let fails = c.failures().count();
    let unknown = c
        .results
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .count();
    let verdict = match (fails, unknown) {
        (0, 0) => p.wrap("32", "no violations"),
        (0, u) => format!("no violations, {u} unknown"),
        (f, 0) => format!("{f} violation{}", plural(f)),
        (f, u) => format!("{f} violation{}, {u} unknown", plural(f)),
    };
    let _ = writeln!(
        out,
        "{} ({}/{}) {} — {}",
        p.wrap("1", &c.cluster),
        c.account,
        c.region,
        c.status,
        verdict
    );
    let mut lines: Vec<_> = c
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Unknown))
        .collect();
    lines.sort_by(|a, b| {
        (b.status == Status::Fail, b.severity).cmp(&(a.status == Status::Fail, a.severity))
    });
    for r in lines {
        let sev = if r.status == Status::Fail {
            p.sev(r.severity)
        } else {
            p.wrap("2", "UNKNOWN ")
        };
        let mark = baseline_mark(p, baseline, &r.finding_id);
        let _ = writeln!(
            out,
            "  {sev} {mark}{:<32} {:<14} {:<24} {}",
            r.rule_id,
            r.resource_type.as_str(),
            r.resource_id,
            r.message
        );
    }
}

/// With a baseline, a column says whether the violation is new; without one, no column.
fn baseline_mark(p: &Paint, baseline: Option<&Comparison>, finding_id: &str) -> String {
    match baseline {
        None => String::new(),
        Some(b) => match b.mark(finding_id) {
            Some(Mark::New) => p.wrap("1", &format!("{:<10}", "new")),
            Some(m) => format!("{:<10}", m.as_str()),
            None => format!("{:<10}", ""),
        },
    }
}

/// Per cluster that had fixes: each fix's outcome and the call it made (or would make).
fn remediation_section(out: &mut String, p: &Paint, clusters: &[ClusterReport]) {
    for c in clusters.iter().filter(|c| !c.remediations.is_empty()) {
        let _ = writeln!(out, "{} — remediation:", p.wrap("1", &c.cluster));
        for m in &c.remediations {
            let call = m
                .action
                .as_ref()
                .map(|a| serde_json::to_string(a).unwrap_or_default())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<10} {:<29} {:<24} {} {}",
                format!("{:?}", m.outcome).to_uppercase(),
                m.rule_id,
                m.resource_id,
                m.detail,
                call
            );
        }
    }
}

/// The baseline's failures that this scan no longer reports.
fn resolved_section(out: &mut String, b: &Comparison) {
    let _ = writeln!(out, "resolved since {}:", b.source);
    for f in &b.resolved {
        let _ = writeln!(
            out,
            "  {:<8} {:<10}{:<32} {:<24} {} ({})",
            f.severity.as_str(),
            f.now,
            f.rule_id,
            f.resource_id,
            f.cluster,
            f.message
        );
    }
}

/// The closing count: clusters, violations by severity, unknown, exempt, passed, not evaluated.
fn summary_line(out: &mut String, s: &Summary) {
    let by_sev: Vec<String> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .iter()
    .filter_map(|sev| s.fail_by_severity.get(sev).map(|n| format!("{n} {sev}")))
    .collect();
    let _ = writeln!(
        out,
        "\n{} cluster{}: {} violation{}{}, {} unknown, {} exempt, {} passed{}",
        s.clusters,
        plural(s.clusters),
        s.fail,
        plural(s.fail),
        if by_sev.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_sev.join(", "))
        },
        s.unknown,
        s.exempt,
        s.pass,
        if s.errors > 0 {
            format!(", {} not evaluated", s.errors)
        } else {
            String::new()
        }
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The rule catalog.
pub fn rules_json() -> String {
    let list: Vec<_> = rules::ALL.iter().map(|r| r.meta).collect();
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

pub fn rules_table() -> String {
    let mut out = String::new();
    for r in rules::ALL {
        let m = &r.meta;
        let _ = writeln!(
            out,
            "{:<32} {:<8} {:<4} {}",
            m.id,
            m.severity.as_str(),
            if m.remediable { "fix" } else { "" },
            m.title
        );
    }
    out
}

/// The catalog as Markdown: `docs/rules.md` is exactly this output (a test keeps them in sync).
pub fn rules_markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(out, "# Rule catalog\n");
    let _ = writeln!(
        out,
        "Generated from the rule registry (`src/rules/`) by `eks-warden rules --format markdown`; do not edit \
         by hand. Regenerate with\n`cargo run --bin eks-warden -- rules --format markdown > docs/rules.md`.\n"
    );
    let _ = writeln!(
        out,
        "Every rule gives a verdict per resource: `PASS`, `FAIL`, `UNKNOWN` (the data could not be read; the \
         reason is in the message) or `EXEMPT` (the cluster, or for security groups the group, carries the tag \
         `{}` listing the rule id or `*`, or an unexpired entry of the central exemption list matches; the \
         result names its source, reason and owner). An automatic fix runs only when opted in; its IAM action is \
         what the remediating role needs. Every fix re-reads the cluster first and acts only if the finding still \
         holds and the cluster is ACTIVE; a dry run makes no call; at most `EKS_WARDEN_MAX_FIXES` write calls \
         (default 10) are made per invocation, the rest deferred to the re-check; a finding fixed three times in a \
         day is reported as flapping instead of fixed again; a fix a guardrail stops is reported `skipped` with \
         the reason and the other party.\n",
        rules::EXEMPT_TAG
    );
    let _ = writeln!(out, "| id | severity | title | automatic fix |");
    let _ = writeln!(out, "|---|---|---|---|");
    for r in rules::ALL {
        let m = &r.meta;
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} | {} |",
            m.id,
            m.id,
            m.severity,
            cell(m.title),
            match m.fix_permission {
                Some(p) => format!("yes (`{p}`)"),
                None => "—".to_string(),
            }
        );
    }
    for r in rules::ALL {
        let m = &r.meta;
        let _ = writeln!(out, "\n## {}\n", m.id);
        let _ = writeln!(out, "**{}** · severity **{}**\n", m.title, m.severity);
        let _ = writeln!(out, "**What it checks.** {}\n", m.description);
        let _ = writeln!(out, "**Resolution.** {}\n", m.resolution);
        let _ = writeln!(
            out,
            "**Automatic fix.** {}\n",
            match (m.fix_permission, m.fix) {
                (Some(p), Some(f)) => {
                    let mut never = f.never.chars();
                    let never = never
                        .next()
                        .map(|c| c.to_lowercase().chain(never).collect::<String>())
                        .unwrap_or_default();
                    format!(
                        "Yes, opt-in; it needs the IAM permission `{p}`.\n\n*What it changes:* {}\n\n\
                         *What it will never do:* {never}",
                        f.changes
                    )
                }
                (Some(p), None) => format!("Yes, opt-in; it needs the IAM permission `{p}`."),
                _ => "None; a person makes the change.".to_string(),
            }
        );
        let _ = writeln!(out, "**References.**\n");
        for reference in m.references {
            if reference.starts_with("https://") {
                let _ = writeln!(out, "- <{reference}>");
            } else {
                let _ = writeln!(out, "- {reference}");
            }
        }
    }
    out
}
