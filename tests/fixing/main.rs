//! Fixes against the emulator: what each fix changes, and every guardrail that stops one.
//! One test binary for these modules (each links the whole SDK once); the modules keep apart
//! by region, no region used by two of them.

#[path = "../common/mod.rs"]
mod common;

mod guardrails_emulator;
mod remediate_emulator;
