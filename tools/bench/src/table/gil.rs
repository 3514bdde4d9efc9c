//! The post's models in Python and in Rust: the figures, then the same
//! figures as ratios (the model, the language, the client).

use std::fmt::Write;

use super::{RATE, footer, kernel, short, threads_line};
use crate::format::{count, latency_of, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Kind, Mode, Results, Scenario};
use crate::stats::{Stats, cell};

pub fn gil(results: &Results) -> String {
    let workers = results.params.workers.unwrap_or(8);
    let mut table = Table::new([
        left("Model, language"),
        left("Client"),
        right(RATE),
        right("Server CPU per request"),
        right("Latency p99"),
        right("Failed"),
    ]);
    let models: Vec<&str> = results
        .servers
        .iter()
        .filter(|s| s.kind == Kind::Listing)
        .map(|s| s.name.as_str())
        .collect();
    for model in &models {
        for (language, server) in [
            ("Rust", model.to_string()),
            ("Python", format!("py-{model}")),
        ] {
            for client in ["ab", "loadgen"] {
                let c = cell(results, &server, client, Mode::Close, 8, None);
                let client_code = format!("`{client}`");
                let who = format!("{model}, {language}");
                match c.stats() {
                    None => {
                        table.row_without_figures(&[&who, &client_code, &c.absent()]);
                    }
                    Some(s) => table.row([
                        who.clone(),
                        client_code,
                        s.rate_and_range(),
                        micros(s.server_cpu),
                        latency_of(client, s.p99),
                        s.failed(),
                    ]),
                }
            }
        }
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\n{} requests a run, 8 at a time, a new connection for each; every model but \
         linear with {workers} workers, as in the post. The Python servers are \
         references written for this comparison (`tools/bench/python/`), not \
         listings of the book.",
        count(results.params.requests as f64)
    );

    // The same figures as ratios: the model, the language, the client.
    let stat = |server: &str, client: &str| {
        cell(results, server, client, Mode::Close, 8, None)
            .stats()
            .cloned()
    };
    let ratio = |a: Option<Stats>, b: Option<Stats>, f: fn(&Stats) -> f64| match (a, b) {
        (Some(a), Some(b)) => times(f(&a) / f(&b)),
        _ => "—".into(),
    };
    let rate = |s: &Stats| s.rate;
    let cpu = |s: &Stats| s.server_cpu;
    let _ = writeln!(
        out,
        "\n**The model**: each against linear in its own language, with the load generator.\n"
    );
    let mut table = Table::new([
        left("Model"),
        right("Rust: rate"),
        right("Rust: CPU per request"),
        right("Python: rate"),
        right("Python: CPU per request"),
    ]);
    for model in models.iter().filter(|m| **m != "linear") {
        let py = format!("py-{model}");
        table.row([
            model.to_string(),
            ratio(stat(model, "loadgen"), stat("linear", "loadgen"), rate),
            ratio(stat(model, "loadgen"), stat("linear", "loadgen"), cpu),
            ratio(stat(&py, "loadgen"), stat("py-linear", "loadgen"), rate),
            ratio(stat(&py, "loadgen"), stat("py-linear", "loadgen"), cpu),
        ]);
    }
    out += &table.finish();
    let _ = writeln!(
        out,
        "\n**The language and the client**: Python against Rust for the same model, \
         and the load generator against `ab` for the same server.\n"
    );
    let mut table = Table::new([
        left("Model"),
        right("Python ÷ Rust: rate"),
        right("Python ÷ Rust: CPU per request"),
        right("loadgen ÷ ab, Rust: rate"),
        right("loadgen ÷ ab, Python: rate"),
    ]);
    for model in &models {
        let py = format!("py-{model}");
        table.row([
            model.to_string(),
            ratio(stat(&py, "loadgen"), stat(model, "loadgen"), rate),
            ratio(stat(&py, "loadgen"), stat(model, "loadgen"), cpu),
            ratio(stat(model, "loadgen"), stat(model, "ab"), rate),
            ratio(stat(&py, "loadgen"), stat(&py, "ab"), rate),
        ]);
    }
    out += &table.finish();
    if let Some(py) = results.servers.iter().find(|s| s.kind == Kind::Python) {
        let _ = writeln!(out, "\nPython: {}.", short(&py.detail));
    }
    out += &threads_line(results, results.samples.iter());
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Gil);
    out
}
