//! Markdown tables from a results file: a writer per scenario (one module
//! each), and what they share: how a server is named, what a cell without
//! figures says, and the footer every table ends with. Every figure is a
//! median over the rounds from `stats`, written by `format`, laid out by
//! `markdown`. Nothing here measures; everything here can be drawn again
//! from the JSON alone.

mod backlog;
mod clients;
mod cpu;
mod gil;
mod handler;
mod idle;
mod load;
mod models;
mod nginx;
mod omission;
mod post;
mod slow;
mod sweep;
mod uring_steps;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{Kernel, Kind, Mode, Results, Sample, Scenario, Status};
use crate::servers;
use crate::stats::{Cell, Stats, median};

pub use clients::clients_keep_alive;
pub use cpu::{BATCH_SERVER, cores, cpu};
pub use models::{models, questions as models_questions};
pub use omission::{
    PERCENTILES as OMISSION_PERCENTILES, ROWS as OMISSION_ROWS, medians as omission_medians,
    runs as omission_runs,
};
pub use post::{listing, not_measured};

/// What the questions' charts draw from.
pub mod questions {
    pub use super::backlog::cell as backlog_cell;
    pub use super::handler::cell as handler_cell;
    pub use super::handler::hand_off;
    pub use super::idle::{corrected_p99, median_of, runs as idle_runs};
    pub use super::load::p99 as load_p99;
}

/// A scenario's table, with what it says beneath.
pub fn scenario(scenario: Scenario, results: &Results) -> String {
    match scenario {
        Scenario::Clients => clients::clients(results),
        Scenario::Post => post::post(results),
        Scenario::Sweep => sweep::sweep(results),
        Scenario::Slow => slow::slow(results),
        Scenario::Nginx => nginx::nginx(results),
        Scenario::Gil => gil::gil(results),
        Scenario::Omission => omission::omission(results),
        Scenario::UringSteps => uring_steps::uring_steps(results),
        Scenario::Idle => idle::idle(results),
        Scenario::Handler => handler::handler(results),
        Scenario::Load => load::load(results),
        Scenario::Backlog => backlog::backlog(results),
    }
}

/// The heading of a column of [`Stats::rate_and_range`]: one column where
/// the tables had two, so that they fit the book's column.
const RATE: &str = "Requests/s, median (range)";

/// What a table shows for a cell without figures.
impl Cell {
    fn absent(&self) -> String {
        match self {
            Cell::Stats(_) => String::new(),
            Cell::Absent(why) => (*why).into(),
            Cell::Broken(why) => format!("no figures: {}", short(why)),
        }
    }
}

/// How the tables show the rounds' spread and failures.
impl Stats {
    fn range(&self) -> String {
        format!("{}–{}", count(self.low), count(self.high))
    }

    /// The median rate and, after it, the range of the rounds' rates: one
    /// cell under [`RATE`], which the column wraps before the range.
    fn rate_and_range(&self) -> String {
        format!("{} ({})", count(self.rate), self.range())
    }

    /// Failed requests, and runs that failed as runs.
    fn failed(&self) -> String {
        let mut text = count(self.failed as f64);
        if self.broken > 0 {
            let _ = write!(text, " (+{} run(s) without figures)", self.broken);
        }
        text
    }
}

/// The first line of a message, fit for a table cell.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace('|', "/");
    if line.chars().count() > 90 {
        line.chars().take(89).collect::<String>() + "…"
    } else {
        line
    }
}

/// A server's name as the tables show it: listings as code, references
/// plainly.
fn name(results: &Results, server: &str) -> String {
    match results.server(server).map(|s| s.kind) {
        Some(Kind::Listing) | None => format!("`{server}`"),
        Some(_) => servers::label(server),
    }
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::Close => "a new connection per request",
        Mode::KeepAlive => "keep-alive",
    }
}

/// The common ending: the machine, the limits, the command, the raw file,
/// and what the run noticed.
fn footer(out: &mut String, results: &Results, file: Scenario) {
    let json = format!("{file}.json");
    let _ = writeln!(
        out,
        "\nMeasured on {}, {} interleaved round(s), a fresh server for every run. \
         Reproduce with `{}`; every raw figure and the exact command of every \
         run are in [{json}](generated/{json}).",
        results.machine.describe(),
        results.rounds,
        results.command,
    );
    let missing: Vec<String> = results
        .servers
        .iter()
        .filter(|s| s.status == Status::Missing)
        .map(|s| format!("`{}`", s.name))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nListings the benchmark knows that were not in the workspace of this run: {}.",
            missing.join(", ")
        );
    }
    // Earlier runs noted missing listings here too; the line above says it.
    let notes: Vec<&String> = results
        .notes
        .iter()
        .filter(|n| !n.ends_with(": not in this workspace yet"))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes from the run:\n");
        for note in notes {
            let _ = writeln!(out, "- {}", short(note));
        }
    }
}

/// "8, close": a case's connections and mode, for a table cell.
fn load_words(sample: &Sample) -> String {
    let mut text = format!("{}, {}", sample.concurrency, sample.mode.name());
    if let Some(slow) = sample.slow {
        let _ = write!(text, ", {}", slow.short());
    }
    text
}

/// The line under a table that says how many threads each client ran
/// (from the runs of `samples`), or nothing for a results file from
/// before the runs recorded it. A client whose threads differed by server
/// and mode (the sweep's load generator, chosen by calibration) gets the
/// usual number and the exceptions; one per connection at most, always.
fn threads_line<'a>(results: &Results, samples: impl Iterator<Item = &'a Sample>) -> String {
    let parts = threads(results, samples);
    if parts.is_empty() {
        return String::new();
    }
    let chosen = if results.client_threads.is_empty() {
        ""
    } else {
        " The load generator's were chosen for each server and mode by calibration (see below)."
    };
    format!(
        "\nThreads of each client: {}; never more than one per connection.{chosen}\n",
        parts.join("; ")
    )
}

/// Each client's threads over the runs of `samples`: "`loadgen` 2, 1
/// against `select` (keep-alive)".
fn threads<'a>(results: &Results, samples: impl Iterator<Item = &'a Sample>) -> Vec<String> {
    // Client -> (server, mode) -> the most threads it ran in that case.
    type Cases = BTreeMap<(String, Mode), usize>;
    let mut by_client: Vec<(String, Cases)> = Vec::new();
    for s in samples.filter(|s| s.usable()) {
        let Some(threads) = s.client_threads else {
            continue;
        };
        let at = match by_client.iter().position(|(c, _)| *c == s.client) {
            Some(at) => at,
            None => {
                by_client.push((s.client.clone(), BTreeMap::new()));
                by_client.len() - 1
            }
        };
        let most = by_client[at]
            .1
            .entry((s.server.clone(), s.mode))
            .or_insert(threads);
        *most = (*most).max(threads);
    }
    let mut parts = Vec::new();
    for (client, cases) in &by_client {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for &t in cases.values() {
            *counts.entry(t).or_default() += 1;
        }
        let usual = counts
            .iter()
            .max_by_key(|&(t, n)| (*n, *t))
            .map_or(1, |(t, _)| *t);
        let mut text = format!("`{client}` {usual}");
        let others: BTreeMap<usize, Vec<String>> = cases.iter().filter(|(_, t)| **t != usual).fold(
            BTreeMap::new(),
            |mut m, ((server, mode), t)| {
                let both = cases.get(&(server.clone(), other(*mode))) == Some(t);
                let who = if both {
                    name(results, server)
                } else {
                    format!("{} ({})", name(results, server), mode.name())
                };
                let list: &mut Vec<String> = m.entry(*t).or_default();
                if !list.contains(&who) {
                    list.push(who);
                }
                m
            },
        );
        for (t, who) in others {
            let _ = write!(text, ", {t} against {}", who.join(", "));
        }
        parts.push(text);
    }
    parts
}

/// The other mode.
fn other(mode: Mode) -> Mode {
    match mode {
        Mode::Close => Mode::KeepAlive,
        Mode::KeepAlive => Mode::Close,
    }
}

/// What the kernel's TCP counters said of the runs of `samples`: a small
/// table of the cases where a counter of trouble moved (listen overflows
/// and drops, SYN and segment retransmissions, retransmission timeouts),
/// the sockets the runs left in TIME_WAIT, and whether the runs whose
/// longest request took a second or more saw SYNs sent again. Nothing for
/// a results file from before the runs recorded them.
fn kernel<'a>(results: &Results, samples: impl Iterator<Item = &'a Sample>) -> String {
    let samples: Vec<&Sample> = samples
        .filter(|s| s.usable() && s.kernel.is_some())
        .collect();
    if samples.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    // The cases, in the order they ran, with their runs.
    let mut cases: Vec<(String, String, String, Vec<Kernel>)> = Vec::new();
    for s in &samples {
        let key = (name(results, &s.server), s.client.clone(), load_words(s));
        let kernel = s.kernel.expect("filtered");
        match cases
            .iter_mut()
            .find(|(a, b, c, _)| (a, b, c) == (&key.0, &key.1, &key.2))
        {
            Some(case) => case.3.push(kernel),
            None => cases.push((key.0, key.1, key.2, vec![kernel])),
        }
    }
    let troubled: Vec<_> = cases
        .iter()
        .filter(|(.., runs)| runs.iter().any(Kernel::any_trouble))
        .collect();
    let waits: Vec<i64> = samples
        .iter()
        .filter_map(|s| s.kernel.map(|k| k.time_wait))
        .collect();
    let (low, high) = (
        waits.iter().copied().min().unwrap_or(0),
        waits.iter().copied().max().unwrap_or(0),
    );
    if troubled.is_empty() {
        let _ = writeln!(
            out,
            "\n**The kernel's TCP counters** moved for no listen overflow or drop, no SYN \
             or segment sent again and no retransmission timeout, in any run. {}",
            time_wait_change(low, high)
        );
        return out;
    }
    // One column says which runs, so that the table fits the book's column;
    // it names the client only where the runs had more than one.
    let clients: BTreeSet<&String> = troubled.iter().map(|(_, client, ..)| client).collect();
    let _ = writeln!(
        out,
        "\n**The kernel's TCP counters**, summed over the rounds, for the runs where one \
         of them moved (every other run: none). *Overflows*: handshakes completed into a \
         full accept queue, then *drops*: connections dropped at the listener; *SYN again*: \
         SYNs and SYN-ACKs sent again, the first a second after the first try; \
         *resent*: segments sent again; *timeouts*: retransmission timers that \
         expired; *TIME_WAIT*: how the number of sockets in that state changed over a \
         run (median).{}\n",
        match clients.iter().next() {
            Some(client) if clients.len() == 1 => format!(" The client: `{client}`."),
            _ => String::new(),
        }
    );
    let mut table = Table::new([
        left(if clients.len() > 1 {
            "Server, client, load"
        } else {
            "Server, load"
        }),
        right("Overflows, drops"),
        right("SYN again"),
        right("Resent"),
        right("Timeouts"),
        right("TIME_WAIT"),
    ]);
    for (server, client, load, runs) in troubled {
        let sum = |i: usize| count(runs.iter().map(|k| k.trouble()[i]).sum::<u64>() as f64);
        let wait = median(runs.iter().map(|k| k.time_wait as f64).collect());
        let run = if clients.len() > 1 {
            format!("{server}, `{client}`, {load}")
        } else {
            format!("{server}, {load}")
        };
        table.row([
            run,
            format!("{}, {}", sum(0), sum(1)),
            sum(2),
            sum(3),
            sum(4),
            count(wait),
        ]);
    }
    out += &table.finish();
    let _ = writeln!(
        out,
        "\n{} The counters are the whole machine's: a run counts what else used \
         the loopback meanwhile too.",
        time_wait_change(low, high)
    );
    // The longest waits of a second or more, and the SYNs sent again.
    let slow: Vec<&&Sample> = samples
        .iter()
        .filter(|s| s.max.is_some_and(|m| m >= 1.0))
        .collect();
    if !slow.is_empty() {
        let retried = slow
            .iter()
            .filter(|s| s.kernel.is_some_and(|k| k.syn_retrans > 0))
            .count();
        let _ = writeln!(
            out,
            "\nOf the {} run(s) whose longest request took a second or more (up to {}), \
             {retried} had the kernel send SYNs or SYN-ACKs again: a handshake whose \
             packet was dropped is retried after a second, and its request waits that long.",
            slow.len(),
            latency(slow.iter().filter_map(|s| s.max).reduce(f64::max)),
        );
    }
    out
}

/// "12" or "12 to 40" (a count of sockets may fall, too).
fn range(low: i64, high: i64) -> String {
    let show = |n: i64| count(n as f64);
    if low == high {
        show(low)
    } else {
        format!("{} to {}", show(low), show(high))
    }
}

/// What the runs did to the number of sockets in TIME_WAIT, which is a
/// level, not a count: it falls over a run when the sockets of earlier runs
/// expire faster than the run adds its own.
fn time_wait_change(low: i64, high: i64) -> String {
    let mut text = format!(
        "Over a run, the number of sockets in TIME_WAIT changed by {}",
        range(low, high)
    );
    if low < 0 {
        text += " (it falls where earlier runs' sockets expire faster than a run adds its own)";
    }
    text + "."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_shortened_for_a_cell() {
        assert_eq!(short("refused | reset\nsecond line"), "refused / reset");
        let long = "x".repeat(100);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), 90);
        assert!(cut.ends_with('…'));
        assert_eq!(short(""), "");
    }
}
