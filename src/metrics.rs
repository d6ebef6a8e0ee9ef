//! CloudWatch metrics in the embedded metric format (EMF): one JSON line written to the Lambda's log per
//! invocation, which CloudWatch turns into metrics without an API call (and without PutMetricData
//! permissions or latency). The CLI never writes it: its stdout stays one JSON document.
//!
//! Written by hand rather than through a metrics facade: eks-warden flushes one small document per
//! invocation from values it already counts, so a global recorder would add a dependency and hidden state
//! for nothing.

use serde_json::{json, Map, Value};

/// The namespace of every eks-warden metric.
pub const NAMESPACE: &str = "eks-warden";

/// EMF units eks-warden uses.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One invocation's metrics, all under the same dimension set (kept small: every distinct value of a
/// dimension is a separate metric CloudWatch bills for).
#[derive(Debug, Clone, Default)]
pub struct Emf {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, f64)>,
}

impl Emf {
    pub fn new(dimensions: &[(&str, &str)]) -> Self {
        Emf {
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics: vec![],
        }
    }

    /// Adds a value; a metric named twice is summed, so callers can count as they go.
    pub fn add(&mut self, name: &str, unit: Unit, value: f64) -> &mut Self {
        match self.metrics.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, v)) => *v += value,
            None => self.metrics.push((name.to_string(), unit, value)),
        }
        self
    }

    pub fn count(&mut self, name: &str, n: usize) -> &mut Self {
        self.add(name, Unit::Count, n as f64)
    }

    /// The EMF document, timestamped in milliseconds since the epoch.
    pub fn document(&self, timestamp_ms: i64) -> Value {
        let names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let defs: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [names],
                    "Metrics": defs,
                }],
            }),
        );
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), json!(v));
        }
        for (n, _, v) in &self.metrics {
            root.insert(n.clone(), json!(v));
        }
        Value::Object(root)
    }

    /// Writes the document as one line on stdout, where the Lambda runtime hands it to CloudWatch Logs.
    pub fn flush(&self) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        println!("{}", self.document(ms));
    }
}

/// One invocation's metrics from its run summary: what was processed, what was found, what was done.
/// Dimension: the function's name only, so the metric count stays fixed whatever the fleet.
pub fn from_run(
    run: &crate::pipeline::RunSummary,
    elapsed: std::time::Duration,
    function: &str,
) -> Emf {
    let mut m = Emf::new(&[("Function", function)]);
    let cloudtrail = run
        .triggers
        .iter()
        .filter(|t| t.kind == "cloudtrail")
        .count();
    // A sweep that fanned out or evaluated in-line, and failed nowhere, has completed its part.
    let swept = run.triggers.iter().any(|t| t.kind == "schedule") || !run.fanned_out.is_empty();
    m.count("EventsProcessed", cloudtrail)
        .count(
            "SweepsCompleted",
            usize::from(swept && run.failures.is_empty()),
        )
        .count("Evaluations", run.evaluated.len())
        .count("RecordsIgnored", run.ignored.len())
        .count("RecordsFailed", run.batch_item_failures.len())
        .count("ScopesUnreachable", run.unreachable.len())
        .add(
            "Duration",
            Unit::Milliseconds,
            elapsed.as_secs_f64() * 1000.0,
        );
    let calls: u32 = run.clusters.iter().map(|c| c.aws_calls).sum();
    m.count("AwsCalls", calls as usize);
    for sev in ["CRITICAL", "HIGH", "MEDIUM", "LOW"] {
        let n = run
            .clusters
            .iter()
            .flat_map(|c| c.failures())
            .filter(|r| r.severity.as_str() == sev)
            .count();
        m.count(&format!("Violations.{sev}"), n);
    }
    for c in &run.clusters {
        for r in &c.remediations {
            let outcome = format!("{:?}", r.outcome).to_lowercase();
            m.count(&format!("Remediations.{outcome}"), 1);
        }
    }
    for p in &run.published {
        m.count(&format!("Notifications.{}", p.notification), 1);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_what_it_processed_found_and_did() {
        let run = crate::pipeline::RunSummary {
            evaluated: vec!["prod".into()],
            ..Default::default()
        };
        let m = from_run(&run, std::time::Duration::from_millis(1500), "eks-warden");
        let d = m.document(0);
        assert_eq!(d["Evaluations"], 1.0);
        assert_eq!(d["Duration"], 1500.0);
        assert_eq!(d["SweepsCompleted"], 0.0);
        assert_eq!(d["Violations.HIGH"], 0.0);
        assert_eq!(d["Function"], "eks-warden");
    }

    #[test]
    fn a_valid_emf_document() {
        let mut m = Emf::new(&[("Function", "eks-warden")]);
        m.count("Evaluations", 3)
            .count("Violations.HIGH", 2)
            .count("Violations.HIGH", 1)
            .add("Duration", Unit::Milliseconds, 812.0);
        let d = m.document(1_796_000_000_000);
        let def = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(def["Namespace"], NAMESPACE);
        assert_eq!(def["Dimensions"], json!([["Function"]]));
        assert_eq!(def["Metrics"].as_array().unwrap().len(), 3);
        assert_eq!(d["Violations.HIGH"], 3.0);
        assert_eq!(d["Function"], "eks-warden");
        assert_eq!(d["_aws"]["Timestamp"], 1_796_000_000_000i64);
        // Every metric named in the definition has a value at the root, as CloudWatch requires.
        for m in def["Metrics"].as_array().unwrap() {
            assert!(d.get(m["Name"].as_str().unwrap()).is_some());
        }
    }
}
