//! What a run found, as text for people ([`Report`]'s `Display`) and as one
//! line of JSON for programs ([`Report::to_json`], in the shape of
//! [`JsonReport`]).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::worker::Tally;
use crate::{Config, Failures};

/// Percentiles of a set of durations, each to three significant digits
/// (the maximum exactly): the smallest duration with at least that share
/// of all of them at or below it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    pub max: Duration,
}

/// What bounded the run, as asked: whichever came first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bound {
    /// [`Config::requests`]; `None` when unbounded by count.
    pub requests: Option<u64>,
    /// [`Config::duration`].
    pub duration: Option<Duration>,
}

/// How an open-loop run kept to its schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpenLoop {
    /// [`Config::rate`]: requests per second asked for.
    pub rate_asked: f64,
    /// Requests sent (connected for, or written on a reused connection).
    pub sent: u64,
    /// Requests that waited for a connection as long as the timeout and
    /// were never sent; each is also one of the `timeout` failures.
    pub unsent: u64,
    /// From the start of the run to the last request sent.
    pub last_sent: Duration,
    /// From when each request was due to the end of its response: what a
    /// client arriving on schedule waited.
    pub corrected: Latency,
    /// From when each request was due to when it was sent, for whatever
    /// reason: every connection busy, or the generator late.
    pub send_delay: Latency,
    /// The generator's own lateness: from when each request was both due
    /// and had a free connection slot to when it was sent.
    pub schedule_lag: Latency,
}

impl OpenLoop {
    /// Requests sent per second: `sent` over the time from the start to
    /// the last one sent, plus one interval of the schedule for that last
    /// one. On schedule, that is the rate asked; behind it, less.
    pub fn rate_achieved(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.sent as f64 / (self.last_sent.as_secs_f64() + 1.0 / self.rate_asked)
    }
}

/// Requests completed per connection slot: the fewest, the median, the
/// most. A slot is one of the [`Config::concurrency`] places a connection
/// occupies: with keep-alive, mostly one long connection; without it, the
/// succession of connections in that place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fairness {
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Requests attempted: sent, or (in open loop) due and never sent.
    /// [`Config::requests`] when the run was bounded by count only.
    pub requests: u64,
    /// Responses received complete and as expected.
    pub completed: u64,
    /// The rest: `completed + failures.total() == requests`.
    pub failures: Failures,
    /// TCP connections opened (established; refused ones do not count).
    pub connections: u64,
    pub elapsed: Duration,
    /// All response bytes received, failed responses included.
    pub bytes: u64,
    /// Body bytes of the completed responses.
    pub body_bytes: u64,
    /// Over the completed requests: from the connect (or, on a reused
    /// connection, from the write) to the last byte of the response.
    pub latency: Latency,
    /// User plus system CPU time of this whole process during the run
    /// (`getrusage(RUSAGE_SELF)`), so anything else it did meanwhile counts.
    pub cpu: Duration,
    pub concurrency: usize,
    /// Worker threads used.
    pub threads: usize,
    pub keep_alive: bool,
    pub bound: Bound,
    /// Open loop only.
    pub open_loop: Option<OpenLoop>,
    /// Requests completed in each connection slot: `concurrency` of them
    /// (fewer if there were fewer requests), adding up to `completed`.
    pub per_connection: Vec<u64>,
}

impl Report {
    pub(crate) fn of(
        config: &Config,
        tally: Tally,
        elapsed: Duration,
        cpu: Duration,
        threads: usize,
    ) -> Report {
        let open_loop = tally.open.map(|open| OpenLoop {
            rate_asked: config.rate.unwrap_or_default(),
            sent: open.sent,
            unsent: open.unsent,
            last_sent: open.last_sent,
            corrected: open.corrected.latency(),
            send_delay: open.send_delay.latency(),
            schedule_lag: open.schedule_lag.latency(),
        });
        Report {
            requests: tally.requests,
            completed: tally.completed,
            failures: tally.failures,
            connections: tally.connections,
            elapsed,
            bytes: tally.bytes,
            body_bytes: tally.body_bytes,
            latency: tally.latency.latency(),
            cpu,
            concurrency: config.concurrency,
            threads,
            keep_alive: config.keep_alive,
            bound: Bound {
                requests: (config.requests != u64::MAX).then_some(config.requests),
                duration: config.duration,
            },
            open_loop,
            per_connection: tally.per_slot,
        }
    }

    /// Completed requests per second.
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// Client CPU time per request attempted.
    pub fn cpu_per_request(&self) -> Duration {
        self.cpu
            .checked_div(self.requests.try_into().unwrap_or(u32::MAX))
            .unwrap_or_default()
    }

    /// How evenly the connection slots were served.
    pub fn fairness(&self) -> Fairness {
        let mut counts = self.per_connection.clone();
        counts.sort_unstable();
        let Some(&max) = counts.last() else {
            return Fairness::default();
        };
        Fairness {
            min: counts[0],
            // The nearest rank, as for the latencies: the lower of the two
            // middle ones when there is an even number.
            median: counts[(counts.len() - 1) / 2],
            max,
        }
    }

    /// All of it on one line of JSON, in the shape of [`JsonReport`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(&JsonReport::from(self)).expect("a report is plain data")
    }
}

/// Percentiles in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonLatency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl From<&Latency> for JsonLatency {
    fn from(l: &Latency) -> JsonLatency {
        JsonLatency {
            p50: l.p50.as_secs_f64(),
            p90: l.p90.as_secs_f64(),
            p99: l.p99.as_secs_f64(),
            p999: l.p999.as_secs_f64(),
            max: l.max.as_secs_f64(),
        }
    }
}

/// What bounded the run, as asked; `null` for no bound of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonBound {
    pub requests: Option<u64>,
    /// Seconds.
    pub duration: Option<f64>,
}

/// The JSON report (`loadgen --json`): [`Report`]'s fields, durations in
/// seconds, and what is worked out from them. Fields that only open loop
/// has are `null` in closed loop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    pub requests: u64,
    pub completed: u64,
    pub failures: Failures,
    pub connections: u64,
    pub elapsed: f64,
    pub bytes: u64,
    pub body_bytes: u64,
    /// From the send: the connect, or the write on a reused connection.
    pub latency: JsonLatency,
    pub cpu: f64,
    pub concurrency: usize,
    pub threads: usize,
    pub keep_alive: bool,
    /// Completed requests per second of the run.
    pub requests_per_sec: f64,
    /// Client CPU per request attempted.
    pub cpu_per_request: f64,
    pub bound: JsonBound,
    pub open_loop: bool,
    /// Requests per second asked for.
    pub rate_asked: Option<f64>,
    /// Requests sent per second (see [`OpenLoop::rate_achieved`]).
    pub rate_achieved: Option<f64>,
    /// Requests due and never sent (0 in closed loop).
    pub unsent: u64,
    /// From when each request was due.
    pub corrected: Option<JsonLatency>,
    /// From due to sent.
    pub send_delay: Option<JsonLatency>,
    /// The generator's own lateness.
    pub schedule_lag: Option<JsonLatency>,
    /// Requests completed per connection slot.
    pub per_connection: Fairness,
}

impl From<&Report> for JsonReport {
    fn from(r: &Report) -> JsonReport {
        let open = r.open_loop.as_ref();
        JsonReport {
            requests: r.requests,
            completed: r.completed,
            failures: r.failures,
            connections: r.connections,
            elapsed: r.elapsed.as_secs_f64(),
            bytes: r.bytes,
            body_bytes: r.body_bytes,
            latency: (&r.latency).into(),
            cpu: r.cpu.as_secs_f64(),
            concurrency: r.concurrency,
            threads: r.threads,
            keep_alive: r.keep_alive,
            requests_per_sec: r.requests_per_sec(),
            cpu_per_request: r.cpu_per_request().as_secs_f64(),
            bound: JsonBound {
                requests: r.bound.requests,
                duration: r.bound.duration.map(|d| d.as_secs_f64()),
            },
            open_loop: open.is_some(),
            rate_asked: open.map(|o| o.rate_asked),
            rate_achieved: open.map(OpenLoop::rate_achieved),
            unsent: open.map_or(0, |o| o.unsent),
            corrected: open.map(|o| (&o.corrected).into()),
            send_delay: open.map(|o| (&o.send_delay).into()),
            schedule_lag: open.map(|o| (&o.schedule_lag).into()),
            per_connection: r.fairness(),
        }
    }
}

/// Where the values start on every line of the text report.
const LABEL: usize = 22;

/// Percentiles in milliseconds.
struct Ms<'a>(&'a Latency);

impl fmt::Display for Ms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let l = self.0;
        write!(
            f,
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        let loop_kind = if self.open_loop.is_some() {
            ", open loop"
        } else {
            ""
        };
        writeln!(
            f,
            "{:LABEL$}{} ({} threads, {mode}{loop_kind})",
            "Concurrency:", self.concurrency, self.threads
        )?;
        if let Some(open) = &self.open_loop {
            writeln!(
                f,
                "{:LABEL$}{} per second asked, {:.1} sent",
                "Rate:",
                open.rate_asked,
                open.rate_achieved()
            )?;
        }
        write!(f, "{:LABEL$}{}", "Requests:", self.requests)?;
        if let Some(d) = self.bound.duration {
            write!(f, " (in {} s", d.as_secs_f64())?;
            if let Some(n) = self.bound.requests {
                write!(f, ", at most {n}")?;
            }
            write!(f, ")")?;
        }
        writeln!(f)?;
        writeln!(f, "{:LABEL$}{}", "Completed:", self.completed)?;
        write!(f, "{:LABEL$}{}", "Failed:", self.failures.total())?;
        if self.failures.total() > 0 {
            let kinds: Vec<String> = self
                .failures
                .by_kind()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        if let Some(open) = self.open_loop.as_ref().filter(|o| o.unsent > 0) {
            write!(f, "; {} never sent", open.unsent)?;
        }
        writeln!(f)?;
        writeln!(f, "{:LABEL$}{}", "Connections:", self.connections)?;
        writeln!(
            f,
            "{:LABEL$}{} ({} in bodies)",
            "Bytes received:", self.bytes, self.body_bytes
        )?;
        writeln!(
            f,
            "{:LABEL$}{:.3} s",
            "Time taken:",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:LABEL$}{:.0}",
            "Requests per second:",
            self.requests_per_sec()
        )?;
        writeln!(f, "{:LABEL$}{}", "Latency (ms):", Ms(&self.latency))?;
        if let Some(open) = &self.open_loop {
            writeln!(f, "{:LABEL$}{}", "  corrected (ms):", Ms(&open.corrected))?;
            writeln!(f, "{:LABEL$}{}", "Sent late by (ms):", Ms(&open.send_delay))?;
            writeln!(
                f,
                "{:LABEL$}{}",
                "Schedule lag (ms):",
                Ms(&open.schedule_lag)
            )?;
        }
        let fair = self.fairness();
        writeln!(
            f,
            "{:LABEL$}min {}  median {}  max {} requests",
            "Per connection:", fair.min, fair.median, fair.max
        )?;
        write!(
            f,
            "{:LABEL$}{:.3} s, {:.1} µs per request",
            "Client CPU:",
            self.cpu.as_secs_f64(),
            self.cpu_per_request().as_secs_f64() * 1e6
        )
    }
}
