//! `eks-warden state show CLUSTER`: what the table holds about a cluster, as JSON or for a person.

use super::store::{self, Store};

/// `eks-warden state show`: the open findings and the audit trail of one cluster.
pub async fn show(
    store: &Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<serde_json::Value, String> {
    let pk = store::cluster_pk(account, region, cluster);
    let loaded = store.load(&pk).await?;
    let known = loaded.state.is_some();
    let state = loaded.state.clone().unwrap_or_default();
    let mut audit: Vec<&serde_json::Value> = loaded.audit.iter().map(|a| &a.entry).collect();
    audit.reverse();
    Ok(serde_json::json!({
        "cluster": cluster,
        "account": account,
        "region": region,
        "known": known,
        "version": state.version,
        "last_notified": state.last_notified,
        "open": state.open.iter().map(|(id, f)| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            if let Some(o) = v.as_object_mut() { o.insert("finding_id".into(), id.clone().into()); }
            v
        }).collect::<Vec<_>>(),
        "pending": loaded.pending.iter().map(|p| &p.message.subject).collect::<Vec<_>>(),
        "audit": audit,
    }))
}

/// `state show` for a person: one line per open finding, then the audit trail, newest first.
pub fn show_table(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = String::new();
    let open = v["open"].as_array().cloned().unwrap_or_default();
    if v["known"] != serde_json::Value::Bool(true) {
        let _ = writeln!(
            out,
            "{} ({}/{}): no state recorded",
            s(&v["cluster"]),
            s(&v["account"]),
            s(&v["region"])
        );
    } else {
        let _ = writeln!(
            out,
            "{} ({}/{}): {} open, last notified {}",
            s(&v["cluster"]),
            s(&v["account"]),
            s(&v["region"]),
            open.len(),
            v["last_notified"].as_str().unwrap_or("never")
        );
    }
    for f in &open {
        let _ = writeln!(
            out,
            "  {:<8} {:<7} {:<32} {:<24} since {}  {}",
            s(&f["severity"]),
            s(&f["status"]),
            s(&f["rule_id"]),
            s(&f["resource_id"]),
            s(&f["first_seen"]),
            s(&f["finding_id"])
        );
    }
    let audit = v["audit"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "audit trail ({} fix(es)):", audit.len());
    for a in &audit {
        let _ = writeln!(
            out,
            "  {} {:<32} {:<24} {} {}",
            s(&a["at"]),
            s(&a["rule_id"]),
            s(&a["resource_id"]),
            s(&a["detail"]),
            a.get("action").map(|x| x.to_string()).unwrap_or_default()
        );
    }
    for p in v["pending"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "pending message: {}", s(p));
    }
    out
}
