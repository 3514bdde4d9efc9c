//! The listen backlog and the one-second cliff: the same servers with the
//! backlog `TcpListener::bind` asks for and the one the listings ask for,
//! against more clients at once than the first holds.

use std::fmt::Write;

use super::{footer, name, threads_line};
use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Sample, Scenario};
use crate::stats::{Cell, cell_where};

/// A request this long or longer waited for a SYN sent again.
const CLIFF: f64 = 1.0;

/// The runs of one server with one backlog against `clients`.
pub fn runs<'a>(
    results: &'a Results,
    server: &str,
    backlog: u32,
    clients: usize,
) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| {
            s.server == server
                && s.backlog == Some(backlog)
                && s.concurrency == clients
                && s.usable()
        })
        .collect()
}

pub fn cell(results: &Results, server: &str, backlog: u32, clients: usize) -> Cell {
    cell_where(results, server, Mode::Close, |s| {
        s.backlog == Some(backlog) && s.concurrency == clients
    })
}

/// The cases, in the order of the tables: server, clients, backlog.
fn cases(results: &Results) -> Vec<(&str, usize, u32)> {
    let mut out = Vec::new();
    for s in results.measured() {
        for &c in &results.params.concurrency {
            for &b in &results.params.backlogs {
                out.push((s, c, b));
            }
        }
    }
    out
}

pub fn backlog(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**Rate and latency** (medians over the rounds):\n");
    let mut table = Table::new([
        left("Server"),
        right("Clients"),
        right("Backlog"),
        right("Requests/s"),
        right("p99"),
        right("Max"),
    ]);
    for (s, c, b) in cases(results) {
        let who = name(results, s);
        match cell(results, s, b, c) {
            Cell::Stats(st) => table.row([
                who,
                count(c as f64),
                count(b as f64),
                count(st.rate),
                latency(st.p99),
                latency(st.max),
            ]),
            other => table.row_without_figures(&[
                &who,
                &count(c as f64),
                &count(b as f64),
                &other.absent(),
            ]),
        }
    }
    out += &table.finish();
    let _ = writeln!(
        out,
        "\n**The kernel's counters**, summed over the rounds: *overflows*, handshakes \
         that found the accept queue full (ListenOverflows); *SYN again*, SYNs and \
         SYN-ACKs sent again (TCPSynRetrans), the first a second after the first try; \
         *≥ 1 s*, the runs whose longest request took a second or more.\n"
    );
    let mut table = Table::new([
        left("Server"),
        right("Clients"),
        right("Backlog"),
        right("Overflows"),
        right("SYN again"),
        right("≥ 1 s"),
    ]);
    for (s, c, b) in cases(results) {
        let r = runs(results, s, b, c);
        let sum = |f: fn(&Sample) -> u64| count(r.iter().map(|x| f(x)).sum::<u64>() as f64);
        table.row([
            name(results, s),
            count(c as f64),
            count(b as f64),
            sum(|x| x.kernel.map_or(0, |k| k.listen_overflows)),
            sum(|x| x.kernel.map_or(0, |k| k.syn_retrans)),
            format!("{} of {}", cliff_runs(&r), r.len()),
        ]);
    }
    out += &table.finish();
    let _ = writeln!(
        out,
        "\nEach server listens with `LISTEN_BACKLOG` set to the backlog shown (the kernel \
         caps it at somaxconn, {}); the load generator sends {} requests a run, each on a \
         new connection, with the clients shown at once \
         (`LISTEN_BACKLOG=B target/release/SERVER`, then `loadgen -n {} -c C URL`). The \
         counters are the whole machine's.",
        results
            .limits
            .somaxconn
            .map_or("unknown".into(), |s| count(s as f64)),
        count(results.params.requests as f64),
        results.params.requests,
    );
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\n**The reading.**\n");
    out += &verdict(results);
    out += &super::idle::counters(results);
    footer(&mut out, results, Scenario::Backlog);
    out
}

fn cliff_runs(runs: &[&Sample]) -> usize {
    runs.iter()
        .filter(|s| s.max.is_some_and(|m| m >= CLIFF))
        .count()
}

/// The generated reading: for each server and number of clients, whether
/// the runs with the small backlog had the one-second tail and the runs
/// with the large one did not.
pub fn verdict(results: &Results) -> String {
    let backlogs = &results.params.backlogs;
    let (Some(&small), Some(&large)) = (backlogs.first(), backlogs.last()) else {
        return "No backlogs were run.\n".into();
    };
    let mut out = String::new();
    let (mut gone, mut with_tail) = (0, 0);
    for s in results.measured() {
        for &c in &results.params.concurrency {
            let (a, b) = (runs(results, s, small, c), runs(results, s, large, c));
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let describe = |r: &[&Sample], backlog: u32| {
                let overflows: u64 = r
                    .iter()
                    .map(|x| x.kernel.map_or(0, |k| k.listen_overflows))
                    .sum();
                format!(
                    "with a backlog of {}, {} of {} runs had a request wait a second or \
                     more (longest {}; {} overflows)",
                    count(backlog as f64),
                    cliff_runs(r),
                    r.len(),
                    latency(r.iter().filter_map(|x| x.max).reduce(f64::max)),
                    count(overflows as f64)
                )
            };
            let reading = match (cliff_runs(&a) > 0, cliff_runs(&b) > 0) {
                (true, false) => {
                    with_tail += 1;
                    gone += 1;
                    "**the one-second tail goes away**"
                }
                (true, true) => {
                    with_tail += 1;
                    "**the one-second tail stays**"
                }
                (false, true) => "**the tail appears only with the larger backlog**",
                (false, false) => "**neither had a one-second tail**",
            };
            let _ = writeln!(
                out,
                "- {}, {} clients: {}; {}: {reading}.",
                name(results, s),
                count(c as f64),
                describe(&a, small),
                describe(&b, large),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nOf the {with_tail} cases with a one-second tail at a backlog of {}, the larger \
         backlog of {} took it away in {gone}.",
        count(small as f64),
        count(large as f64)
    );
    out
}
