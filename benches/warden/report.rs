//! The figures table: rows, spreads and how a figure is printed.

#[allow(unused_imports)]
use super::*;

/// One line of the summary table.
pub struct Row {
    pub bench: String,
    pub figure: String,
    pub value: String,
    pub goal: String,
    pub met: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Markdown sections with the detail behind the rows.
    pub details: String,
}

impl Report {
    pub fn row(
        &mut self,
        bench: &str,
        figure: &str,
        value: impl Into<String>,
        goal: &str,
        met: Option<bool>,
    ) {
        let r = Row {
            bench: bench.into(),
            figure: figure.into(),
            value: value.into(),
            goal: goal.into(),
            met,
        };
        println!(
            "  {:<12} {:<58} {:>22}  {}",
            r.bench,
            r.figure,
            r.value,
            verdict(&r)
        );
        self.rows.push(r);
    }

    pub fn table(&self) -> String {
        let mut t =
            String::from("| benchmark | figure | value | goal | met |\n|---|---|---:|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                r.bench,
                r.figure,
                r.value,
                r.goal,
                verdict(r)
            );
        }
        t
    }
}

pub(crate) fn verdict(r: &Row) -> &'static str {
    match r.met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    }
}

pub fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 10_000.0 {
        format!("{m:.0} ms")
    } else {
        format!("{:.1} s", m / 1000.0)
    }
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// Sorted-sample statistics.
pub struct Spread {
    pub n: usize,
    pub min: Duration,
    pub p25: Duration,
    pub median: Duration,
    pub p75: Duration,
    pub max: Duration,
}

impl Spread {
    pub fn of(samples: &[Duration]) -> Spread {
        let mut s = samples.to_vec();
        s.sort();
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Spread {
            n: s.len(),
            min: s[0],
            p25: at(0.25),
            median: at(0.5),
            p75: at(0.75),
            max: s[s.len() - 1],
        }
    }

    pub fn line(&self) -> String {
        format!(
            "median {} (IQR {} – {}, min {}, max {}, n = {})",
            ms(self.median),
            ms(self.p25),
            ms(self.p75),
            ms(self.min),
            ms(self.max),
            self.n
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// Measuring AWS calls
