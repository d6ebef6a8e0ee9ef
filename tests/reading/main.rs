//! Reading and judging clusters against the emulator over HTTP: the collector, the rule catalog, the scan, the events' routing, the report formats and Security Hub, and what the emulator itself serves.
//! One test binary for these modules (each links the whole SDK once); the modules keep apart
//! by region, no region used by two of them.

#[path = "../common/mod.rs"]
mod common;

mod catalog_emulator;
mod collect_emulator;
mod emulator_coverage;
mod events_emulator;
mod formats_emulator;
mod scan_emulator;
mod securityhub_emulator;
