//! A results file: every raw figure of one scenario's runs, and enough
//! about the run (machine, limits, parameters, the exact commands) for the
//! tables and charts to be drawn again from the file alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::machine::{Limits, Machine};

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
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Scenario; 6] = [
        Scenario::Clients,
        Scenario::Post,
        Scenario::Sweep,
        Scenario::Slow,
        Scenario::Nginx,
        Scenario::Gil,
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
            p50: None,
            p90: None,
            p99: None,
            max: None,
            pss: None,
            pss_peak: None,
            threads_peak: None,
            processes_peak: None,
            slow_clients: None,
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
}

impl Results {
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
