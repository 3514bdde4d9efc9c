//! What the rounds of one case add up to: medians over the rounds, the
//! range of the rates, failures, and why a case has no figures when it has
//! none. Nothing here measures and nothing here writes text: the figures
//! come from a results file, and `format` and `table` write them.

use crate::results::{Mode, Results, Sample, SlowCase, Status};

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
#[derive(Debug)]
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
}

/// Why a server has no figures at all in this run, if it has none.
pub fn absent(results: &Results, server: &str) -> Option<&'static str> {
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
    if let Some(why) = absent(results, server) {
        return Cell::Absent(why);
    }
    cell_of(
        results,
        server,
        mode,
        results.group(server, client, mode, concurrency, slow),
    )
}

/// What one server's runs in `mode` that `keep` chooses measured over the
/// rounds: for the scenarios whose cases differ by more than the client,
/// the clients at once and the slow clients (idle connections, a target,
/// a backlog).
pub fn cell_where(
    results: &Results,
    server: &str,
    mode: Mode,
    keep: impl Fn(&Sample) -> bool,
) -> Cell {
    let all = results
        .samples
        .iter()
        .filter(|s| s.server == server && s.mode == mode && keep(s))
        .collect();
    cell_of(results, server, mode, all)
}

fn cell_of(results: &Results, server: &str, mode: Mode, all: Vec<&Sample>) -> Cell {
    if let Some(why) = absent(results, server) {
        return Cell::Absent(why);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(vec![]).is_nan());
    }

    /// The committed quick run's post results, with `linear`'s one
    /// loadgen run turned into three rounds and a fourth that failed as a
    /// run.
    fn rounds() -> Results {
        let text = include_str!("../fixtures/post.json");
        let mut results = Results::from_json(text).unwrap();
        let first = results
            .samples
            .iter()
            .find(|s| s.server == "linear" && s.client == "loadgen")
            .unwrap()
            .clone();
        results
            .samples
            .retain(|s| !(s.server == "linear" && s.client == "loadgen"));
        for (round, (rate, p99, failed)) in
            [(300.0, 0.003, 0), (100.0, 0.001, 2), (200.0, 0.002, 1)]
                .into_iter()
                .enumerate()
        {
            let mut s = first.clone();
            s.round = round;
            s.requests_per_sec = rate;
            s.p99 = Some(p99);
            s.failed = failed;
            s.completed = 1000;
            s.server_cpu = rate / 10_000.0;
            results.samples.push(s);
        }
        let mut broken = first.clone();
        broken.round = 3;
        broken.error = Some("the server did not start".into());
        results.samples.push(broken);
        results
    }

    #[test]
    fn medians_ranges_and_failures_over_the_rounds() {
        let results = rounds();
        let cell = cell(&results, "linear", "loadgen", Mode::Close, 8, None);
        let s = cell.stats().expect("figures");
        assert_eq!((s.rate, s.low, s.high), (200.0, 100.0, 300.0));
        assert_eq!(s.p99, Some(0.002));
        // CPU per request: the median of each run's own.
        assert_eq!(s.server_cpu, 200.0 / 10_000.0 / 1000.0);
        assert_eq!(s.failed, 3);
        assert_eq!(s.broken, 1);
        assert!(!s.closed);
        assert_eq!(s.slow_connected, 0);
    }

    #[test]
    fn why_there_are_no_figures() {
        let mut results = rounds();
        let no_stats = |c: Cell| match c {
            Cell::Stats(_) => panic!("figures where there are none"),
            other => format!("{other:?}"),
        };
        // No such case in the file.
        let c = cell(&results, "linear", "wrk", Mode::Close, 8, None);
        assert_eq!(no_stats(c), r#"Absent("not run")"#);
        // Every run failed as a run.
        for s in results
            .samples
            .iter_mut()
            .filter(|s| s.server == "thread-pool")
        {
            s.error = Some("connection refused\nmore".into());
        }
        let c = cell(&results, "thread-pool", "ab", Mode::Close, 8, None);
        assert_eq!(no_stats(c), r#"Broken("connection refused\nmore")"#);
        // The client is not installed.
        for s in results.samples.iter_mut().filter(|s| s.client == "ab") {
            s.installed = false;
        }
        let c = cell(&results, "linear", "ab", Mode::Close, 8, None);
        assert_eq!(no_stats(c), r#"Absent("not installed")"#);
        // The listing is not in the workspace: whatever the samples say.
        results.servers[0].status = Status::Missing;
        assert_eq!(absent(&results, "linear"), Some("not in this build yet"));
        let c = cell(&results, "linear", "loadgen", Mode::Close, 8, None);
        assert_eq!(no_stats(c), r#"Absent("not in this build yet")"#);
        assert_eq!(absent(&results, "thread-pool"), None);
        assert_eq!(absent(&results, "nowhere"), None);
    }
}
