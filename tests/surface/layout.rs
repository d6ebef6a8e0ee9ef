//! The integration tests' layout: a few binaries (each links the whole SDK once, which is most of a
//! build), one emulator per binary, and its modules kept apart by region. Two modules of one binary in
//! the same region would see each other's clusters; this test names them.

use std::collections::BTreeMap;
use std::path::Path;

/// Region names as they appear in the tests (literals, ARNs, availability zones).
fn regions(text: &str) -> Vec<String> {
    const PREFIXES: [&str; 9] = [
        "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
    ];
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.char_indices() {
        let before = at.checked_sub(1).map(|b| bytes[b]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        let rest = &text[at..];
        if !PREFIXES.iter().any(|p| rest.starts_with(p)) {
            continue;
        }
        // prefix, a lower-case word, a dash, one digit not followed by another.
        let word: String = rest[3..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        let tail = &rest[3 + word.len()..];
        let mut t = tail.chars();
        if !word.is_empty() && t.next() == Some('-') {
            if let Some(d) = t.next().filter(char::is_ascii_digit) {
                if !t.next().is_some_and(|c| c.is_ascii_digit()) {
                    found.push(format!("{}{word}-{d}", &rest[..3]));
                }
            }
        }
    }
    found
}

#[test]
fn no_region_is_used_by_two_modules_of_one_binary() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut binaries = 0;
    for dir in std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        if !dir.join("main.rs").exists() {
            continue;
        }
        binaries += 1;
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            // Mocked clients never reach the emulator; this file only names regions.
            if name == "main"
                || name == "layout"
                || name.ends_with("_mocked")
                || file.extension() != Some("rs".as_ref())
            {
                continue;
            }
            let mut found = regions(&std::fs::read_to_string(&file).unwrap());
            found.sort();
            found.dedup();
            for r in found {
                users.entry(r).or_default().push(name.clone());
            }
        }
        let shared: Vec<_> = users.iter().filter(|(_, m)| m.len() > 1).collect();
        assert!(
            shared.is_empty(),
            "{}: regions used by two modules: {shared:?}",
            dir.display()
        );
    }
    assert!(binaries >= 5, "{binaries} test binaries found");
}

#[test]
fn region_names_are_found_in_literals_arns_and_zones() {
    let text = r#"("eu-west-1") arn:aws:eks:ap-southeast-2:1:cluster/x us-east-1a ca-west-12 xeu-west-1 mars-1"#;
    assert_eq!(regions(text), ["eu-west-1", "ap-southeast-2", "us-east-1"]);
}
