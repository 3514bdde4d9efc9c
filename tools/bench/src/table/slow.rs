//! Normal clients' latency and failures beside slow clients.

use std::fmt::Write;

use super::{footer, kernel, name, threads_line};
use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::stats::{absent, cell};

pub fn slow(results: &Results) -> String {
    // A table for each kind of slow client, so that each fits the column.
    let mut out = String::new();
    for (i, case) in results.params.slow.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}**Beside {case}:**\n",
            if i == 0 { "" } else { "\n" }
        );
        let mut table = Table::new([
            left("Server"),
            right("Requests/s"),
            right("Latency p50"),
            right("p99"),
            right("max"),
            right("Failed"),
            right("Slow clients dropped (all rounds)"),
        ]);
        for s in &results.servers {
            let who = name(results, &s.name);
            if let Some(why) = absent(results, &s.name) {
                // Once is enough.
                if i == 0 {
                    table.row_without_figures(&[&who, why]);
                }
                continue;
            }
            let c = cell(results, &s.name, "loadgen", Mode::Close, 8, Some(*case));
            match c.stats() {
                None => table.row_without_figures(&[&who, &c.absent()]),
                Some(st) => table.row([
                    who,
                    count(st.rate),
                    latency(st.p50),
                    latency(st.p99),
                    latency(st.max),
                    st.failed(),
                    format!("{} of {}", st.dropped, st.slow_connected),
                ]),
            }
        }
        out += &table.finish();
    }
    let _ = writeln!(
        out,
        "\nThe slow clients connect first and stay for {} s at most; meanwhile the \
         load generator sends {} requests, 8 at a time, a new connection for each, \
         and gives each request {} s. Latency and failures are the normal \
         clients'. A trickling client sends a request a byte a second and never \
         finishes it in that time. *Dropped*: closed by the server before the \
         slow client left.",
        results.params.slow_hold,
        count(results.params.requests as f64),
        results.params.timeout,
    );
    out += &threads_line(results, results.samples.iter());
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Slow);
    out
}
