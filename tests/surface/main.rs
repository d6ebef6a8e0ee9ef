//! The product's surface with no seeded scenario behind it: the CLI, the templates against the code, mocked AWS clients (the catalog, the scan, the handler), and the parser under mutation.
//! One test binary for these modules (each links the whole SDK once); the modules keep apart
//! by region, no region used by two of them.

#[path = "../common/mod.rs"]
mod common;

mod catalog_mocked;
mod cli;
mod fuzz_smoke;
mod handle_mocked;
mod layout;
mod scan_mocked;
mod template_drift;
mod template_iam;
