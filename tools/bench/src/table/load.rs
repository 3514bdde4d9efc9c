//! Latency against offered load: each model in open loop from a tenth of
//! its closed-loop maximum to past it, and where its p99 leaves the bound.

use std::fmt::Write;

use super::idle::median_of;
use super::{footer, mode_words, name, threads_line};
use crate::format::{count, latency};
use crate::markdown::{Table, left, right};
use crate::results::{JsonLatency, Mode, Results, Sample, Scenario};

/// The probe runs (closed loop) of one server in one mode.
fn probes<'a>(results: &'a Results, server: &str, mode: Mode) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.server == server && s.mode == mode && s.share.is_none() && s.usable())
        .collect()
}

/// The open-loop runs of one server in one mode at one share.
pub fn runs<'a>(results: &'a Results, server: &str, mode: Mode, share: f64) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.server == server && s.mode == mode && s.share == Some(share) && s.usable())
        .collect()
}

fn corrected(s: &Sample, f: fn(&JsonLatency) -> f64) -> Option<f64> {
    s.open_loop.and_then(|o| o.corrected).map(|c| f(&c))
}

/// The median corrected p99 of one server in one mode at one share.
pub fn p99(results: &Results, server: &str, mode: Mode, share: f64) -> Option<f64> {
    median_of(&runs(results, server, mode, share), |s| {
        corrected(s, |c| c.p99)
    })
}

fn asked(results: &Results, server: &str, mode: Mode, share: f64) -> Option<f64> {
    median_of(&runs(results, server, mode, share), |s| {
        s.open_loop.map(|o| o.rate_asked)
    })
}

/// The servers measured in `mode`.
fn servers(results: &Results, mode: Mode) -> Vec<&str> {
    results
        .measured()
        .into_iter()
        .filter(|s| mode == Mode::Close || results.server(s).is_some_and(|e| e.keep_alive))
        .collect()
}

/// Requests that failed at one share (median over the rounds): a request
/// that timed out waiting, as on a connection no worker ever took, is a
/// failure, however few they are beside the rest.
fn failed(results: &Results, server: &str, mode: Mode, share: f64) -> Option<f64> {
    median_of(&runs(results, server, mode, share), |s| {
        Some(s.failed as f64)
    })
}

/// Whether one share was served well: p99 under the bound, none failed.
fn served(results: &Results, server: &str, mode: Mode, share: f64, bound: f64) -> bool {
    p99(results, server, mode, share).is_some_and(|p| p <= bound)
        && failed(results, server, mode, share) == Some(0.0)
}

/// The highest share, and its rate asked, up to which the median
/// corrected p99 stayed under the bound and no request failed: at that
/// share and every lower one.
pub fn knee(results: &Results, server: &str, mode: Mode, bound: f64) -> Option<(f64, f64)> {
    results
        .params
        .shares
        .iter()
        .take_while(|&&share| served(results, server, mode, share, bound))
        .filter_map(|&share| asked(results, server, mode, share).map(|r| (share, r)))
        .last()
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

pub fn load(results: &Results) -> String {
    let p = &results.params;
    let bound = p.p99_bound.unwrap_or(0.010);
    let mut out = String::new();
    for &mode in &p.modes {
        let list = servers(results, mode);
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n**{}** (latency from when each request was due; medians over the rounds):\n",
            capital(mode_words(mode))
        );
        let mut table = Table::new([
            left("Server"),
            right("Asked/s"),
            right("Sent/s"),
            right("p50"),
            right("p99"),
            right("p99.9"),
        ]);
        for s in list {
            for &share in &p.shares {
                let r = runs(results, s, mode, share);
                let who = format!("{} {}", name(results, s), percent(share));
                if r.is_empty() {
                    table.row_without_figures(&[&who, "no figures"]);
                    continue;
                }
                let lat = |f: fn(&JsonLatency) -> f64| latency(median_of(&r, |x| corrected(x, f)));
                table.row([
                    who,
                    count(asked(results, s, mode, share).unwrap_or(f64::NAN)),
                    count(
                        median_of(&r, |x| x.open_loop.map(|o| o.rate_achieved)).unwrap_or(f64::NAN),
                    ),
                    lat(|c| c.p50),
                    lat(|c| c.p99),
                    lat(|c| c.p999),
                ]);
            }
        }
        out += &table.finish();
    }
    let _ = writeln!(
        out,
        "\nEach server is first probed in closed loop ({} connections for {} s, \
         `loadgen -d {} -c {}`); then the load generator sends in open loop at each share \
         of that rate (the percentage after the name) for {} s over at most {} connections \
         (`loadgen --rate R -d {} -c {}`), each request allowed {} s. *Asked*: the rate \
         asked; *sent*: the rate the load generator managed to send.",
        p.concurrency.first().copied().unwrap_or(0),
        p.closed_loop_seconds,
        p.closed_loop_seconds,
        p.concurrency.first().copied().unwrap_or(0),
        p.open_loop_seconds,
        p.concurrency.first().copied().unwrap_or(0),
        p.open_loop_seconds,
        p.concurrency.first().copied().unwrap_or(0),
        p.timeout,
    );
    let _ = writeln!(
        out,
        "\n**The knee**: the highest rate asked up to which p99 stayed under {} (at that \
         rate and every lower one).\n",
        latency(Some(bound))
    );
    out += &knees(results, bound);
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\n**The reading.**\n");
    out += &verdict(results, bound);
    out += &super::idle::counters(results);
    footer(&mut out, results, Scenario::Load);
    out
}

fn capital(words: &str) -> String {
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn knees(results: &Results, bound: f64) -> String {
    let mut table = Table::new([
        left("Server"),
        left("Mode"),
        right("Probe/s"),
        right("Knee/s"),
        right("Share"),
    ]);
    for &mode in &results.params.modes {
        for s in servers(results, mode) {
            let probe = median_of(&probes(results, s, mode), |x| Some(x.requests_per_sec));
            let (knee_rate, share) = match knee(results, s, mode, bound) {
                Some((share, rate)) => (count(rate), percent(share)),
                None => ("—".into(), "none".into()),
            };
            table.row([
                name(results, s),
                mode.name().into(),
                count(probe.unwrap_or(f64::NAN)),
                knee_rate,
                share,
            ]);
        }
    }
    table.finish()
}

/// The generated reading: the hockey stick (p99 at the lowest share and
/// past the maximum) and the knees, per server and mode.
pub fn verdict(results: &Results, bound: f64) -> String {
    let shares = &results.params.shares;
    let (Some(&low), Some(&high)) = (shares.first(), shares.last()) else {
        return "No rates were run.\n".into();
    };
    let mut out = String::new();
    let mut best: Option<(String, f64)> = None;
    let (mut sticks, mut total) = (0, 0);
    for &mode in &results.params.modes {
        for s in servers(results, mode) {
            let (Some(a), Some(b)) = (p99(results, s, mode, low), p99(results, s, mode, high))
            else {
                continue;
            };
            total += 1;
            if b > 10.0 * a {
                sticks += 1;
            }
            let knee = knee(results, s, mode, bound);
            let knee_words = match knee {
                Some((share, rate)) => format!(
                    "under {} with none failed up to {} of its maximum ({} requests/s)",
                    latency(Some(bound)),
                    percent(share),
                    count(rate)
                ),
                None => match failed(results, s, mode, low).filter(|&f| f > 0.0) {
                    Some(f) => format!(
                        "{} requests failed even at {} (a request unanswered after {} \
                         counts as failed)",
                        count(f),
                        percent(low),
                        latency(Some(results.params.timeout))
                    ),
                    None => format!("over {} at every rate", latency(Some(bound))),
                },
            };
            let _ = writeln!(
                out,
                "- {}, {}: p99 {} at {} of its maximum, {} at {}; {knee_words}.",
                name(results, s),
                mode.name(),
                latency(Some(a)),
                percent(low),
                latency(Some(b)),
                percent(high),
            );
            if let Some((_, rate)) = knee {
                if best.as_ref().is_none_or(|(_, r)| rate > *r) {
                    best = Some((format!("{} ({})", name(results, s), mode.name()), rate));
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\nThe hockey stick: for {sticks} of {total} servers and modes, p99 past the \
         maximum ({}) was more than ten times p99 at {}.{}",
        percent(high),
        percent(low),
        match best {
            Some((who, rate)) => format!(
                " The highest knee: {who}, {} requests/s with p99 under {} and none failed.",
                count(rate),
                latency(Some(bound))
            ),
            None => String::new(),
        }
    );
    out
}
