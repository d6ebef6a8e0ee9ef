//! A few seconds of the payload fuzzer (`make fuzz` runs it for longer, in release): every fixture of
//! events/ and a fixed-seed stream of mutations of them through parse_payload and the router, no panic.

#[path = "../../examples/fuzz/engine.rs"]
mod engine;

use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn mutated_events_never_panic_the_parser_or_the_router() {
    let seeds = engine::corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("events"));
    assert!(seeds.len() >= 40, "fixtures: {}", seeds.len());
    for s in &seeds {
        assert!(engine::target(&s.bytes), "{} is not JSON", s.name);
    }
    let until = Instant::now() + Duration::from_secs(4);
    let (stats, crash) = engine::worker(&seeds, 0x5eed, until, 50_000, |_| {});
    if let Some(c) = crash {
        panic!(
            "input {:?} panicked: {} (seed {}, exec {})",
            String::from_utf8_lossy(&c.input),
            c.message,
            c.seed,
            c.exec
        );
    }
    assert!(stats.execs > 100 && stats.parsed > 0, "{stats:?}");
}
