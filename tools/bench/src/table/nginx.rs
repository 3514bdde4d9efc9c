//! The book's goals against nginx with one worker, judged with `wrk`.

use std::fmt::Write;

use super::{RATE, footer, kernel, mode_words, name, threads_line};
use crate::format::{count, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::stats::{absent, cell};

/// The goals for `epoll` against nginx with one worker, judged with wrk:
/// per mode, at least this rate at most this CPU per request, as ratios.
const GOALS: [(Mode, f64, f64); 2] = [(Mode::Close, 1.10, 0.70), (Mode::KeepAlive, 1.15, 0.75)];

/// The reference every ratio is against.
const REFERENCE: &str = "nginx-1";

pub fn nginx(results: &Results) -> String {
    let mut table = Table::new([
        left("Mode"),
        left("Server, client"),
        right(RATE),
        right("Server CPU per request"),
        right("Rate vs nginx"),
        right("CPU vs nginx"),
        right("Failed"),
    ]);
    for &mode in &results.params.modes {
        for s in &results.servers {
            if mode == Mode::KeepAlive && !s.keep_alive {
                continue;
            }
            let who = name(results, &s.name);
            if let Some(why) = absent(results, &s.name) {
                table.row_without_figures(&[mode.name(), &who, why]);
                continue;
            }
            for client in ["wrk", "loadgen"] {
                let c = cell(results, &s.name, client, mode, 64, None);
                let r = cell(results, REFERENCE, client, mode, 64, None);
                let who = format!("{who}, `{client}`");
                match c.stats() {
                    None => {
                        table.row_without_figures(&[mode.name(), &who, &c.absent()]);
                    }
                    Some(st) => {
                        let (rate, cpu) = r.stats().map_or((f64::NAN, f64::NAN), |n| {
                            (st.rate / n.rate, st.server_cpu / n.server_cpu)
                        });
                        table.row([
                            mode.name().into(),
                            who,
                            st.rate_and_range(),
                            micros(st.server_cpu),
                            times(rate),
                            times(cpu),
                            st.failed(),
                        ]);
                    }
                }
            }
        }
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\n64 connections at once on 127.0.0.1: `wrk -t2 -c64` for {} s a run (with \
         `-H 'Connection: close'` for a new connection per request), and the load \
         generator with {} requests a run (accepting nginx's own headers with \
         `--any`). Ratios are against nginx with one worker, same client, same mode.",
        results.params.wrk_seconds,
        count(results.params.requests as f64),
    );
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\n**The goals for `epoll`**, judged with `wrk`:\n");
    for (mode, rate_goal, cpu_goal) in GOALS {
        let _ = writeln!(
            out,
            "- {}: {}",
            mode_words(mode),
            goal(results, "epoll", mode, rate_goal, cpu_goal)
        );
    }
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Nginx);
    out
}

/// Whether `server` meets one goal against the reference.
fn goal(results: &Results, server: &str, mode: Mode, rate: f64, cpu: f64) -> String {
    let want = format!(
        "at least {} nginx's rate at most {} its CPU per request",
        times(rate),
        times(cpu)
    );
    let c = cell(results, server, "wrk", mode, 64, None);
    let r = cell(results, REFERENCE, "wrk", mode, 64, None);
    match (c.stats(), r.stats()) {
        (Some(s), Some(n)) => {
            let (got_rate, got_cpu) = (s.rate / n.rate, s.server_cpu / n.server_cpu);
            let met = got_rate >= rate && got_cpu <= cpu;
            format!(
                "{want}: {} ({} the rate at {} the CPU per request)",
                if met { "**met**" } else { "**not met**" },
                times(got_rate),
                times(got_cpu)
            )
        }
        (None, _) => format!("{want}: not measured (`{server}`: {})", c.absent()),
        (_, None) => format!("{want}: not measured (nginx: {})", r.absent()),
    }
}
