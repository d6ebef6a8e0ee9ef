//! Strings from outside (actor ARNs, source IPs, user agents, tag values, names, AWS messages) on their way
//! into a notification: they must not forge lines in an e-mail, mentions or links in Slack, or an SNS
//! subject SNS refuses.

/// Characters that move text around without being seen: bidirectional overrides and isolates, line and
/// paragraph separators, zero-width characters. Every control character counts too.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// For e-mail text: one line, every control or invisible character shown as an escape (`\n`, `\u{202e}`),
/// so a value can neither start a new line nor hide what follows it.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// For Slack/Teams markdown (Amazon Q Developer in chat applications): `&`, `<` and `>` escaped as Slack
/// requires (so `<!channel>` and `<https://…|text>` stay text), `@channel`/`@here`/`@everyone` broken with
/// a word joiner, backticks made quotes (values sit inside code spans), and invisible characters escaped.
pub fn slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in plain(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            c => out.push(c),
        }
    }
    for word in ["channel", "here", "everyone"] {
        out = out.replace(&format!("@{word}"), &format!("@\u{2060}{word}"));
    }
    out
}

/// An SNS subject: printable ASCII only (anything else becomes `?`), at most 99 characters (SNS refuses 100
/// and more), cut with `...`.
pub fn subject(s: &str) -> String {
    const MAX: usize = 99;
    let ascii: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if ascii.len() <= MAX {
        return ascii;
    }
    format!("{}...", &ascii[..MAX - 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_values_cannot_forge_lines_or_hide_text() {
        let ip = "203.0.113.9\nViolations: none, all clear\r\n";
        assert_eq!(plain(ip), "203.0.113.9\\nViolations: none, all clear\\r\\n");
        assert!(!plain("a\u{202e}gnp.exe").contains('\u{202e}'));
        assert_eq!(plain("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(
            plain("prod-eu été"),
            "prod-eu été",
            "ordinary text untouched"
        );
    }

    #[test]
    fn slack_values_cannot_mention_or_link() {
        let actor = "arn:aws:iam::111122223333:user/<!channel>";
        assert_eq!(
            slack(actor),
            "arn:aws:iam::111122223333:user/&lt;!channel&gt;"
        );
        let link = "<https://evil.example|Click to acknowledge>";
        assert!(!slack(link).contains('<') && !slack(link).contains('>'));
        assert!(!slack("hi @here and @channel").contains("@here"));
        assert!(!slack("x`y").contains('`'));
        assert_eq!(slack("a&b"), "a&amp;b");
    }

    #[test]
    fn subjects_are_printable_ascii_under_100() {
        let s = subject(&format!(
            "[HIGH] eks-warden: 1 violation on {}",
            "é\n".repeat(200)
        ));
        assert!(s.len() <= 99);
        assert!(s.chars().all(|c| (' '..='~').contains(&c)));
        assert!(s.ends_with("..."));
        assert_eq!(subject("short"), "short");
    }
}
