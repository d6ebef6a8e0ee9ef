//! eks-warden: continuous compliance for Amazon EKS clusters.
//!
//! payload → triggers → cluster refs → [`collect`] → [`model::ClusterSnapshot`] → [`rules::evaluate`] → sinks.

pub mod cli;
pub mod collect;
pub mod event;
pub mod finding;
pub mod handler;
pub mod model;
pub mod notify;
pub mod remediate;
pub mod report;
pub mod route;
pub mod rules;
pub mod scan;
pub mod settings;
pub mod state;
