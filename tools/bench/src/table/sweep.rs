//! The sweep: per mode, rates, CPU per request and p99 latency at every
//! concurrency level.

use std::fmt::Write;

use super::idle::median_of;
use super::{footer, kernel, mode_words, name, threads_line};
use crate::format::{count, latency, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Fairness, Mode, Results, Sample, Scenario};
use crate::stats::median;
use crate::stats::{Stats, absent, cell};

/// How a table shows one figure of a cell.
type Show = fn(&Stats) -> String;

pub fn sweep(results: &Results) -> String {
    let mut out = String::new();
    let levels = &results.params.concurrency;
    let figures: [(&str, Show); 3] = [
        ("Requests per second (median)", |s| count(s.rate)),
        ("Server CPU per request", |s| micros(s.server_cpu)),
        ("Latency p99", |s| latency(s.p99)),
    ];
    let mut closed_any = false;
    for mode in Mode::BOTH {
        let servers: Vec<_> = results
            .servers
            .iter()
            .filter(|s| mode == Mode::Close || s.keep_alive)
            .collect();
        for (title, show) in &figures {
            let _ = writeln!(out, "**{title}, {}:**\n", mode_words(mode));
            // The levels' delimiters all as short as Markdown takes.
            let columns = levels.iter().map(|c| right(c.to_string()).rule_width(3));
            let mut table = Table::new(std::iter::once(left("Server")).chain(columns));
            for s in &servers {
                let who = name(results, &s.name);
                if let Some(why) = absent(results, &s.name) {
                    table.row_without_figures(&[&who, why]);
                    continue;
                }
                let figures = levels.iter().map(|&c| {
                    let cell = cell(results, &s.name, "loadgen", mode, c, None);
                    let Some(st) = cell.stats() else {
                        return cell.absent();
                    };
                    let mut text = show(st);
                    if st.failed > 0 || st.broken > 0 {
                        text += " ‡";
                    }
                    if st.closed {
                        closed_any = true;
                        text += " †";
                    }
                    text
                });
                table.row(std::iter::once(who).chain(figures));
            }
            out += &table.finish();
            out += "\n";
        }
    }
    let _ = writeln!(
        out,
        "The book's load generator at each number of connections at once; {} \
         requests a run with a new connection for each, {} with keep-alive. \
         Listings that close every connection are not run with keep-alive. \
         ‡: some requests failed (see the results file).{}",
        count(results.params.requests as f64),
        count(
            results
                .params
                .keep_alive_requests
                .unwrap_or(results.params.requests) as f64
        ),
        if closed_any {
            " †: asked for keep-alive, the server closed the connection after every response."
        } else {
            ""
        }
    );
    out += &fall(results);
    out += &fairness(results);
    out += &threads_line(results, results.samples.iter());
    out += &calibration(results);
    let _ = writeln!(
        out,
        "\nThe machine's limits: {}.",
        results.limits.describe()
    );
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Sweep);
    out
}

/// The keep-alive clients at which `fairness` shows how evenly the
/// connections were served: the most that every keep-alive listing serves
/// without a descriptor limit in the way, and the models page's column.
const FAIRNESS_CLIENTS: usize = 64;

/// How many requests each keep-alive connection completed, at
/// `FAIRNESS_CLIENTS`: the least, the median and the most, each the median
/// over the rounds. A server that serves one connection until it is done,
/// and lets the others wait, shows a wide spread; one that takes turns, a
/// narrow one.
fn fairness(results: &Results) -> String {
    if !results.params.concurrency.contains(&FAIRNESS_CLIENTS) {
        return String::new();
    }
    let mut table = Table::new([
        left("Server"),
        right("Fewest"),
        right("Median"),
        right("Most"),
        right("Longest wait"),
    ]);
    let mut any = false;
    for s in results.servers.iter().filter(|s| s.keep_alive) {
        let runs: Vec<&Sample> = results
            .samples
            .iter()
            .filter(|r| {
                r.server == s.name
                    && r.mode == Mode::KeepAlive
                    && r.concurrency == FAIRNESS_CLIENTS
                    && r.client.starts_with("loadgen")
                    && r.usable()
                    && r.fairness.is_some()
            })
            .collect();
        let part = |f: fn(&Fairness) -> u64| {
            median_of(&runs, |r| r.fairness.as_ref().map(|x| f(x) as f64))
        };
        let (Some(min), Some(median), Some(max)) =
            (part(|f| f.min), part(|f| f.median), part(|f| f.max))
        else {
            continue;
        };
        any = true;
        table.row([
            name(results, &s.name),
            count(min),
            count(median),
            count(max),
            latency(median_of(&runs, |r| r.max)),
        ]);
    }
    if !any {
        return String::new();
    }
    format!(
        "\n**How evenly the connections were served**, keep-alive, {FAIRNESS_CLIENTS} \
         clients: the requests each connection completed in a run (the fewest, the \
         median and the most, each the median over the rounds), and the longest any \
         request waited.\n\n{}",
        table.finish()
    )
}

/// Which servers' rates fell at the most clients, with a new connection per
/// request, and what fell with them: whether their CPU per request rose
/// (the machine full) or the kernel's listen overflows (the accept queue
/// full). Nothing for a results file without the kernel's counters.
fn fall(results: &Results) -> String {
    let (Some(&top), true) = (
        results.params.concurrency.last(),
        results.params.concurrency.len() > 1,
    ) else {
        return String::new();
    };
    // Per server: its best level and rate, its rate and CPU at the top,
    // and the listen overflows of its runs past its best level.
    let mut fell = Vec::new();
    let mut held = Vec::new();
    for server in results.measured() {
        let stats: Vec<(usize, Stats)> = results
            .params
            .concurrency
            .iter()
            .filter_map(|&c| {
                let cell = cell(results, server, "loadgen", Mode::Close, c, None);
                cell.stats().map(|s| (c, s.clone()))
            })
            .collect();
        let (Some(best), Some((c, last))) = (
            stats.iter().max_by(|a, b| a.1.rate.total_cmp(&b.1.rate)),
            stats.last(),
        ) else {
            continue;
        };
        if *c != top {
            continue;
        }
        let overflows: Option<u64> = results
            .samples
            .iter()
            .filter(|s| {
                s.server == server
                    && s.client == "loadgen"
                    && s.mode == Mode::Close
                    && s.concurrency > best.0
                    && s.usable()
            })
            .map(|s| s.kernel.map(|k| k.listen_overflows))
            .sum();
        let entry = (
            name(results, server),
            last.server_cpu / best.1.server_cpu,
            overflows,
        );
        if last.rate < FELL * best.1.rate {
            fell.push(entry);
        } else {
            held.push(entry);
        }
    }
    if fell.is_empty() || fell.iter().chain(&held).any(|(_, _, o)| o.is_none()) {
        return String::new();
    }
    let names = |list: &[(String, f64, Option<u64>)]| {
        list.iter()
            .map(|(n, ..)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let overflows = |list: &[(String, f64, Option<u64>)]| {
        count(list.iter().filter_map(|(.., o)| *o).sum::<u64>() as f64)
    };
    let (low, high) = fell
        .iter()
        .map(|(_, r, _)| *r)
        .fold((f64::INFINITY, 0.0f64), |(l, h), r| (l.min(r), h.max(r)));
    let mut text = format!(
        "\n**The fall**, with a new connection per request: {} of {} servers served \
         less than {}% of their best rate at {top} clients ({}). At {top} clients \
         their server CPU per request was {} to {} what it was at their best level, \
         and their runs past that level counted {} listen overflows in all",
        fell.len(),
        fell.len() + held.len(),
        (FELL * 100.0).round(),
        names(&fell),
        times(low),
        times(high),
        overflows(&fell),
    );
    if held.is_empty() {
        text += ".";
    } else {
        let _ = write!(
            text,
            "; the servers that held their rate ({}) counted {}.",
            names(&held),
            overflows(&held)
        );
    }
    let rose: Vec<&str> = fell
        .iter()
        .filter(|(_, r, _)| *r > ROSE)
        .map(|(n, ..)| n.as_str())
        .collect();
    let overflowed = fell.iter().all(|(.., o)| o.is_some_and(|o| o > 0));
    if overflowed && rose.len() < fell.len() {
        let _ = write!(
            text,
            " Every one of them overflowed its accept queue, and {}: a rate that falls \
             while CPU per request stays level is not a machine that is full, but \
             connections waiting in a full accept queue, each for the kernel to retry its \
             handshake a second later (the counters below).",
            if rose.is_empty() {
                "none spent more than a quarter more CPU per request".to_string()
            } else {
                format!(
                    "only {} spent more than a quarter more CPU per request",
                    rose.join(", ")
                )
            }
        );
    } else {
        text += " Not every server that fell overflowed its accept queue with its CPU per \
                 request level, so the figures do not put the fall down to the backlog alone.";
    }
    text + "\n"
}

/// A server whose rate at the most clients is below this share of its
/// best has fallen.
const FELL: f64 = 0.75;

/// CPU per request at the most clients above this multiple of that at the
/// best level has risen.
const ROSE: f64 = 1.25;

/// How the load generator's threads were chosen: its rate with each number
/// of threads tried, per server and mode, the chosen one in bold.
fn calibration(results: &Results) -> String {
    let Some(p) = &results.params.calibration else {
        return String::new();
    };
    let mut out = format!(
        "\n**The load generator's threads**, chosen for each server and mode before \
         the runs above: requests per second (median of {} round(s)) with {} \
         clients at once and {} requests a run ({} with keep-alive), with each number \
         of threads; the faster, in bold, ran every level of the sweep.\n\n",
        results.rounds,
        p.concurrency,
        count(p.requests as f64),
        count(p.keep_alive_requests as f64),
    );
    let mut columns = vec![left("Server")];
    for mode in Mode::BOTH {
        for t in &p.threads {
            let unit = if *t == 1 { "thread" } else { "threads" };
            columns.push(right(format!("{}, {t} {unit}", mode.name())));
        }
    }
    let mut table = Table::new(columns);
    for s in &results.servers {
        if absent(results, &s.name).is_some() {
            continue;
        }
        let mut row = vec![name(results, &s.name)];
        for mode in Mode::BOTH {
            let chosen = results.threads_chosen(&s.name, mode);
            for &t in &p.threads {
                let rates: Vec<f64> = results
                    .calibration
                    .iter()
                    .filter(|c| {
                        c.server == s.name
                            && c.mode == mode
                            && c.client == format!("loadgen -t {t}")
                            && c.usable()
                    })
                    .map(|c| c.requests_per_sec)
                    .collect();
                let text = if rates.is_empty() {
                    String::new()
                } else {
                    count(median(rates))
                };
                row.push(if chosen == Some(t) && !text.is_empty() {
                    format!("**{text}**")
                } else {
                    text
                });
            }
        }
        table.row(row);
    }
    out += &table.finish();
    out
}
