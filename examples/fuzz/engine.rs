//! The payload fuzzer's engine: mutates the real-shaped fixtures of `events/` — structurally (drop and
//! duplicate keys, swap value types, `null`/`{}`/`[]` in place of anything, `items`/`item` wrappers,
//! percent-encoding, huge and unicode strings, other routes' event names, mutations inside SQS bodies) and
//! as raw bytes — and feeds every input the way the Lambda receives it, as bytes through
//! `serde_json::from_slice`, to the code that takes input: `event::parse_payload`, then for every trigger
//! its id, kind and notification JSON, and for every CloudTrail trigger `route::lookup` +
//! `route::resource_ids` (against its own row and every other row) and `route::cluster_from_arn`; the
//! strings of the input also go through `Settings::from_lookup` as environment values.
//!
//! Deterministic: a run is fixed by its seed, so any failure replays with `FUZZ_SEED`.
#![allow(dead_code)]

use eks_warden::event::{parse_payload, Trigger};
use eks_warden::{notify, route, settings::Settings};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The code under test, on one input. Panics are the findings.
/// Returns whether the input was JSON (and so reached `parse_payload`).
pub fn target(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    exercise(&v);
    true
}

pub fn exercise(v: &Value) {
    match parse_payload(v) {
        Ok(items) => {
            for item in &items {
                let Ok(t) = &item.trigger else { continue };
                std::hint::black_box((t.id(), t.kind(), notify::trigger_json(t)));
                let _ = serde_json::to_string(t);
                if let Trigger::CloudTrail(e) = t {
                    if let Some(r) = route::lookup(&e.event_source, &e.event_name) {
                        for id in route::resource_ids(r, e) {
                            std::hint::black_box(route::cluster_from_arn(&id));
                        }
                    }
                    // Another row against this record too (mutated records have every shape); which one
                    // follows from the record, so a run stays reproducible.
                    let other = &route::TABLE
                        [(e.event_name.len() + e.event_source.len()) % route::TABLE.len()];
                    std::hint::black_box(route::resource_ids(other, e));
                }
            }
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
    // Settings read strings from the environment: feed them the input's strings.
    let mut strings = Vec::new();
    collect_strings(v, &mut strings, 5);
    if !strings.is_empty() {
        let _ = Settings::from_lookup(|k| {
            let i = k.len() % strings.len();
            Some(strings[i].clone())
        });
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>, max: usize) {
    if out.len() >= max {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out, max)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out, max)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------
// Randomness: xorshift64*, seeded per worker.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------------
// Structural mutations

const KEYS: &[&str] = &[
    "Records",
    "body",
    "messageId",
    "detail",
    "detail-type",
    "account",
    "region",
    "eventSource",
    "eventName",
    "requestParameters",
    "responseElements",
    "items",
    "item",
    "name",
    "clusterName",
    "resourceArn",
    "groupId",
    "subnetId",
    "routeTableId",
    "associationId",
    "instanceId",
    "networkInterfaceId",
    "clusters",
    "kind",
    "attempt",
    "cluster",
    "errorCode",
    "userIdentity",
    "arn",
    "recipientAccountId",
    "awsRegion",
    "ModifySecurityGroupRulesRequest",
    "GroupId",
    "instancesSet",
    "securityGroupRuleSet",
    "CreateLaunchTemplateVersionRequest",
    "LaunchTemplateId",
    "LaunchTemplateName",
    "tag",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "eks.amazonaws.com",
    "ec2.amazonaws.com",
    "AWS API Call via CloudTrail",
    "Scheduled Event",
    "recheck",
    "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
    "arn:aws:eks:::cluster/",
    "arn:aws:eks",
    "arn",
    ":::::",
    "arn:aws:eks:r:a:cluster//x",
    "arn:aws:eks:r:a:nodegroup/c/n/id",
    "arn%3Aaws%3Aeks%3Ar%3Aa%3Acluster%2Fx",
    "%",
    "%zz",
    "%e2%82",
    "%ff%fe",
    "%00",
    "%25",
    "%2525",
    "\u{0}",
    "\u{feff}",
    "\u{202e}gnp.exe",
    "ẞ",
    "İ",
    "a\u{301}",
    "🦀🦀",
    "\u{10ffff}",
    "sg-",
    "subnet-",
    "rtb-",
    "i-",
    "eni-",
    "lt-",
    "*",
    "0.0.0.0/0",
    "::/0",
    "null",
    "true",
    "{}",
    "[]",
    "{\"a\":",
    "1e999",
    "-0",
    "18446744073709551616",
];

fn names_from_table() -> Vec<(&'static str, &'static str)> {
    route::TABLE
        .iter()
        .flat_map(|r| r.names.iter().map(move |n| (r.source, *n)))
        .collect()
}

/// The number of nodes of a document (for picking one uniformly).
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// The node at pre-order index `i`.
fn node_mut(v: &mut Value, i: usize) -> Option<&mut Value> {
    fn walk<'a>(v: &'a mut Value, i: &mut usize) -> Option<&'a mut Value> {
        if *i == 0 {
            return Some(v);
        }
        *i -= 1;
        match v {
            Value::Array(a) => {
                for x in a.iter_mut() {
                    let n = count(x);
                    if *i < n {
                        return walk(x, i);
                    }
                    *i -= n;
                }
                None
            }
            Value::Object(o) => {
                for x in o.values_mut() {
                    let n = count(x);
                    if *i < n {
                        return walk(x, i);
                    }
                    *i -= n;
                }
                None
            }
            _ => None,
        }
    }
    let mut i = i;
    walk(v, &mut i)
}

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => serde_json::json!(*rng.pick(&[0i64, -1, 1, i64::MAX, i64::MIN, 4294967296])),
        3 => serde_json::json!(*rng.pick(&[0.5f64, -0.0, 1e308, -1e-308])),
        4 => Value::String(rng.pick(STRINGS).to_string()),
        _ => Value::String(rng.pick(KEYS).to_string()),
    }
}

fn huge_string(rng: &mut Rng) -> String {
    let unit = *rng.pick(&["a", "é", "🦀", "%41", "\\", "\"", "items.", "/"]);
    // Mostly a few KB; now and then hundreds of KB (slow to run, so rarely).
    let max = if rng.chance(64) { 300_000 } else { 4_096 };
    unit.repeat(1 + rng.below(max / unit.len().max(1)))
}

fn percent_encode(s: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if rng.chance(2) || i == 0 {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    if rng.chance(4) {
        out = out.replace('%', "%25");
    }
    out
}

/// One structural mutation somewhere in `v`.
pub fn mutate(v: &mut Value, rng: &mut Rng, routes: &[(&'static str, &'static str)], depth: usize) {
    let n = count(v);
    let i = rng.below(n);
    let Some(node) = node_mut(v, i) else { return };
    match rng.below(16) {
        // null / {} / [] in place of anything
        0 => {
            *node = rng
                .pick(&[Value::Null, Value::Object(Map::new()), Value::Array(vec![])])
                .clone()
        }
        // swap the type
        1 => {
            *node = match std::mem::take(node) {
                Value::String(s) => match rng.below(3) {
                    0 => serde_json::json!(s.len()),
                    1 => Value::Array(vec![Value::String(s)]),
                    _ => Value::Bool(s.is_empty()),
                },
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                Value::Array(a) => Value::Object(
                    a.into_iter()
                        .enumerate()
                        .map(|(i, x)| (i.to_string(), x))
                        .collect(),
                ),
                Value::Object(o) => Value::Array(o.into_iter().map(|(_, x)| x).collect()),
                Value::Null => random_scalar(rng),
            }
        }
        // wrap: {"items": …}, {"item": …}, [ … ], {"items": {"item": …}}
        2 => {
            let inner = std::mem::take(node);
            *node = match rng.below(4) {
                0 => serde_json::json!({"items": inner}),
                1 => serde_json::json!({"item": inner}),
                2 => serde_json::json!([inner]),
                _ => serde_json::json!({"items": {"item": inner}, "tag": 1}),
            };
        }
        // drop a key
        3 => {
            if let Value::Object(o) = node {
                if !o.is_empty() {
                    let k = o
                        .keys()
                        .nth(rng.below(o.len()))
                        .cloned()
                        .unwrap_or_default();
                    o.remove(&k);
                }
            }
        }
        // add a known key with a random value (or a copy of a sibling)
        4 => {
            if let Value::Object(o) = node {
                let k = rng.pick(KEYS).to_string();
                let val = if !o.is_empty() && rng.chance(2) {
                    o.values()
                        .nth(rng.below(o.len()))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    random_scalar(rng)
                };
                o.insert(k, val);
            }
        }
        // rename a key (case changes too)
        5 => {
            if let Value::Object(o) = node {
                if let Some(k) = o.keys().nth(rng.below(o.len().max(1))).cloned() {
                    let val = o.remove(&k).unwrap_or_default();
                    let nk = match rng.below(3) {
                        0 => k.to_ascii_uppercase(),
                        1 => k.to_ascii_lowercase(),
                        _ => rng.pick(KEYS).to_string(),
                    };
                    o.insert(nk, val);
                }
            }
        }
        // percent-encode a string
        6 => {
            if let Value::String(s) = node {
                *s = percent_encode(s, rng);
            }
        }
        // huge or unicode string
        7 => {
            *node = Value::String(if rng.chance(3) {
                huge_string(rng)
            } else {
                rng.pick(STRINGS).to_string()
            })
        }
        // another route's source and name on a CloudTrail-shaped object
        8 => {
            if let Value::Object(o) = node {
                let (src, name) = *rng.pick(routes);
                o.insert("eventSource".into(), Value::String(src.into()));
                o.insert("eventName".into(), Value::String(name.into()));
            }
        }
        // grow an array (duplicates), or shrink it
        9 => {
            if let Value::Array(a) = node {
                if !a.is_empty() && rng.chance(2) {
                    let x = a[rng.below(a.len())].clone();
                    for _ in 0..1 + rng.below(64) {
                        a.push(x.clone());
                    }
                } else if !a.is_empty() {
                    a.remove(rng.below(a.len()));
                }
            }
        }
        // a JSON string that holds JSON (an SQS body): mutate inside it, or turn an object into such a string
        10 => {
            if node.is_object() {
                *node = Value::String(node.to_string());
            } else if let Value::String(s) = node {
                if depth < 3 {
                    if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                        for _ in 0..1 + rng.below(3) {
                            mutate(&mut inner, rng, routes, depth + 1);
                        }
                        *s = inner.to_string();
                    }
                }
            }
        }
        // deep nesting (the parser's recursion limit is 128)
        11 => {
            let levels = 1 + rng.below(200);
            let mut inner = std::mem::take(node);
            for _ in 0..levels {
                inner = if rng.chance(2) {
                    Value::Array(vec![inner])
                } else {
                    serde_json::json!({"items": inner})
                };
            }
            *node = inner;
        }
        // a scalar anywhere
        12 => *node = random_scalar(rng),
        // numbers at the edges
        13 => {
            if node.is_number() || node.is_string() {
                *node = serde_json::json!(*rng.pick(&[u64::MAX as f64, -1.0, 0.0, 1e-320]));
            }
        }
        // unwrap an items/item wrapper or a one-element list
        14 => {
            let replacement = match &*node {
                Value::Object(o) => o.get("items").or_else(|| o.get("item")).cloned(),
                Value::Array(a) if a.len() == 1 => a.first().cloned(),
                _ => None,
            };
            if let Some(r) = replacement {
                *node = r;
            }
        }
        // swap two subtrees' contents (a record's request into another shape)
        _ => {
            let j = rng.below(n);
            if let Some(other) = node_mut(v, j).map(|x| x.clone()) {
                if let Some(node) = node_mut(v, i) {
                    *node = other;
                }
            }
        }
    }
}

/// Writes `v` as JSON text, sometimes with a duplicated key (which `Value` cannot hold).
fn emit(v: &Value, rng: &mut Rng, out: &mut String, dup_one_in: usize) {
    match v {
        Value::Object(o) => {
            out.push('{');
            let mut first = true;
            for (k, x) in o {
                let dup = dup_one_in > 0 && rng.chance(dup_one_in);
                for round in 0..(1 + dup as usize) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    if round == 1 {
                        out.push_str(&random_scalar(rng).to_string());
                    } else {
                        emit(x, rng, out, dup_one_in);
                    }
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(x, rng, out, dup_one_in);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------------
// Raw byte mutations

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"1e999",
    b"-",
    b"null",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b"\"items\":",
    b"\"Records\":[",
    b"%",
];

pub fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) {
    let len = b.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len + 1);
            let t = rng.pick(TOKENS);
            b.splice(i..i, t.iter().copied());
        }
        2 if len > 0 => {
            let i = rng.below(len);
            let j = (i + 1 + rng.below(32)).min(len);
            b.drain(i..j);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let j = (i + 1 + rng.below(64)).min(len);
            let piece: Vec<u8> = b[i..j].to_vec();
            let at = rng.below(len + 1);
            b.splice(at..at, piece);
        }
        4 if len > 0 => b.truncate(rng.below(len)),
        5 if len > 0 => {
            let i = rng.below(len);
            b[i] = rng.next() as u8;
        }
        _ => {
            let i = rng.below(len + 1);
            b.insert(i, rng.next() as u8);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The corpus and the loop

pub struct Seed {
    pub name: String,
    pub value: Value,
    pub bytes: Vec<u8>,
}

/// Every fixture of `events/`, plus the regression inputs of `dir` if given.
pub fn corpus(events: &Path) -> Vec<Seed> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(events)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "json"));
    names.sort();
    names
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Some(Seed {
                name: p.file_name()?.to_string_lossy().into_owned(),
                value,
                bytes,
            })
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub execs: u64,
    pub structural: u64,
    pub raw: u64,
    /// Inputs that `serde_json` accepted and so reached `parse_payload`.
    pub parsed: u64,
}

/// A panic, with the input that caused it.
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
    pub seed: u64,
    pub exec: u64,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// One worker: mutates and runs inputs until `until`, or the first panic. `report` is called about
/// once a second with the stats so far.
pub fn worker(
    seeds: &[Seed],
    seed: u64,
    until: Instant,
    max_execs: u64,
    mut report: impl FnMut(&Stats),
) -> (Stats, Option<Crash>) {
    let mut rng = Rng::new(seed);
    let routes = names_from_table();
    let mut stats = Stats::default();
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let mut text = String::new();
    while stats.execs < max_execs {
        if stats.execs % 64 == 0 {
            let now = Instant::now();
            if now >= until {
                break;
            }
            if now >= next_report {
                report(&stats);
                next_report = now + Duration::from_secs(1);
            }
        }
        let s = rng.pick(seeds);
        let input: Vec<u8> = if rng.below(4) == 0 {
            // raw bytes, from the fixture's own text or from a structurally mutated one
            stats.raw += 1;
            let mut b = s.bytes.clone();
            for _ in 0..1 + rng.below(8) {
                mutate_bytes(&mut b, &mut rng);
            }
            b
        } else {
            stats.structural += 1;
            let mut v = s.value.clone();
            for _ in 0..1 + rng.below(6) {
                mutate(&mut v, &mut rng, &routes, 0);
            }
            text.clear();
            let dup = if rng.chance(4) { 8 } else { 0 };
            emit(&v, &mut rng, &mut text, dup);
            text.as_bytes().to_vec()
        };
        stats.execs += 1;
        match std::panic::catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(parsed) => stats.parsed += parsed as u64,
            Err(p) => {
                return (
                    stats,
                    Some(Crash {
                        input,
                        message: panic_message(&*p),
                        seed,
                        exec: stats.execs,
                    }),
                )
            }
        }
    }
    (stats, None)
}
