//! The central exemption list: reviewed exceptions with a scope, a reason, an owner and an expiry date.
//!
//! Tags exempt too, but they need write access to shared resources, carry no reason and vanish on the
//! next `terraform apply`; the list is kept in one place (an SSM parameter, or a file for the CLI) where a
//! change can be reviewed. This module is pure: the list and today's date arrive through [`Settings`]
//! (crate::settings::Settings), so the CLI and the Lambda judge alike and no rule reads the clock.

pub mod load;

use crate::settings::principal_matches;
use serde::Deserialize;
use std::fmt;

/// A calendar day (UTC). Ordered, so `today > expires` means expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Day {
    pub year: u32,
    pub month: u32,
    pub day: u32,
}

impl Day {
    /// `YYYY-MM-DD`, strictly: a real calendar day, zero-padded.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (year >= 1970 && (1..=days).contains(&day)).then_some(Day { year, month, day })
    }

    /// The civil date of a count of days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    pub fn from_unix_days(days: i64) -> Day {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        Day { year, month, day }
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One reviewed exception. Scope fields default to `*`; `*` in a value stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// How messages name the entry: its `id`, else its position (`#3`).
    pub name: String,
    pub account: String,
    pub cluster: String,
    /// A rule id of the catalog, or `*`.
    pub rule: String,
    pub resource: String,
    pub reason: String,
    pub owner: String,
    /// The last day the exemption applies (inclusive, UTC).
    pub expires: Day,
}

/// The list as written: unknown fields are refused, so a misspelt `expiry` is an error, not a forever.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: Option<String>,
    account: Option<String>,
    cluster: Option<String>,
    rule: Option<String>,
    resource: Option<String>,
    reason: Option<String>,
    owner: Option<String>,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawList {
    Wrapped { exemptions: Vec<serde_json::Value> },
    Bare(Vec<serde_json::Value>),
}

/// The loaded list with the day it is judged on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exemptions {
    /// Where the list came from (`ssm:/eks-warden/exemptions`, `file:exemptions.json`), for messages.
    pub source: String,
    pub entries: Vec<Entry>,
    /// Today (UTC), set by whoever loaded the list; an entry is expired when `today > expires`.
    pub today: Day,
}

/// What the list says about one result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict<'a> {
    Active(&'a Entry),
    Expired(&'a Entry),
}

impl Exemptions {
    /// Parses and validates a list (JSON: a list of entries, or `{"exemptions": [...]}`). Every error
    /// names the entry and the field.
    pub fn parse(source: &str, text: &str, today: Day) -> Result<Exemptions, String> {
        let raw: RawList = serde_json::from_str(text).map_err(|e| {
            format!("{source}: not an exemption list (a JSON list of entries, or {{\"exemptions\": [...]}}): {e}")
        })?;
        let values = match raw {
            RawList::Wrapped { exemptions } => exemptions,
            RawList::Bare(v) => v,
        };
        let mut entries = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let position = format!("#{}", i + 1);
            let label = v
                .get("id")
                .and_then(|id| id.as_str())
                .map(|id| format!("{position} ({id})"))
                .unwrap_or_else(|| position.clone());
            let raw: RawEntry =
                serde_json::from_value(v).map_err(|e| format!("{source}: entry {label}: {e}"))?;
            let entry =
                validate(raw, position).map_err(|e| format!("{source}: entry {label}: {e}"))?;
            entries.push(entry);
        }
        let mut names = std::collections::BTreeSet::new();
        if let Some(dup) = entries.iter().find(|e| !names.insert(e.name.as_str())) {
            return Err(format!("{source}: entry id {:?} is used twice", dup.name));
        }
        Ok(Exemptions {
            source: source.to_string(),
            entries,
            today,
        })
    }

    /// The entry that exempts a result: an active one if any matches, else an expired one (reported so).
    pub fn verdict(
        &self,
        account: &str,
        cluster: &str,
        rule_id: &str,
        resource_id: &str,
    ) -> Option<Verdict<'_>> {
        let matching = self.entries.iter().filter(|e| {
            principal_matches(&e.account, account)
                && principal_matches(&e.cluster, cluster)
                && (e.rule == "*" || e.rule == rule_id)
                && principal_matches(&e.resource, resource_id)
        });
        let mut expired = None;
        for e in matching {
            if self.today <= e.expires {
                return Some(Verdict::Active(e));
            }
            expired = expired.or(Some(e));
        }
        expired.map(Verdict::Expired)
    }
}

fn validate(raw: RawEntry, position: String) -> Result<Entry, String> {
    let text = |field: &str, v: Option<String>| -> Result<String, String> {
        match v.map(|s| s.trim().to_string()) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(format!("\"{field}\" is required and must not be empty")),
        }
    };
    let pattern = |field: &str, v: Option<String>| -> Result<String, String> {
        match v {
            None => Ok("*".to_string()),
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(_) => Err(format!("\"{field}\" is empty (leave it out to mean any)")),
        }
    };
    let rule = text("rule", raw.rule)?;
    if rule != "*" && crate::rules::find(&rule).is_none() {
        return Err(format!(
            "unknown rule id {rule:?} (see `eks-warden rules`, or \"*\" for every rule)"
        ));
    }
    let account = pattern("account", raw.account)?;
    if !account.chars().all(|c| c.is_ascii_digit() || c == '*') {
        return Err(format!(
            "\"account\" {account:?} is not a 12-digit account id (or a pattern of one with `*`)"
        ));
    }
    let expires_text = text("expires", raw.expires)?;
    let expires = Day::parse(&expires_text).ok_or_else(|| {
        format!("\"expires\" {expires_text:?} is not a date (YYYY-MM-DD, the last day it applies)")
    })?;
    Ok(Entry {
        name: raw
            .id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(position),
        account,
        cluster: pattern("cluster", raw.cluster)?,
        rule,
        resource: pattern("resource", raw.resource)?,
        reason: text("reason", raw.reason)?,
        owner: text("owner", raw.owner)?,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Day = Day {
        year: 2026,
        month: 6,
        day: 15,
    };

    fn list(text: &str) -> Result<Exemptions, String> {
        Exemptions::parse("test", text, TODAY)
    }

    #[test]
    fn days_parse_strictly() {
        assert_eq!(
            Day::parse("2024-02-29"),
            Some(Day {
                year: 2024,
                month: 2,
                day: 29
            })
        );
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "2026-01-32",
            "+026-01-01",
            "",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn unix_days_to_dates() {
        assert_eq!(Day::from_unix_days(0).to_string(), "1970-01-01");
        assert_eq!(Day::from_unix_days(19_782).to_string(), "2024-02-29");
        assert_eq!(Day::from_unix_days(20_618).to_string(), "2026-06-14");
    }

    #[test]
    fn scope_matches_with_wildcards_and_the_last_day_still_counts() {
        let l = list(r#"{"exemptions": [
            {"id": "bastion", "account": "111122223333", "cluster": "prod-*", "rule": "sg-open-ingress",
             "resource": "sg-0bastion*", "reason": "bastion until VPN", "owner": "net-team", "expires": "2026-06-15"}]}"#)
        .unwrap();
        let v = l.verdict("111122223333", "prod-eu", "sg-open-ingress", "sg-0bastion1");
        assert!(matches!(v, Some(Verdict::Active(e)) if e.name == "bastion"));
        assert_eq!(
            l.verdict("444455556666", "prod-eu", "sg-open-ingress", "sg-0bastion1"),
            None
        );
        assert_eq!(
            l.verdict("111122223333", "dev", "sg-open-ingress", "sg-0bastion1"),
            None
        );
        assert_eq!(
            l.verdict("111122223333", "prod-eu", "nodes-public-ip", "sg-0bastion1"),
            None
        );
        assert_eq!(
            l.verdict("111122223333", "prod-eu", "sg-open-ingress", "sg-0other"),
            None
        );
        let tomorrow = Exemptions {
            today: Day { day: 16, ..TODAY },
            ..l.clone()
        };
        assert!(matches!(
            tomorrow.verdict("111122223333", "prod-eu", "sg-open-ingress", "sg-0bastion1"),
            Some(Verdict::Expired(_))
        ));
    }

    #[test]
    fn an_active_entry_wins_over_an_expired_one() {
        let l = list(r#"[
            {"rule": "*", "reason": "old", "owner": "a", "expires": "2020-01-01"},
            {"rule": "*", "cluster": "prod", "reason": "new", "owner": "b", "expires": "2030-01-01"}]"#)
        .unwrap();
        assert!(
            matches!(l.verdict("1", "prod", "x", "y"), Some(Verdict::Active(e)) if e.reason == "new")
        );
        assert!(
            matches!(l.verdict("1", "dev", "x", "y"), Some(Verdict::Expired(e)) if e.name == "#1")
        );
    }

    #[test]
    fn bad_entries_are_named_in_the_error() {
        let cases = [
            (
                r#"[{"rule": "no-such-rule", "reason": "r", "owner": "o", "expires": "2030-01-01"}]"#,
                "entry #1: unknown rule id \"no-such-rule\"",
            ),
            (
                r#"[{"rule": "*", "reason": "r", "owner": "o", "expires": "2030-01-01"}, {"id": "x", "rule": "*", "reason": "r", "owner": "o", "expires": "2030-02-30"}]"#,
                "entry #2 (x): \"expires\" \"2030-02-30\" is not a date",
            ),
            (
                r#"[{"rule": "*", "reason": "r", "owner": "o", "expiry": "2030-01-01"}]"#,
                "entry #1: unknown field `expiry`",
            ),
            (
                r#"[{"rule": "*", "reason": " ", "owner": "o", "expires": "2030-01-01"}]"#,
                "entry #1: \"reason\" is required",
            ),
            (
                r#"[{"rule": "*", "reason": "r", "expires": "2030-01-01"}]"#,
                "entry #1: \"owner\" is required",
            ),
            (
                r#"[{"rule": "*", "account": "prod", "reason": "r", "owner": "o", "expires": "2030-01-01"}]"#,
                "entry #1: \"account\" \"prod\" is not",
            ),
            (
                r#"[{"id": "a", "rule": "*", "reason": "r", "owner": "o", "expires": "2030-01-01"}, {"id": "a", "rule": "*", "reason": "r", "owner": "o", "expires": "2030-01-01"}]"#,
                "entry id \"a\" is used twice",
            ),
            (r#"{"entries": []}"#, "test: not an exemption list"),
        ];
        for (text, want) in cases {
            let err = list(text).unwrap_err();
            assert!(
                err.starts_with("test: ") && err.contains(want),
                "{err}\nwanted: {want}"
            );
        }
    }
}
