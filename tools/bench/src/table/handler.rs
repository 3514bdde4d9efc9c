//! What a slow handler does: every listing at a CPU-bound target and at a
//! blocking one, and how many requests each served at once.

use std::fmt::Write;

use super::{footer, name, threads_line};
use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Sample, Scenario};
use crate::stats::{Cell, absent, cell_where};
use testbed::Model;

/// A measured "at once" this close to the prediction (as a ratio) counts
/// as the prediction.
const CLOSE: f64 = 0.35;

/// How long the work of a target takes, in seconds: `/cpu/N` is N µs,
/// `/sleep/N` N ms.
pub fn work(path: &str) -> Option<f64> {
    let (unit, n) = if let Some(n) = path.strip_prefix("/cpu/") {
        (1e-6, n)
    } else {
        (1e-3, path.strip_prefix("/sleep/")?)
    };
    n.parse::<f64>().ok().map(|n| n * unit)
}

pub fn cell(results: &Results, server: &str, path: &str) -> Cell {
    cell_where(results, server, Mode::Close, |s: &Sample| {
        s.path.as_deref() == Some(path)
    })
}

/// What the chapters predict for `server` at a blocking target: how many
/// requests it serves at once, and why; `None` for a listing whose chapter
/// the registry cannot speak for.
fn predicted(server: &str, cores: usize, clients: usize) -> Option<(usize, &'static str)> {
    let listing = testbed::LISTINGS.iter().find(|l| l.name == server)?;
    Some(match listing.model {
        Model::Linear => (1, "one connection at a time"),
        Model::Workers => (cores, "a blocked worker each, one per core"),
        Model::ThreadPerConnection => (clients, "a thread for every client"),
        Model::EventLoop if listing.threads == Some(1) => {
            (1, "a single loop, stalled by each handler")
        }
        Model::EventLoop if server == "tokio-tasks" => {
            (cores, "tokio's workers, one per core, each blocked")
        }
        Model::EventLoop if listing.takes_workers => (cores, "a loop per core, each stalled"),
        Model::EventLoop => return None,
    })
}

pub fn handler(results: &Results) -> String {
    let clients = results.params.concurrency.first().copied().unwrap_or(0);
    let mut out = String::new();
    for path in &results.params.paths {
        let Some(secs) = work(path) else { continue };
        let (what, at_once) = if path.starts_with("/cpu/") {
            ("computes for", "Cores busy")
        } else {
            ("blocks for", "At once")
        };
        let _ = writeln!(
            out,
            "\n**`{path}`**: the handler {what} {} before answering.\n",
            latency(Some(secs))
        );
        let mut table = Table::new([
            left("Server"),
            right("Requests/s"),
            right("Range"),
            right("p99"),
            right(at_once),
        ]);
        for s in &results.servers {
            let who = name(results, &s.name);
            if let Some(why) = absent(results, &s.name) {
                table.row_without_figures(&[&who, why]);
                continue;
            }
            match cell(results, &s.name, path) {
                Cell::Stats(st) => table.row([
                    who,
                    count(st.rate),
                    st.range(),
                    latency(st.p99),
                    format!("{:.1}", st.rate * secs),
                ]),
                other => table.row_without_figures(&[&who, &other.absent()]),
            }
        }
        out += &table.finish();
    }
    let _ = writeln!(
        out,
        "\n{clients} clients at once, closed loop, a new connection per request, for {} s \
         a run (`loadgen -d {} -c {clients} URL`, the URL's path the target). *At once*: \
         requests per second times the time each blocks, the requests in progress on \
         average; *cores busy*: the same for the computing target, the cores' worth of \
         handler work done per second. The listings that take a number of workers ran \
         with their default, one per core ({} here).",
        results.params.closed_loop_seconds,
        results.params.closed_loop_seconds,
        results.machine.cores,
    );
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\n**The reading.**\n");
    out += &verdict(results);
    out += &super::idle::counters(results);
    footer(&mut out, results, Scenario::Handler);
    out
}

/// The generated reading: for the blocking target, each listing's
/// requests at once against its chapter's prediction; for the computing
/// one, which listings used more than one core.
pub fn verdict(results: &Results) -> String {
    let clients = results.params.concurrency.first().copied().unwrap_or(0);
    let cores = results.machine.cores;
    let mut out = String::new();
    let paths = &results.params.paths;
    if let Some(path) = paths.iter().find(|p| p.starts_with("/sleep/")) {
        let secs = work(path).unwrap_or(f64::NAN);
        let (mut held, mut missed) = (0, 0);
        for s in results.measured() {
            let Some(st) = cell(results, s, path).stats().cloned() else {
                continue;
            };
            let at_once = st.rate * secs;
            let mut line = format!(
                "- {} at `{path}`: {} requests/s, about {:.1} at once",
                name(results, s),
                count(st.rate),
                at_once
            );
            match predicted(s, cores, clients) {
                Some((n, why)) => {
                    let ok = (at_once / n as f64 - 1.0).abs() <= CLOSE;
                    if ok {
                        held += 1;
                    } else {
                        missed += 1;
                    }
                    let _ = write!(
                        line,
                        "; predicted {n} ({why}): {}",
                        if ok {
                            "**as predicted**"
                        } else {
                            "**not as predicted**"
                        }
                    );
                }
                None => line += "; its chapter makes the prediction",
            }
            let _ = writeln!(out, "{line}.");
        }
        let _ = writeln!(
            out,
            "\nOf the listings with a prediction, {held} served as many requests at once as \
             predicted (within {:.0}%), {missed} did not.",
            CLOSE * 100.0
        );
    }
    if let Some(path) = paths.iter().find(|p| p.starts_with("/cpu/")) {
        let secs = work(path).unwrap_or(f64::NAN);
        let (mut many, mut one) = (Vec::new(), Vec::new());
        for s in results.measured() {
            if let Some(st) = cell(results, s, path).stats() {
                if st.rate * secs > 1.2 {
                    many.push(name(results, s));
                } else {
                    one.push(name(results, s));
                }
            }
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let _ = writeln!(
            out,
            "\nAt `{path}`, more than 1.2 cores' worth of handler work a second (of {cores}, \
             which the load generator shares): {}; at most that: {}.",
            list(&many),
            list(&one)
        );
    }
    out
}
