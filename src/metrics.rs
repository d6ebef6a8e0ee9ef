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

#[cfg(test)]
mod tests {
    use super::*;

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
