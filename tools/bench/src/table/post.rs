//! The post's benchmark: every listing in one table, and each listing's
//! rows for its own chapter.

use std::fmt::Write;

use super::{RATE, footer, kernel, name, threads_line};
use crate::format::{count, latency_of, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::stats::{absent, cell};

/// The table's header: the listing's chapter has the same columns.
fn table() -> Table {
    Table::new([
        left("Server, client"),
        right(RATE),
        right("Server CPU per request"),
        right("Latency p50"),
        right("p99"),
        right("max"),
        right("Failed"),
    ])
}

/// A server's rows, one per client, or one saying why it has none.
fn rows(table: &mut Table, results: &Results, server: &str) {
    let who = name(results, server);
    if let Some(why) = absent(results, server) {
        table.row_without_figures(&[&who, why]);
        return;
    }
    for client in ["ab", "loadgen"] {
        let c = cell(results, server, client, Mode::Close, 8, None);
        let who = format!("{who}, `{client}`");
        match c.stats() {
            None => table.row_without_figures(&[&who, &c.absent()]),
            Some(s) => table.row([
                who,
                s.rate_and_range(),
                micros(s.server_cpu),
                latency_of(client, s.p50),
                latency_of(client, s.p99),
                latency_of(client, s.max),
                s.failed(),
            ]),
        }
    }
}

/// What the table measured, beneath it.
fn caption(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "\nThe post's benchmark: {} requests a run, 8 at a time, a new connection \
         for each, on 127.0.0.1, as `ab -n {} -c 8` and as the book's load \
         generator; medians over the rounds, and the range of the rounds' rates \
         in brackets. \
         Server CPU is user plus system time of the server's whole process \
         group. `ab` reports latency in whole milliseconds.",
        count(results.params.requests as f64),
        results.params.requests,
    );
}

/// The post's benchmark, every listing.
pub fn post(results: &Results) -> String {
    let mut table = table();
    for s in &results.servers {
        rows(&mut table, results, &s.name);
    }
    let mut out = table.finish();
    caption(&mut out, results);
    out += &threads_line(results, results.samples.iter());
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Post);
    out
}

/// One listing's rows of the post's benchmark, for its chapter, below the
/// linear server's from the same run.
pub fn listing(results: &Results, server: &str) -> String {
    let mut table = table();
    // The yardstick first, from the same run.
    if server != "linear" && results.server("linear").is_some() {
        rows(&mut table, results, "linear");
    }
    rows(&mut table, results, server);
    let mut out = table.finish();
    out += &beside_linear(results, server);
    caption(&mut out, results);
    let mine = |s: &&crate::results::Sample| s.server == server || s.server == "linear";
    out += &threads_line(results, results.samples.iter().filter(mine));
    out += &kernel(results, results.samples.iter().filter(mine));
    let _ = writeln!(
        out,
        "\nEvery model side by side, with more clients and with slow ones: [Results](results.md)."
    );
    footer(&mut out, results, Scenario::Post);
    out
}

/// What the listing's rows show against the linear server's, with the
/// load generator: the ratios, and whether the rounds' ranges let one be
/// called faster.
fn beside_linear(results: &Results, server: &str) -> String {
    if server == "linear" {
        return String::new();
    }
    let stats = |s: &str| {
        cell(results, s, "loadgen", Mode::Close, 8, None)
            .stats()
            .cloned()
    };
    let (Some(mine), Some(linear)) = (stats(server), stats("linear")) else {
        return String::new();
    };
    let verdict = if mine.low > linear.high {
        "faster, since its slowest round beat the linear server's fastest"
    } else if mine.high < linear.low {
        "slower, since its fastest round fell short of the linear server's slowest"
    } else {
        "neither faster nor slower, since the rounds' ranges overlap"
    };
    format!(
        "\n**Beside `linear`**, with the load generator: `{server}` reached {} its \
         rate at {} its server CPU per request: {verdict}.\n",
        times(mine.rate / linear.rate),
        times(mine.server_cpu / linear.server_cpu),
    )
}

/// The line a chapter shows for a listing this run did not measure.
pub fn not_measured(server: &str, why: &str) -> String {
    format!(
        "*Not measured yet: {why} The figures for `{server}` come from the next \
         benchmark run: `cargo run --release -p bench -- all`.*\n"
    )
}
