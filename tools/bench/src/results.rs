//! A results file: every raw figure of one scenario's runs, and enough
//! about the run (machine, limits, parameters, the exact commands) for the
//! tables and charts to be drawn again from the file alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::machine::{Limits, Machine};
pub use loadgen::{Fairness, JsonLatency};

/// The benchmark's scenarios. A results file names its scenario by
/// [`name`](Scenario::name), and is called after it (`post.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// The load generator against `ab` and `wrk`, on one server.
    Clients,
    /// The post's benchmark on every listing.
    Post,
    /// Every listing and nginx from 1 to 1024 clients at once.
    Sweep,
    /// Silent and trickling clients beside a normal load.
    Slow,
    /// The book's goals against nginx's single worker.
    Nginx,
    /// The post's models in Python beside the same models in Rust.
    Gil,
    /// Coordinated omission, shown: a constant-rate run with the server
    /// stopped (SIGSTOP) for a second in the middle.
    Omission,
    /// The io_uring chapter's steps against the floor and epoll.
    #[serde(rename = "uring-steps")]
    UringSteps,
    /// What epoll buys: a fixed load beside idle keep-alive connections.
    Idle,
    /// What a slow handler does: every listing at a CPU-bound and at a
    /// blocking target.
    Handler,
    /// Latency against offered load, open loop, up to past saturation.
    Load,
    /// The listen backlog and the one-second SYN retry.
    Backlog,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Scenario; 12] = [
        Scenario::Clients,
        Scenario::Post,
        Scenario::Sweep,
        Scenario::Slow,
        Scenario::Nginx,
        Scenario::Gil,
        Scenario::Omission,
        Scenario::UringSteps,
        Scenario::Idle,
        Scenario::Handler,
        Scenario::Load,
        Scenario::Backlog,
    ];

    /// As the command line, the results file and its name have it.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Clients => "clients",
            Scenario::Post => "post",
            Scenario::Sweep => "sweep",
            Scenario::Slow => "slow",
            Scenario::Nginx => "nginx",
            Scenario::Gil => "gil",
            Scenario::Omission => "omission",
            Scenario::UringSteps => "uring-steps",
            Scenario::Idle => "idle",
            Scenario::Handler => "handler",
            Scenario::Load => "load",
            Scenario::Backlog => "backlog",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(name: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("no scenario named {name}"))
    }
}

/// Whether clients ask for a new connection per request or reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `Connection: close`: a new connection for every request.
    Close,
    /// Reuse the connection for as long as the server keeps it.
    KeepAlive,
}

impl Mode {
    pub const BOTH: [Mode; 2] = [Mode::Close, Mode::KeepAlive];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Close => "close",
            Mode::KeepAlive => "keep-alive",
        }
    }
}

/// A slow client's way of being slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowKind {
    /// Connects and sends nothing.
    Silent,
    /// Sends its request a byte a second.
    Trickle,
}

/// Slow clients that stay connected while the normal load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowCase {
    pub kind: SlowKind,
    pub count: usize,
}

impl fmt::Display for SlowCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = match self.kind {
            SlowKind::Silent => ("silent client", "silent clients"),
            SlowKind::Trickle => (
                "client sending a byte a second",
                "clients sending a byte a second",
            ),
        };
        let what = if self.count == 1 { one } else { many };
        write!(f, "{} {what}", self.count)
    }
}

impl SlowCase {
    /// "silent×2": short, for chart legends and file-friendly keys.
    pub fn short(&self) -> String {
        let kind = match self.kind {
            SlowKind::Silent => "silent",
            SlowKind::Trickle => "trickle",
        };
        format!("{kind}×{}", self.count)
    }
}

/// How one scenario was run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Params {
    /// Requests per run of `ab` and of the load generator (0: neither ran);
    /// in close mode, where the two modes differ.
    pub requests: u64,
    /// Requests per keep-alive run, where it differs from `requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_requests: Option<u64>,
    /// Workers asked of every server that takes a number (`gil`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// The concurrency levels, in clients (connections) at once.
    pub concurrency: Vec<usize>,
    pub modes: Vec<Mode>,
    /// How long each `wrk` run lasted, in seconds (0: wrk did not run).
    #[serde(default)]
    pub wrk_seconds: u64,
    /// The most one request of the load generator may take, in seconds.
    pub timeout: f64,
    #[serde(default)]
    pub slow: Vec<SlowCase>,
    /// The most time slow clients stay, in seconds.
    #[serde(default)]
    pub slow_hold: f64,
    /// How often the server's memory was read during a run, in seconds.
    pub sample_every: f64,
    /// How long each open-loop run lasted, in seconds (0: none ran).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub open_loop_seconds: f64,
    /// The open-loop runs' rate, as a share of the load generator's
    /// closed-loop rate on the same server in the same case (`clients`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_share: Option<f64>,
    /// The open-loop runs' rate, in requests per second, where it is fixed
    /// (`omission`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// When the server was stopped (SIGSTOP), in seconds from the start of
    /// the run, and for how long (`omission`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<f64>,
    /// How the load generator's threads were chosen per server (`sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationParams>,
    /// The idle connections held beside the load (`idle`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle: Vec<usize>,
    /// The request targets asked for, where not `/` (`handler`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The listen backlogs the servers were given (`backlog`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backlogs: Vec<u32>,
    /// The open-loop rates, as shares of each server's closed-loop
    /// maximum found by a probe run just before (`load`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<f64>,
    /// The p99 latency under which a rate counts as served well (`load`),
    /// in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_bound: Option<f64>,
    /// How long each closed-loop run lasted, in seconds, where runs are
    /// timed rather than counted (`handler`, `load`'s probes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub closed_loop_seconds: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The calibration runs that choose the load generator's threads for each
/// server and mode: the same load with each number of threads, in
/// interleaved rounds; the faster (median rate) is chosen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CalibrationParams {
    /// Clients at once.
    pub concurrency: usize,
    /// Requests a run with a new connection per request, and with
    /// keep-alive.
    pub requests: u64,
    pub keep_alive_requests: u64,
    /// The numbers of threads tried.
    pub threads: Vec<usize>,
}

/// The load generator's threads for one server in one mode, as chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadChoice {
    pub server: String,
    pub mode: Mode,
    pub threads: usize,
}

/// What the kernel's TCP counters said of one run: how each changed from
/// just before the client started to just after it ended. They count the
/// whole machine's loopback, not only this run's connections.
pub use testbed::netstat::Counters as Kernel;

/// What an open-loop run (a client sending at a fixed rate) found besides
/// the latency from the send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopFigures {
    /// Requests per second asked for.
    pub rate_asked: f64,
    /// Requests per second sent, where the client says (the load
    /// generator); the others' completed requests per second.
    pub rate_achieved: f64,
    /// Requests due and never sent.
    #[serde(default)]
    pub unsent: u64,
    /// Latency from when each request was due, where the client corrects
    /// for coordinated omission.
    #[serde(default)]
    pub corrected: Option<JsonLatency>,
    /// From due to sent (the load generator).
    #[serde(default)]
    pub send_delay: Option<JsonLatency>,
    /// The client's own lateness (the load generator).
    #[serde(default)]
    pub schedule_lag: Option<JsonLatency>,
}

/// What kind of server a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Listing,
    /// A reference, not one of the book's servers.
    Nginx,
    /// The post's models in Python: references, not the book's listings.
    Python,
}

/// Whether a server could be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Measured,
    /// A listing the benchmark knows but the workspace did not have yet.
    Missing,
    /// nginx or python3, not installed on the machine (or nginx left out
    /// with --no-nginx).
    NotInstalled,
}

/// One server of a scenario, measured or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerEntry {
    pub name: String,
    pub kind: Kind,
    /// Whether it keeps connections open for clients that ask.
    pub keep_alive: bool,
    pub status: Status,
    /// Its version and configuration, or why it was not measured.
    #[serde(default)]
    pub detail: String,
}

/// Slow clients during one run, as they saw the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowReport {
    /// Connected.
    pub connected: usize,
    /// Closed (or reset) by the server before they left by themselves.
    pub dropped: usize,
    /// Seconds from connecting to the first such close.
    pub first_drop: Option<f64>,
}

/// What one run measured. Times are in seconds, memory in bytes; `None`
/// where the client does not report a figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub server: String,
    /// `ab`, `loadgen` or `wrk`.
    pub client: String,
    pub mode: Mode,
    pub concurrency: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowCase>,
    /// Counted from 0.
    pub round: usize,
    /// The client's command line, as run.
    pub command: String,
    /// False when the client program is not installed: no figures.
    pub installed: bool,
    /// Why the run gave no figures, when it failed as a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requests the client made (for wrk: completed plus failed).
    pub requests: u64,
    /// Responses complete and as expected.
    pub completed: u64,
    pub failed: u64,
    /// Failures by kind, as the client names them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
    /// TCP connections the client opened, where it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    pub elapsed: f64,
    pub requests_per_sec: f64,
    /// User plus system time of the client process.
    pub client_cpu: f64,
    /// User plus system time of the server's whole process group.
    pub server_cpu: f64,
    /// The part of `server_cpu` that was system time: in the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_system_cpu: Option<f64>,
    /// System calls the server's process group made during the run, as
    /// `perf stat -e raw_syscalls:sys_enter` counted them (`uring-steps`
    /// only, where perf may trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<u64>,
    #[serde(default)]
    pub p50: Option<f64>,
    #[serde(default)]
    pub p90: Option<f64>,
    #[serde(default)]
    pub p99: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// The server group's PSS at the last reading during the load (or
    /// right after it, for a load too short to be read during).
    #[serde(default)]
    pub pss: Option<u64>,
    /// The largest of those readings.
    #[serde(default)]
    pub pss_peak: Option<u64>,
    #[serde(default)]
    pub threads_peak: Option<u64>,
    #[serde(default)]
    pub processes_peak: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_clients: Option<SlowReport>,
    /// The client's threads (or processes), as it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_threads: Option<usize>,
    /// The cores the client and the server shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<usize>,
    /// The 99.9th percentile of the latency, where the client gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999: Option<f64>,
    /// Requests completed per connection slot (the load generator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,
    /// An open-loop run's schedule and corrected latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopFigures>,
    /// The kernel's TCP counters over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Kernel>,
    /// How long the server was stopped (SIGSTOP) during the run, in
    /// seconds, as it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<f64>,
    /// Idle connections held open beside the run (`idle`); what the
    /// server did to them is in `slow_clients`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<usize>,
    /// The request target, where not `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The listen backlog the server was given (`LISTEN_BACKLOG`), where
    /// the run chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u32>,
    /// An open-loop run's rate as a share of the closed-loop rate it was
    /// taken from (`load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

impl Sample {
    pub fn new(server: &str, client: &str, mode: Mode, concurrency: usize, round: usize) -> Sample {
        Sample {
            server: server.into(),
            client: client.into(),
            mode,
            concurrency,
            slow: None,
            round,
            command: String::new(),
            installed: true,
            error: None,
            requests: 0,
            completed: 0,
            failed: 0,
            failures: BTreeMap::new(),
            connections: None,
            elapsed: 0.0,
            requests_per_sec: 0.0,
            client_cpu: 0.0,
            server_cpu: 0.0,
            server_system_cpu: None,
            syscalls: None,
            p50: None,
            p90: None,
            p99: None,
            max: None,
            pss: None,
            pss_peak: None,
            threads_peak: None,
            processes_peak: None,
            slow_clients: None,
            client_threads: None,
            cores: None,
            p999: None,
            fairness: None,
            open_loop: None,
            kernel: None,
            pause: None,
            idle: None,
            path: None,
            backlog: None,
            share: None,
        }
    }

    /// Has figures: the client ran and the run completed as a run.
    pub fn usable(&self) -> bool {
        self.installed && self.error.is_none()
    }

    pub fn server_cpu_per_request(&self) -> f64 {
        self.server_cpu / self.completed.max(1) as f64
    }

    pub fn client_cpu_per_request(&self) -> f64 {
        self.client_cpu / self.completed.max(1) as f64
    }
}

/// One scenario's results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub scenario: Scenario,
    /// The benchmark command that wrote this file.
    pub command: String,
    pub machine: Machine,
    pub limits: Limits,
    pub rounds: usize,
    pub params: Params,
    pub servers: Vec<ServerEntry>,
    /// What a reader should know: levels skipped, servers that misbehaved.
    #[serde(default)]
    pub notes: Vec<String>,
    pub samples: Vec<Sample>,
    /// The load generator's human report of one run (`clients` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_report: Option<String>,
    /// The runs that chose the load generator's threads (`sweep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<Sample>,
    /// What they chose, per server and mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_threads: Vec<ThreadChoice>,
    /// How long the scenario took, calibration and every round, in seconds
    /// (absent from files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Results {
    /// The servers that have figures, in the results' order.
    pub fn measured(&self) -> Vec<&str> {
        self.servers
            .iter()
            .filter(|s| s.status == Status::Measured)
            .map(|s| s.name.as_str())
            .collect()
    }

    pub fn server(&self, name: &str) -> Option<&ServerEntry> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The usable samples of one server with one client in one case.
    pub fn group(
        &self,
        server: &str,
        client: &str,
        mode: Mode,
        concurrency: usize,
        slow: Option<SlowCase>,
    ) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.server == server
                    && s.client == client
                    && s.mode == mode
                    && s.concurrency == concurrency
                    && s.slow == slow
            })
            .collect()
    }

    /// The load generator's threads chosen for `server` in `mode`, if
    /// they were chosen by calibration.
    pub fn threads_chosen(&self, server: &str, mode: Mode) -> Option<usize> {
        self.client_threads
            .iter()
            .find(|c| c.server == server && c.mode == mode)
            .map(|c| c.threads)
    }

    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    }

    pub fn from_json(text: &str) -> Result<Results, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_by_name() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.name().parse(), Ok(scenario));
            assert_eq!(scenario.to_string(), scenario.name());
            // The results files name it the same way.
            let json = serde_json::to_string(&scenario).unwrap();
            assert_eq!(json, format!("\"{}\"", scenario.name()));
            assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), scenario);
        }
        assert!("render".parse::<Scenario>().is_err());
        assert!("Post".parse::<Scenario>().is_err());
    }

    /// Results files from before the runs recorded the kernel's counters,
    /// the clients' threads, open loop and calibration still load, with
    /// none of those.
    #[test]
    fn files_without_the_new_fields() {
        let old = [
            include_str!("../fixtures/v1/clients.json"),
            include_str!("../fixtures/v1/sweep.json"),
        ];
        for text in old {
            let results = Results::from_json(text).unwrap();
            assert!(results.calibration.is_empty() && results.client_threads.is_empty());
            assert!(results.params.calibration.is_none());
            for s in &results.samples {
                assert!(s.kernel.is_none() && s.client_threads.is_none() && s.open_loop.is_none());
            }
        }
        // And a new one has them.
        let sweep = Results::from_json(include_str!("../fixtures/sweep.json")).unwrap();
        assert!(!sweep.calibration.is_empty());
        assert!(sweep.threads_chosen("linear", Mode::Close).is_some());
        assert!(
            sweep
                .samples
                .iter()
                .all(|s| s.kernel.is_some() && s.cores.is_some())
        );
    }

    /// The committed fixtures load, each naming the scenario of its file,
    /// and are written again with the same fields and the same name.
    #[test]
    fn fixtures_name_their_scenario() {
        let files = [
            (Scenario::Clients, include_str!("../fixtures/clients.json")),
            (Scenario::Post, include_str!("../fixtures/post.json")),
            (Scenario::Sweep, include_str!("../fixtures/sweep.json")),
            (Scenario::Slow, include_str!("../fixtures/slow.json")),
            (Scenario::Nginx, include_str!("../fixtures/nginx.json")),
            (Scenario::Gil, include_str!("../fixtures/gil.json")),
            (
                Scenario::Omission,
                include_str!("../fixtures/omission.json"),
            ),
            (Scenario::Idle, include_str!("../fixtures/idle.json")),
            (Scenario::Handler, include_str!("../fixtures/handler.json")),
            (Scenario::Load, include_str!("../fixtures/load.json")),
            (Scenario::Backlog, include_str!("../fixtures/backlog.json")),
        ];
        for (scenario, text) in files {
            let results = Results::from_json(text).unwrap();
            assert_eq!(results.scenario, scenario);
            let fields = |text: &str| {
                let value: serde_json::Value = serde_json::from_str(text).unwrap();
                let object = value.as_object().unwrap().clone();
                (
                    object.keys().cloned().collect::<Vec<_>>(),
                    object["scenario"].clone(),
                )
            };
            assert_eq!(fields(&results.to_json().unwrap()), fields(text));
            assert_eq!(fields(text).1, scenario.name());
        }
    }
}
