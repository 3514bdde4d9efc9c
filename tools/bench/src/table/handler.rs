//! What a slow handler does: every listing at a CPU-bound target and at a
//! blocking one, and how many requests each served at once.

use std::fmt::Write;

use super::{footer, name, threads_line};
use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Sample, Scenario};
use crate::scenario::HANDLER_ROWS;
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

/// What the chapters predict for `server` (a listing, or a row of
/// `HANDLER_ROWS`: a listing and its second argument) at a blocking target:
/// how many requests it serves at once, and why; `None` for a listing whose
/// chapter the registry cannot speak for.
fn predicted(server: &str, cores: usize, clients: usize) -> Option<(usize, &'static str)> {
    let (name, arg) = match HANDLER_ROWS.iter().find(|(row, ..)| *row == server) {
        Some((_, listing, arg)) => (*listing, Some(*arg)),
        None => (server, None),
    };
    let listing = testbed::LISTINGS.iter().find(|l| l.name == name)?;
    // The workers a listing that takes a number of them ran with.
    let workers = arg
        .and_then(|a| a.parse().ok())
        .unwrap_or(cores)
        .min(clients);
    Some(match listing.model {
        Model::Linear => (1, "one connection at a time"),
        Model::Workers if arg.is_some() => (workers, "a blocked worker each"),
        Model::Workers => (workers, "a blocked worker each, one per core"),
        Model::ThreadPerConnection => (clients, "a thread for every client"),
        Model::EventLoop if name == "epoll-offload" => {
            (workers, "a worker of the pool each; the loop never waits")
        }
        Model::EventLoop if name == "tokio-tasks" && arg == Some("spawn-blocking") => {
            (clients, "a thread of tokio's blocking pool for each")
        }
        Model::EventLoop if name == "tokio-tasks" => {
            (cores, "tokio's workers, one per core, each blocked")
        }
        // A loop per worker (a process of `epoll-prefork` has one thread).
        Model::EventLoop if listing.takes_workers => (cores, "a loop per core, each stalled"),
        Model::EventLoop if listing.threads == Some(1) => {
            (1, "a single loop, stalled by each handler")
        }
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

/// One server's line of the reading at the blocking target `path`, and
/// whether it served as many at once as predicted (`None`: no prediction).
fn reading(
    results: &Results,
    server: &str,
    path: &str,
    secs: f64,
) -> Option<(String, Option<bool>)> {
    let clients = results.params.concurrency.first().copied().unwrap_or(0);
    let st = cell(results, server, path).stats().cloned()?;
    let at_once = st.rate * secs;
    let mut line = format!(
        "- {} at `{path}`: {} requests/s, about {:.1} at once",
        name(results, server),
        count(st.rate),
        at_once
    );
    let ok = predicted(server, results.machine.cores, clients).map(|(n, why)| {
        let ok = (at_once / n as f64 - 1.0).abs() <= CLOSE;
        let word = if ok {
            "**as predicted**"
        } else {
            "**not as predicted**"
        };
        let _ = write!(line, "; predicted {n} ({why}): {word}");
        ok
    });
    if ok.is_none() {
        line += "; its chapter makes the prediction";
    }
    line.push('.');
    Some((line, ok))
}

/// The rows of the excerpt for the chapters on handing work off: the
/// single loop, the pool, and the models that hand work to threads.
const HAND_OFF_ROWS: [&str; 8] = [
    "epoll",
    "thread-pool",
    "thread-pool 16",
    "epoll-offload",
    "epoll-offload 16",
    "executor",
    "tokio-tasks",
    "tokio-tasks spawn-blocking",
];

/// The excerpt of `handler` that `epoll-offload`, `executor` and `tokio`
/// show: the listings that hand work off, beside a loop and a pool, at
/// both targets, with their lines of the reading.
pub fn hand_off(results: &Results) -> String {
    let paths = &results.params.paths;
    let (Some(cpu), Some(sleep)) = (
        paths.iter().find(|p| p.starts_with("/cpu/")),
        paths.iter().find(|p| p.starts_with("/sleep/")),
    ) else {
        return "*Not measured yet: run `cargo run --release -p bench -- handler`.*\n".into();
    };
    let clients = results.params.concurrency.first().copied().unwrap_or(0);
    let rows: Vec<&str> = HAND_OFF_ROWS
        .iter()
        .copied()
        .filter(|r| results.server(r).is_some())
        .collect();
    let mut table = Table::new([
        left("Server"),
        right(format!("`{cpu}`: requests/s")),
        right(format!("`{sleep}`: requests/s")),
        right("p99"),
        right("At once"),
    ]);
    let secs = work(sleep).unwrap_or(f64::NAN);
    for &s in &rows {
        let who = name(results, s);
        if let Some(why) = absent(results, s) {
            table.row_without_figures(&[&who, why]);
            continue;
        }
        let (c, b) = (cell(results, s, cpu), cell(results, s, sleep));
        match (c.stats(), b.stats()) {
            (Some(c), Some(b)) => table.row([
                who,
                count(c.rate),
                count(b.rate),
                latency(b.p99),
                format!("{:.1}", b.rate * secs),
            ]),
            _ => table.row_without_figures(&[&who, &b.absent()]),
        }
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\n{clients} clients at once, a new connection per request, closed loop; the rows \
         with a number ran with that many workers, the others with their default (one per \
         core, {} here); *at once* is requests per second times the {} each blocks. \
         Medians of {} interleaved rounds from [the slow-handler experiment]\
         (question-handler.md), whose page has every listing; reproduce with \
         `cargo run --release -p bench -- handler`.\n",
        results.machine.cores,
        latency(Some(secs)),
        results.rounds,
    );
    for &s in &rows {
        if let Some((line, _)) = reading(results, s, sleep, secs) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// The generated reading: for the blocking target, each listing's
/// requests at once against its chapter's prediction; for the computing
/// one, which listings used more than one core.
pub fn verdict(results: &Results) -> String {
    let cores = results.machine.cores;
    let mut out = String::new();
    let paths = &results.params.paths;
    if let Some(path) = paths.iter().find(|p| p.starts_with("/sleep/")) {
        let secs = work(path).unwrap_or(f64::NAN);
        let (mut held, mut missed) = (0, 0);
        for s in results.measured() {
            let Some((line, ok)) = reading(results, s, path, secs) else {
                continue;
            };
            match ok {
                Some(true) => held += 1,
                Some(false) => missed += 1,
                None => {}
            }
            let _ = writeln!(out, "{line}");
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
