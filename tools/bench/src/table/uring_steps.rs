//! The io_uring chapter's steps against the floor (keep-alive) and epoll
//! (a new connection per request), and the goals for them.

use std::fmt::Write;

use super::{footer, mode_words, threads_line};
use crate::format::{count, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::scenario::{URING_EPOLL, URING_FLOOR, URING_ROWS};
use crate::stats::{cell, median};

/// The goals: with keep-alive, at most this much the floor's CPU per
/// request; with a new connection per request, at most this much epoll's.
const GOALS: [(Mode, &str, f64); 2] = [
    (Mode::KeepAlive, URING_FLOOR, 0.85),
    (Mode::Close, URING_EPOLL, 1.0),
];

const CLIENTS: usize = 64;

pub fn uring_steps(results: &Results) -> String {
    let mut out = String::new();
    for (mode, reference, _) in GOALS {
        let _ = writeln!(
            out,
            "**{}**, {CLIENTS} clients:\n",
            capital(mode_words(mode))
        );
        let mut table = Table::new([
            left("Server"),
            right("Requests/s"),
            right("CPU per request"),
            right(format!("vs {reference}")),
            right("System calls per request"),
            right("In the kernel"),
        ]);
        let base = cell(results, reference, "loadgen", mode, CLIENTS, None);
        for s in &results.servers {
            if mode == Mode::Close && s.name == URING_FLOOR {
                continue;
            }
            let label = label(&s.name);
            let c = cell(results, &s.name, "loadgen", mode, CLIENTS, None);
            let Some(st) = c.stats() else {
                table.row_without_figures(&[&label, &c.absent()]);
                continue;
            };
            let ratio = base
                .stats()
                .map_or(f64::NAN, |b| st.server_cpu / b.server_cpu);
            let (calls, kernel) = extra(results, &s.name, mode);
            table.row([
                label,
                count(st.rate),
                micros(st.server_cpu),
                times(ratio),
                calls.map_or("—".into(), |c| format!("{c:.2}")),
                kernel.map_or("—".into(), |k| format!("{:.0} %", k * 100.0)),
            ]);
        }
        out += &table.finish();
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "The load generator, {CLIENTS} connections at once on 127.0.0.1: {} requests a \
         keep-alive run, {} a run with a new connection per request. CPU per request is \
         the server's whole process (every thread, io_uring's own kernel threads \
         included) from `/proc/PID/stat`; *in the kernel* is the system-time share of it; \
         system calls are counted by `perf stat -e raw_syscalls:sys_enter` on the server \
         (— where perf cannot trace). Each `uring` row runs the listing with these \
         steps: {}.",
        count(results.params.keep_alive_requests.unwrap_or(0) as f64),
        count(results.params.requests as f64),
        URING_ROWS
            .iter()
            .map(|(row, steps)| format!("{}: `{steps}`", label(row)))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let _ = writeln!(out, "\n**The goals for `uring`**, step by step:\n");
    for (mode, reference, goal) in GOALS {
        let want = format!(
            "{}: at most {} the CPU per request of `{reference}`",
            capital(mode_words(mode)),
            times(goal)
        );
        let base = cell(results, reference, "loadgen", mode, CLIENTS, None);
        let mut verdicts = Vec::new();
        for (row, _) in URING_ROWS {
            let c = cell(results, row, "loadgen", mode, CLIENTS, None);
            verdicts.push(match (c.stats(), base.stats()) {
                (Some(s), Some(b)) if s.server_cpu > 0.0 && b.server_cpu > 0.0 => {
                    let got = s.server_cpu / b.server_cpu;
                    let met = if got <= goal {
                        "**met**"
                    } else {
                        "**not met**"
                    };
                    format!("{}: {met} ({})", label(row), times(got))
                }
                (Some(_), Some(_)) => {
                    format!("{}: too few clock ticks to tell", label(row))
                }
                _ => format!("{}: not measured", label(row)),
            });
        }
        let _ = writeln!(out, "- {want}: {}.", verdicts.join("; "));
    }
    out += &threads_line(results, results.samples.iter());
    out += &super::idle::counters(results);
    footer(&mut out, results, Scenario::UringSteps);
    out
}

/// System calls per request, and the kernel's share of the CPU: medians
/// over the rounds, where measured.
fn extra(results: &Results, server: &str, mode: Mode) -> (Option<f64>, Option<f64>) {
    let runs: Vec<_> = results
        .group(server, "loadgen", mode, CLIENTS, None)
        .into_iter()
        .filter(|s| s.usable() && s.completed > 0)
        .collect();
    let of = |values: Vec<f64>| (!values.is_empty()).then(|| median(values));
    let calls = runs
        .iter()
        .filter_map(|s| Some(s.syscalls? as f64 / s.completed as f64));
    let kernel = runs
        .iter()
        .filter(|s| s.server_cpu > 0.0)
        .filter_map(|s| Some(s.server_system_cpu? / s.server_cpu));
    (of(calls.collect()), of(kernel.collect()))
}

/// How a row is named: the `uring` rows by their steps.
fn label(server: &str) -> String {
    match server.strip_prefix("uring ") {
        Some(steps) => format!("`uring` {steps}"),
        None => format!("`{server}`"),
    }
}

fn capital(words: &str) -> String {
    let mut chars = words.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}
