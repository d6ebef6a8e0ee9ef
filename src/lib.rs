//! eks-warden: continuous compliance for Amazon EKS clusters.
//!
//! payload → triggers → cluster refs → [`collect`] → [`model::ClusterSnapshot`] → [`rules::evaluate`] → sinks.

pub mod baseline;
pub mod cli;
pub mod collect;
pub mod echo;
pub mod event;
pub mod exemptions;
pub mod finding;
pub mod formats;
pub mod handler;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod remediate;
pub mod report;
pub mod resolve;
pub mod route;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod securityhub;
pub mod settings;
pub mod state;
pub mod timeouts;
