//! Findings over time against the emulator: the state table, change messages, exactly-once publishing, exemptions and baselines.
//! One test binary for these modules (each links the whole SDK once); the modules keep apart
//! by region, no region used by two of them.

#[path = "../common/mod.rs"]
mod common;

mod exemptions_emulator;
mod lifecycle_emulator;
