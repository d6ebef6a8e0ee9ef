//! The batch pipeline and the handler against the emulator: storms, faults, deadlines, sweeps across accounts and regions.
//! One test binary for these modules (each links the whole SDK once); the modules keep apart
//! by region, no region used by two of them.

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod handle_emulator;
mod pipeline_emulator;
mod sweep_emulator;
