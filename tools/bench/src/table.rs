//! Markdown tables from a results file. Every figure the chapters show is
//! written here, from measured samples: medians over the rounds, with the
//! range beside them. Nothing here measures; everything here can be drawn
//! again from the JSON alone.

use std::fmt::Write;

use crate::results::{Kind, Mode, Results, Sample, SlowCase, SlowKind, Status};
use crate::servers;

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// 12345.6 -> "12,346"
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    if value < -0.5 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds of CPU per request, in microseconds.
pub fn micros(seconds: f64) -> String {
    if !seconds.is_finite() {
        "—".into()
    } else if seconds < 10e-6 {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

/// A latency, in the unit that reads best.
pub fn latency(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() && s >= 1.0 => format!("{s:.2} s"),
        Some(s) if s.is_finite() && s >= 0.01 => format!("{:.0} ms", s * 1e3),
        Some(s) if s.is_finite() => format!("{:.2} ms", s * 1e3),
        _ => "—".into(),
    }
}

/// A latency as `client` reports it: `ab` in whole milliseconds.
fn latency_of(client: &str, seconds: Option<f64>) -> String {
    match (client, seconds) {
        ("ab", Some(s)) if s.is_finite() => format!("{:.0} ms", s * 1e3),
        _ => latency(seconds),
    }
}

/// 1.234 -> "1.23×"
fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}×")
    } else {
        "—".into()
    }
}

/// What the rounds of one case add up to.
#[derive(Debug, Clone)]
pub struct Stats {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// Failed requests, over all runs.
    pub failed: u64,
    /// Runs that gave no figures (the results file says why).
    pub broken: usize,
    /// Keep-alive asked for, and the server closed (nearly) every
    /// connection after its response.
    pub closed: bool,
    /// Slow clients the server dropped, over all runs, and how many there were.
    pub dropped: usize,
    pub slow_connected: usize,
}

/// One cell of a table: figures, or why there are none.
pub enum Cell {
    Stats(Stats),
    /// A listing that is not in the workspace yet, or a reference that is
    /// not installed: say which.
    Absent(&'static str),
    /// Every run failed as a run.
    Broken(String),
}

impl Cell {
    pub fn stats(&self) -> Option<&Stats> {
        match self {
            Cell::Stats(s) => Some(s),
            _ => None,
        }
    }

    /// What a table shows instead of figures.
    fn absent(&self) -> String {
        match self {
            Cell::Stats(_) => String::new(),
            Cell::Absent(why) => (*why).into(),
            Cell::Broken(why) => format!("no figures: {}", short(why)),
        }
    }
}

fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace('|', "/");
    if line.chars().count() > 90 {
        line.chars().take(89).collect::<String>() + "…"
    } else {
        line
    }
}

/// Why a server has no figures at all in this run, if it has none.
fn absent(results: &Results, server: &str) -> Option<&'static str> {
    match results.server(server)?.status {
        Status::Missing => Some("not in this build yet"),
        Status::NotInstalled => Some("not installed"),
        Status::Measured => None,
    }
}

/// What one server, one client, one case measured over the rounds.
pub fn cell(
    results: &Results,
    server: &str,
    client: &str,
    mode: Mode,
    concurrency: usize,
    slow: Option<SlowCase>,
) -> Cell {
    match results.server(server).map(|s| s.status) {
        Some(Status::Missing) => return Cell::Absent("not in this build yet"),
        Some(Status::NotInstalled) => return Cell::Absent("not installed"),
        _ => {}
    }
    let all = results.group(server, client, mode, concurrency, slow);
    if all.is_empty() {
        return Cell::Absent("not run");
    }
    if all.iter().all(|s| !s.installed) {
        return Cell::Absent("not installed");
    }
    let usable: Vec<&Sample> = all.iter().copied().filter(|s| s.usable()).collect();
    let broken: Vec<&Sample> = all
        .iter()
        .copied()
        .filter(|s| s.installed && s.error.is_some())
        .collect();
    if usable.is_empty() {
        let why = broken
            .first()
            .and_then(|s| s.error.clone())
            .unwrap_or_default();
        return Cell::Broken(why);
    }
    let rates: Vec<f64> = usable.iter().map(|s| s.requests_per_sec).collect();
    let med = |f: &dyn Fn(&Sample) -> f64| median(usable.iter().map(|s| f(s)).collect());
    let opt = |f: &dyn Fn(&Sample) -> Option<f64>| {
        let v: Vec<f64> = usable.iter().filter_map(|s| f(s)).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let closed = mode == Mode::KeepAlive
        && usable.iter().all(|s| {
            s.connections
                .is_some_and(|c| c as f64 >= 0.9 * s.completed.max(1) as f64 && s.completed > 1)
        });
    let slow_reports: Vec<_> = usable.iter().filter_map(|s| s.slow_clients).collect();
    Cell::Stats(Stats {
        rate: median(rates.clone()),
        low: rates.iter().copied().fold(f64::INFINITY, f64::min),
        high: rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        server_cpu: med(&Sample::server_cpu_per_request),
        client_cpu: med(&Sample::client_cpu_per_request),
        p50: opt(&|s| s.p50),
        p99: opt(&|s| s.p99),
        max: opt(&|s| s.max),
        failed: usable.iter().map(|s| s.failed).sum(),
        broken: broken.len(),
        closed,
        dropped: slow_reports.iter().map(|r| r.dropped).sum(),
        slow_connected: slow_reports.iter().map(|r| r.connected).sum(),
    })
}

impl Stats {
    fn range(&self) -> String {
        format!("{}–{}", count(self.low), count(self.high))
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

/// The common ending: the machine, the limits, the command, the raw file,
/// and what the run noticed.
fn footer(out: &mut String, results: &Results, json: &str) {
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

/// A server's name as the tables show it: listings as code, references
/// plainly.
fn name(results: &Results, server: &str) -> String {
    match results.server(server).map(|s| s.kind) {
        Some(Kind::Listing) | None => format!("`{server}`"),
        Some(_) => servers::label(server),
    }
}

const POST_HEAD: &str = "| Server | Client | Requests/s (median) | Range | Server CPU per request | Latency p50 | p99 | max | Failed |\n\
                         | ------ | ------ | ------------------: | ----: | ---------------------: | ----------: | --: | --: | -----: |";

fn post_rows(out: &mut String, results: &Results, server: &str) {
    if let Some(why) = absent(results, server) {
        let _ = writeln!(out, "| {} | | {why} | | | | | | |", name(results, server));
        return;
    }
    for client in ["ab", "loadgen"] {
        let c = cell(results, server, client, Mode::Close, 8, None);
        let who = name(results, server);
        match c.stats() {
            None => {
                let _ = writeln!(out, "| {who} | `{client}` | {} | | | | | | |", c.absent());
            }
            Some(s) => {
                let _ = writeln!(
                    out,
                    "| {who} | `{client}` | {} | {} | {} | {} | {} | {} | {} |",
                    count(s.rate),
                    s.range(),
                    micros(s.server_cpu),
                    latency_of(client, s.p50),
                    latency_of(client, s.p99),
                    latency_of(client, s.max),
                    s.failed()
                );
            }
        }
    }
}

fn post_caption(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "\nThe post's benchmark: {} requests a run, 8 at a time, a new connection \
         for each, on 127.0.0.1, as `ab -n {} -c 8` and as the book's load \
         generator; medians over the rounds, and the range of the rates. \
         Server CPU is user plus system time of the server's whole process \
         group. `ab` reports latency in whole milliseconds.",
        count(results.params.requests as f64),
        results.params.requests,
    );
}

/// The post's benchmark, every listing.
pub fn post(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{POST_HEAD}");
    for s in &results.servers {
        post_rows(&mut out, results, &s.name);
    }
    post_caption(&mut out, results);
    footer(&mut out, results, "post.json");
    out
}

/// One listing's rows of the post's benchmark, for its chapter, below the
/// linear server's from the same run.
pub fn listing(results: &Results, server: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{POST_HEAD}");
    // The yardstick first, from the same run.
    if server != "linear" && results.server("linear").is_some() {
        post_rows(&mut out, results, "linear");
    }
    post_rows(&mut out, results, server);
    post_caption(&mut out, results);
    let _ = writeln!(
        out,
        "\nEvery model side by side, with more clients and with slow ones: [Results](results.md)."
    );
    footer(&mut out, results, "post.json");
    out
}

/// The line a chapter shows for a listing this run did not measure.
pub fn not_measured(server: &str, why: &str) -> String {
    format!(
        "*Not measured yet: {why} The figures for `{server}` come from the next \
         benchmark run: `cargo run --release -p bench -- all`.*\n"
    )
}

/// The load clients side by side, and whether the load generator meets
/// its goal.
pub fn clients(results: &Results) -> String {
    let mut out = String::new();
    let server = results
        .servers
        .first()
        .map_or("linear", |s| s.name.as_str());
    let _ = writeln!(
        out,
        "| Client | Connections | Requests/s (median) | Range | vs `ab` | Client CPU per request | Server CPU per request | Failed |\n\
         | ------ | ----------: | ------------------: | ----: | ------: | ---------------------: | ---------------------: | -----: |"
    );
    let mut verdicts = Vec::new();
    for &mode in &results.params.modes {
        for &c in &results.params.concurrency {
            let get = |client| cell(results, server, client, mode, c, None);
            let (ab, lg, lg1, wrk) = (get("ab"), get("loadgen"), get("loadgen -t 1"), get("wrk"));
            let rows = [
                ("ab", &ab),
                ("loadgen", &lg),
                ("loadgen -t 1", &lg1),
                ("wrk", &wrk),
            ];
            for (client, cell) in rows {
                let what = format!("{c}, {}", mode.name());
                match cell.stats() {
                    None => {
                        let _ =
                            writeln!(out, "| `{client}` | {what} | {} | | | | | |", cell.absent());
                    }
                    Some(s) => {
                        let vs = ab.stats().map_or(f64::NAN, |a| s.rate / a.rate);
                        let _ = writeln!(
                            out,
                            "| `{client}` | {what} | {} | {} | {} | {} | {} | {} |",
                            count(s.rate),
                            s.range(),
                            times(vs),
                            micros(s.client_cpu),
                            micros(s.server_cpu),
                            s.failed()
                        );
                    }
                }
            }
            verdicts.push(clients_verdict(mode, c, "loadgen", &lg, &ab, &wrk));
            if !matches!(lg1, Cell::Absent(_)) {
                verdicts.push(clients_verdict(mode, c, "loadgen -t 1", &lg1, &ab, &wrk));
            }
        }
    }
    let _ = writeln!(
        out,
        "\nAll against the `{server}` listing on 127.0.0.1: `ab` and the load \
         generator (with its default threads, one per core, and with one thread) \
         send {} requests a run, `wrk -t2` runs for {} s; medians over the \
         rounds, and the range of the rates. Client CPU is user plus system time of \
         the client process; server CPU, of the server's process group.",
        count(results.params.requests as f64),
        results.params.wrk_seconds,
    );
    let _ = writeln!(
        out,
        "\n**The load generator's goal**, at least `ab`'s and `wrk`'s rate at the same \
         concurrency, at a lower client CPU time per request:\n"
    );
    for v in verdicts {
        let _ = writeln!(out, "- {v}");
    }
    footer(&mut out, results, "clients.json");
    out
}

fn clients_verdict(mode: Mode, c: usize, label: &str, lg: &Cell, ab: &Cell, wrk: &Cell) -> String {
    let head = format!("{}, {c} connections, `{label}`:", mode.name());
    let Some(l) = lg.stats() else {
        return format!("{head} the load generator gave no figures");
    };
    let mut met = true;
    let mut parts = Vec::new();
    for (name, other) in [("ab", ab), ("wrk", wrk)] {
        match other.stats() {
            Some(o) => {
                let (rate, cpu) = (l.rate / o.rate, l.client_cpu / o.client_cpu);
                met &= rate >= 1.0 && cpu < 1.0;
                parts.push(format!(
                    "{} `{name}`'s rate at {} its client CPU per request",
                    times(rate),
                    times(cpu)
                ));
            }
            None => parts.push(format!("`{name}` {}", other.absent())),
        }
    }
    let verdict = if met { "**met**" } else { "**not met**" };
    format!("{head} {verdict} ({})", parts.join("; "))
}

/// How a table shows one figure of a cell.
type Show = fn(&Stats) -> String;

/// The sweep: per mode, rates, CPU per request and p99 latency at every
/// concurrency level.
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
            let _ = write!(out, "| Server |");
            for c in levels {
                let _ = write!(out, " {c} |");
            }
            let _ = write!(out, "\n| ------ |");
            for _ in levels {
                let _ = write!(out, " --: |");
            }
            let _ = writeln!(out);
            for s in &servers {
                let _ = write!(out, "| {} |", name(results, &s.name));
                if let Some(why) = absent(results, &s.name) {
                    let _ = writeln!(out, " {why} |{}", " |".repeat(levels.len() - 1));
                    continue;
                }
                for &c in levels {
                    let cell = cell(results, &s.name, "loadgen", mode, c, None);
                    let text = match cell.stats() {
                        Some(st) => {
                            let mut t = show(st);
                            if st.failed > 0 || st.broken > 0 {
                                t += " ‡";
                            }
                            if st.closed {
                                closed_any = true;
                                t += " †";
                            }
                            t
                        }
                        None => cell.absent(),
                    };
                    let _ = write!(out, " {text} |");
                }
                let _ = writeln!(out);
            }
            let _ = writeln!(out);
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
    let _ = writeln!(
        out,
        "\nThe machine's limits: {}.",
        results.limits.describe()
    );
    footer(&mut out, results, "sweep.json");
    out
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::Close => "a new connection per request",
        Mode::KeepAlive => "keep-alive",
    }
}

/// Normal clients' latency and failures beside slow clients.
pub fn slow(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Server | Slow clients | Requests/s | Latency p50 | p99 | max | Failed | Slow clients dropped (all rounds) |\n\
         | ------ | ------------ | ---------: | ----------: | --: | --: | -----: | -------------------------------: |"
    );
    for (i, case) in results.params.slow.iter().enumerate() {
        for s in &results.servers {
            let who = name(results, &s.name);
            if let Some(why) = absent(results, &s.name) {
                // Once is enough.
                if i == 0 {
                    let _ = writeln!(out, "| {who} | | {why} | | | | | |");
                }
                continue;
            }
            let c = cell(results, &s.name, "loadgen", Mode::Close, 8, Some(*case));
            match c.stats() {
                None => {
                    let _ = writeln!(out, "| {who} | {case} | {} | | | | | |", c.absent());
                }
                Some(st) => {
                    let _ = writeln!(
                        out,
                        "| {who} | {case} | {} | {} | {} | {} | {} | {} of {} |",
                        count(st.rate),
                        latency(st.p50),
                        latency(st.p99),
                        latency(st.max),
                        st.failed(),
                        st.dropped,
                        st.slow_connected
                    );
                }
            }
        }
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
    footer(&mut out, results, "slow.json");
    out
}

/// The goals against nginx with one worker, judged with wrk.
pub const GOALS: [(Mode, f64, f64); 2] = [(Mode::Close, 1.10, 0.70), (Mode::KeepAlive, 1.15, 0.75)];

pub fn nginx(results: &Results) -> String {
    let mut out = String::new();
    let reference = "nginx-1";
    let _ = writeln!(
        out,
        "| Mode | Server | Client | Requests/s (median) | Range | Server CPU per request | Rate vs nginx | CPU vs nginx | Failed |\n\
         | ---- | ------ | ------ | ------------------: | ----: | ---------------------: | ------------: | -----------: | -----: |"
    );
    for &mode in &results.params.modes {
        for s in &results.servers {
            if mode == Mode::KeepAlive && !s.keep_alive {
                continue;
            }
            if let Some(why) = absent(results, &s.name) {
                let _ = writeln!(
                    out,
                    "| {} | {} | | {why} | | | | | |",
                    mode.name(),
                    name(results, &s.name)
                );
                continue;
            }
            for client in ["wrk", "loadgen"] {
                let c = cell(results, &s.name, client, mode, 64, None);
                let r = cell(results, reference, client, mode, 64, None);
                let who = name(results, &s.name);
                match c.stats() {
                    None => {
                        let _ = writeln!(
                            out,
                            "| {} | {who} | `{client}` | {} | | | | | |",
                            mode.name(),
                            c.absent()
                        );
                    }
                    Some(st) => {
                        let (rate, cpu) = r.stats().map_or((f64::NAN, f64::NAN), |n| {
                            (st.rate / n.rate, st.server_cpu / n.server_cpu)
                        });
                        let _ = writeln!(
                            out,
                            "| {} | {who} | `{client}` | {} | {} | {} | {} | {} | {} |",
                            mode.name(),
                            count(st.rate),
                            st.range(),
                            micros(st.server_cpu),
                            times(rate),
                            times(cpu),
                            st.failed()
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n64 connections at once on 127.0.0.1: `wrk -t2 -c64` for {} s a run (with \
         `-H 'Connection: close'` for a new connection per request), and the load \
         generator with {} requests a run (accepting nginx's own headers with \
         `--any`). Ratios are against nginx with one worker, same client, same mode.",
        results.params.wrk_seconds,
        count(results.params.requests as f64),
    );
    let _ = writeln!(out, "\n**The goals for `epoll`**, judged with `wrk`:\n");
    for (mode, rate_goal, cpu_goal) in GOALS {
        let _ = writeln!(
            out,
            "- {}: {}",
            mode_words(mode),
            goal(results, "epoll", reference, mode, rate_goal, cpu_goal)
        );
    }
    footer(&mut out, results, "nginx.json");
    out
}

fn goal(
    results: &Results,
    server: &str,
    reference: &str,
    mode: Mode,
    rate: f64,
    cpu: f64,
) -> String {
    let want = format!(
        "at least {} nginx's rate at most {} its CPU per request",
        times(rate),
        times(cpu)
    );
    let c = cell(results, server, "wrk", mode, 64, None);
    let r = cell(results, reference, "wrk", mode, 64, None);
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

/// The post's models in Python and in Rust.
pub fn gil(results: &Results) -> String {
    let mut out = String::new();
    let workers = results.params.workers.unwrap_or(8);
    let _ = writeln!(
        out,
        "| Model | Language | Client | Requests/s (median) | Range | Server CPU per request | Latency p99 | Failed |\n\
         | ----- | -------- | ------ | ------------------: | ----: | ---------------------: | ----------: | -----: |"
    );
    let models: Vec<&str> = results
        .servers
        .iter()
        .filter(|s| s.kind == Kind::Listing)
        .map(|s| s.name.as_str())
        .collect();
    for model in &models {
        for (language, server) in [
            ("Rust", model.to_string()),
            ("Python", format!("py-{model}")),
        ] {
            for client in ["ab", "loadgen"] {
                let c = cell(results, &server, client, Mode::Close, 8, None);
                match c.stats() {
                    None => {
                        let _ = writeln!(
                            out,
                            "| {model} | {language} | `{client}` | {} | | | | |",
                            c.absent()
                        );
                    }
                    Some(s) => {
                        let _ = writeln!(
                            out,
                            "| {model} | {language} | `{client}` | {} | {} | {} | {} | {} |",
                            count(s.rate),
                            s.range(),
                            micros(s.server_cpu),
                            latency_of(client, s.p99),
                            s.failed()
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} requests a run, 8 at a time, a new connection for each; every model but \
         linear with {workers} workers, as in the post. The Python servers are \
         references written for this comparison (`tools/bench/python/`), not \
         listings of the book.",
        count(results.params.requests as f64)
    );

    // The same figures as ratios: the model, the language, the client.
    let stat = |server: &str, client: &str| {
        cell(results, server, client, Mode::Close, 8, None)
            .stats()
            .cloned()
    };
    let ratio = |a: Option<Stats>, b: Option<Stats>, f: fn(&Stats) -> f64| match (a, b) {
        (Some(a), Some(b)) => times(f(&a) / f(&b)),
        _ => "—".into(),
    };
    let rate = |s: &Stats| s.rate;
    let cpu = |s: &Stats| s.server_cpu;
    let _ = writeln!(
        out,
        "\n**The model**: each against linear in its own language, with the load generator.\n\n\
         | Model | Rust: rate | Rust: CPU per request | Python: rate | Python: CPU per request |\n\
         | ----- | ---------: | --------------------: | -----------: | ----------------------: |"
    );
    for model in models.iter().filter(|m| **m != "linear") {
        let py = format!("py-{model}");
        let _ = writeln!(
            out,
            "| {model} | {} | {} | {} | {} |",
            ratio(stat(model, "loadgen"), stat("linear", "loadgen"), rate),
            ratio(stat(model, "loadgen"), stat("linear", "loadgen"), cpu),
            ratio(stat(&py, "loadgen"), stat("py-linear", "loadgen"), rate),
            ratio(stat(&py, "loadgen"), stat("py-linear", "loadgen"), cpu),
        );
    }
    let _ = writeln!(
        out,
        "\n**The language and the client**: Python against Rust for the same model, \
         and the load generator against `ab` for the same server.\n\n\
         | Model | Python ÷ Rust: rate | Python ÷ Rust: CPU per request | loadgen ÷ ab, Rust: rate | loadgen ÷ ab, Python: rate |\n\
         | ----- | ------------------: | -----------------------------: | -----------------------: | -------------------------: |"
    );
    for model in &models {
        let py = format!("py-{model}");
        let _ = writeln!(
            out,
            "| {model} | {} | {} | {} | {} |",
            ratio(stat(&py, "loadgen"), stat(model, "loadgen"), rate),
            ratio(stat(&py, "loadgen"), stat(model, "loadgen"), cpu),
            ratio(stat(model, "loadgen"), stat(model, "ab"), rate),
            ratio(stat(&py, "loadgen"), stat(&py, "ab"), rate),
        );
    }
    if let Some(py) = results.servers.iter().find(|s| s.kind == Kind::Python) {
        let _ = writeln!(out, "\nPython: {}.", short(&py.detail));
    }
    footer(&mut out, results, "gil.json");
    out
}

/// Every listing on one line, from three scenarios' results: the post's
/// benchmark (a new connection per request), keep-alive with 64 clients
/// (from the sweep), and the normal clients' latency beside silent ones
/// (from the slow scenario). For the page that lays all the models side
/// by side; each figure is the same median as in its scenario's table.
pub fn models(post: &Results, sweep: &Results, slow: &Results) -> String {
    const KEEP_ALIVE_CLIENTS: usize = 64;
    let silent = slow
        .params
        .slow
        .iter()
        .find(|c| c.kind == SlowKind::Silent)
        .copied();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Listing | New connection each: requests/s | CPU per request | \
         Keep-alive, {KEEP_ALIVE_CLIENTS} clients: requests/s | CPU per request | longest wait | \
         Beside silent clients: p99 |\n\
         | ------- | ------------------------------: | --------------: | \
         ----------------------------------: | --------------: | -----------: | \
         -------------------------: |"
    );
    // Failed requests, if any, after a figure.
    let failed = |s: &Stats| {
        if s.failed > 0 || s.broken > 0 {
            format!(" ({} failed)", s.failed())
        } else {
            String::new()
        }
    };
    for spec in servers::LISTINGS.iter() {
        let server = spec.name;
        if post.server(server).is_none() {
            continue;
        }
        let [close_rate, close_cpu] = match cell(post, server, "loadgen", Mode::Close, 8, None) {
            Cell::Stats(s) => [count(s.rate) + &failed(&s), micros(s.server_cpu)],
            other => [other.absent(), String::new()],
        };
        let keep_alive = cell(
            sweep,
            server,
            "loadgen",
            Mode::KeepAlive,
            KEEP_ALIVE_CLIENTS,
            None,
        );
        let [ka_rate, ka_cpu, ka_max] = match keep_alive {
            _ if !spec.keep_alive => [
                "closes every connection".into(),
                String::new(),
                String::new(),
            ],
            Cell::Stats(s) => [
                count(s.rate) + &failed(&s),
                micros(s.server_cpu),
                latency(s.max),
            ],
            other => [other.absent(), String::new(), String::new()],
        };
        let beside = silent.map(|case| cell(slow, server, "loadgen", Mode::Close, 8, Some(case)));
        let p99 = match beside {
            Some(Cell::Stats(s)) => latency(s.p99) + &failed(&s),
            Some(other) => other.absent(),
            None => "not run".into(),
        };
        let _ = writeln!(
            out,
            "| `{server}` | {close_rate} | {close_cpu} | {ka_rate} | {ka_cpu} | {ka_max} | {p99} |"
        );
    }
    let silent = silent.map_or("silent clients".into(), |c| c.to_string());
    let _ = writeln!(
        out,
        "\nAll figures are the book's load generator's, medians over the rounds. \
         *New connection each*: the post's benchmark, 8 clients at a time, from \
         [post.json](generated/post.json). *Keep-alive*: the sweep's \
         {KEEP_ALIVE_CLIENTS} clients reusing their connections, from \
         [sweep.json](generated/sweep.json), with the longest any request \
         waited. *Beside silent clients*: {silent} hold connections open while \
         8 normal clients run, from [slow.json](generated/slow.json). The \
         tables of [Results](results.md) have the ranges and the rest."
    );
    footer(&mut out, post, "post.json");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(21980.7), "21,981");
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(count(f64::NAN), "—");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn units() {
        assert_eq!(micros(15e-6), "15 µs");
        assert_eq!(micros(2.5e-6), "2.5 µs");
        assert_eq!(latency(Some(0.00025)), "0.25 ms");
        assert_eq!(latency(Some(0.25)), "250 ms");
        assert_eq!(latency(Some(5.031)), "5.03 s");
        assert_eq!(latency(None), "—");
    }
}
