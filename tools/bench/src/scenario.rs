//! The scenarios: which servers, which clients, which loads, in which
//! order; and the loop that runs them in interleaved rounds.
//!
//! A scenario is planned first, as a list of cases (one server, one client,
//! one load). A round runs every case once, in order; the next round runs
//! them all again. So every server of a scenario is measured once before
//! any is measured twice, and a machine that gets busier or quieter during
//! the run spreads its noise over all of them.

mod questions;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::idle::IdleConnections;
use crate::machine::{Limits, Machine};
use crate::progress::Progress;
use crate::results::{
    CalibrationParams, Kind, Mode, Params, Results, Sample, Scenario, ServerEntry, SlowCase,
    SlowKind, Status, ThreadChoice,
};
use crate::run::{self, Client, Load};
use crate::servers::{self, Launch, Spec};
use crate::slow::SlowClients;
use crate::target::Target;
use testbed::nginx::{self, Installed};

/// The concurrency levels of the sweep.
const SWEEP: [usize; 5] = [1, 8, 64, 256, 1024];

/// The server the load clients are compared on: a single-threaded server
/// leaves the client a core of its own.
const CLIENTS_SERVER: &str = "epoll";

/// The clients of the closed-loop comparison, beside the load generator.
const PEERS: [fn() -> Client; 3] = [|| Client::Ab, || Client::Wrk, || Client::Oha];

/// The open-loop runs of `clients` ask for this share of the load
/// generator's closed-loop rate on the same server, same mode, same
/// connections (the better of its two thread counts).
const RATE_SHARE: f64 = 0.5;

/// The closed-loop clients whose rate the open-loop runs take a share of.
const RATE_FROM: [&str; 2] = ["loadgen", "loadgen -t 1"];

/// The server of the coordinated-omission experiment, and its load: a
/// constant rate over a few connections with keep-alive.
const OMISSION_SERVER: &str = "epoll";
const OMISSION_CONNECTIONS: usize = 4;

/// The calibration that chooses the load generator's threads for each
/// server of the sweep: at this many clients at once.
const CALIBRATION_CLIENTS: usize = 64;

/// The models the `gil` scenario compares, in Rust and in Python, with the
/// post's eight workers.
const GIL_MODELS: [&str; 4] = ["linear", "prefork", "thread-pool", "threads-accept"];
const GIL_WORKERS: usize = 8;

/// The rows of `uring-steps`: the `uring` listing with each of the io_uring
/// chapter's steps (its second argument), as the tables name them. Steps 1
/// to 3 add up, each row taking those before it; `sqpoll` is kept apart.
pub const URING_ROWS: [(&str, &str); 5] = [
    ("uring none", "none"),
    ("uring batch", "batch"),
    ("uring multishot", "batch,multishot"),
    ("uring direct", "batch,multishot,direct"),
    ("uring sqpoll", "batch,sqpoll"),
];

/// The rows of `handler` beside every listing at its default: two pools
/// with a worker for every two of its clients, and tokio with the blocking
/// work on its blocking pool; as (row, listing, second argument).
pub const HANDLER_ROWS: [(&str, &str, &str); 3] = [
    ("thread-pool 16", "thread-pool", "16"),
    ("epoll-offload 16", "epoll-offload", "16"),
    (
        "tokio-tasks spawn-blocking",
        "tokio-tasks",
        "spawn-blocking",
    ),
];

/// The row a listing run with `args` is in the tables: its own name, or
/// one of `URING_ROWS` or `HANDLER_ROWS`.
pub fn row_name(listing: &'static str, args: &[String]) -> &'static str {
    let Some(arg) = args.first() else {
        return listing;
    };
    let uring = URING_ROWS
        .iter()
        .filter(|_| listing == "uring")
        .find(|(_, steps)| steps == arg)
        .map(|(row, _)| *row);
    let handler = HANDLER_ROWS
        .iter()
        .find(|(_, l, a)| *l == listing && a == arg)
        .map(|(row, ..)| *row);
    uring.or(handler).unwrap_or(listing)
}

/// The references of `uring-steps`: the floor, and the readiness loop.
pub const URING_FLOOR: &str = "floor";
pub const URING_EPOLL: &str = "epoll";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Interleaved rounds (at least one).
    pub rounds: usize,
    /// Only these listings (the references of a scenario always run).
    pub only: Vec<String>,
    /// Where results, tables and charts are written.
    pub out: PathBuf,
    /// Leave nginx out even when it is installed.
    pub no_nginx: bool,
    /// Only estimate the time, run nothing.
    pub estimate: bool,
}

/// The sizes of every load, full or `--quick`.
struct Sizes {
    post_requests: u64,
    close_requests: u64,
    keep_alive_requests: u64,
    gil_requests: u64,
    wrk_seconds: u64,
    levels: Vec<usize>,
    slow: Vec<SlowCase>,
    slow_hold: Duration,
    slow_requests: u64,
    timeout: Duration,
    limit: Duration,
    /// Open-loop runs of `clients`, in seconds.
    open_seconds: u64,
    /// The coordinated-omission run: its rate, its length, and when and
    /// how long the server is stopped.
    omission_rate: f64,
    omission_seconds: u64,
    pause_at: Duration,
    pause: Duration,
    /// Calibration runs' requests, close and keep-alive.
    calibration: (u64, u64),
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Twice as many slow clients as a pool has workers by default.
        let k = if quick { 1 } else { 2 * cores };
        let slow = [SlowKind::Silent, SlowKind::Trickle].map(|kind| SlowCase { kind, count: k });
        if quick {
            Sizes {
                post_requests: 300,
                close_requests: 200,
                keep_alive_requests: 400,
                gil_requests: 200,
                wrk_seconds: 1,
                levels: vec![1, 8],
                slow: slow.to_vec(),
                slow_hold: Duration::from_secs(1),
                slow_requests: 100,
                timeout: Duration::from_secs(3),
                limit: Duration::from_secs(20),
                open_seconds: 1,
                omission_rate: 500.0,
                omission_seconds: 3,
                pause_at: Duration::from_secs(1),
                pause: Duration::from_secs(1),
                calibration: (100, 200),
            }
        } else {
            Sizes {
                post_requests: 100_000,
                close_requests: 20_000,
                keep_alive_requests: 100_000,
                gil_requests: 20_000,
                wrk_seconds: 5,
                levels: SWEEP.to_vec(),
                slow: slow.to_vec(),
                slow_hold: Duration::from_secs(6),
                slow_requests: 500,
                timeout: Duration::from_secs(10),
                limit: Duration::from_secs(120),
                open_seconds: 5,
                omission_rate: 1000.0,
                omission_seconds: 6,
                pause_at: Duration::from_millis(2500),
                pause: Duration::from_secs(1),
                calibration: (5_000, 30_000),
            }
        }
    }
}

/// What every scenario shares: the binaries, the references found, the
/// machine and its limits.
pub struct Context {
    pub options: Options,
    bin: PathBuf,
    nginx: Option<Installed>,
    python: Option<String>,
    machine: Machine,
    limits: Limits,
    sizes: Sizes,
    command: String,
}

impl Context {
    /// Builds the selected listings and the load generator, raises the
    /// open-files limit, and looks for nginx and python3.
    pub fn new(options: Options, command: String) -> Result<Context, String> {
        let mut packages: Vec<&str> = servers::LISTINGS
            .iter()
            .filter(|s| selected(&options, s))
            .map(|s| s.name)
            .collect();
        // The clients, gil and uring-steps scenarios run their listings
        // whatever --only says.
        for model in
            GIL_MODELS
                .into_iter()
                .chain([CLIENTS_SERVER, OMISSION_SERVER, URING_FLOOR, "uring"])
        {
            if !packages.contains(&model) {
                packages.push(model);
            }
        }
        packages.push("loadgen");
        let bin = testbed::release_build(packages)?;
        let nginx = if options.no_nginx {
            None
        } else {
            Installed::find()
        };
        Ok(Context {
            sizes: Sizes::new(options.quick),
            options,
            bin,
            nginx,
            python: python_version(),
            machine: Machine::read(),
            limits: Limits::raise_and_read(),
            command,
        })
    }

    fn loadgen(&self) -> Client {
        Client::loadgen(self.bin.join("loadgen"))
    }
}

/// The closed-loop rate an open-loop case takes a share of: the better
/// median of the load generator's closed-loop clients on the same server,
/// in the same mode with as many connections, over the runs so far.
fn closed_loop_rate(samples: &[Sample], case: &Case) -> Option<f64> {
    RATE_FROM
        .iter()
        .map(|client| {
            let rates: Vec<f64> = samples
                .iter()
                .filter(|s| {
                    s.server == case.spec.name
                        && s.client == *client
                        && s.mode == case.load.mode
                        && s.concurrency == case.load.concurrency
                        && s.usable()
                        && s.completed > 0
                })
                .map(|s| s.requests_per_sec)
                .collect();
            crate::stats::median(rates)
        })
        .filter(|r| r.is_finite())
        .max_by(f64::total_cmp)
}

/// Whether `--only` lets this listing run.
fn selected(options: &Options, spec: &Spec) -> bool {
    options.only.is_empty() || options.only.iter().any(|n| n == spec.name)
}

/// "Python 3.11.7", if python3 runs.
fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// One server, one client, one load: a run of every round.
#[derive(Clone)]
struct Case {
    spec: &'static Spec,
    client: Client,
    load: Load,
    slow: Option<SlowCase>,
    /// Arguments after the server's address.
    args: Vec<String>,
    /// Open loop at this share of the closed-loop rate measured so far
    /// (the load's own rate, if any, is replaced).
    rate_share: Option<f64>,
    /// The load generator's threads come from the calibration.
    calibrated: bool,
    /// What the questions' scenarios add to a case.
    extra: Extra,
}

impl Case {
    /// `client` against `spec` with `load`, and nothing more.
    fn new(spec: &'static Spec, client: Client, load: Load) -> Case {
        Case {
            spec,
            client,
            load,
            slow: None,
            args: Vec::new(),
            rate_share: None,
            calibrated: false,
            extra: Extra::default(),
        }
    }
}

/// Idle connections beside the load, and the server's listen backlog.
#[derive(Clone, Default)]
struct Extra {
    idle: Option<usize>,
    backlog: Option<u32>,
}

/// A scenario, planned.
pub struct Plan {
    name: Scenario,
    params: Params,
    servers: Vec<ServerEntry>,
    notes: Vec<String>,
    cases: Vec<Case>,
    /// Run the load generator once more at the end, for its human report.
    report: Option<(&'static Spec, Load)>,
    /// Servers and modes whose load generator threads are chosen by
    /// calibration before the rounds.
    calibrate: Vec<(&'static Spec, Mode)>,
}

impl Plan {
    fn new(name: Scenario, ctx: &Context) -> Plan {
        Plan {
            name,
            params: Params {
                timeout: ctx.sizes.timeout.as_secs_f64(),
                sample_every: run::SAMPLE_EVERY.as_secs_f64(),
                ..Params::default()
            },
            servers: Vec::new(),
            notes: Vec::new(),
            cases: Vec::new(),
            report: None,
            calibrate: Vec::new(),
        }
    }

    /// Records a server; true if it can run.
    fn add_server(&mut self, spec: &'static Spec, ctx: &Context) -> bool {
        let (kind, status, detail) = match spec.launch {
            Launch::Listing => (
                Kind::Listing,
                Status::Measured,
                format!("release build of listings/{}", spec.name),
            ),
            Launch::Nginx { workers } => match &ctx.nginx {
                Some(n) => (
                    Kind::Nginx,
                    Status::Measured,
                    format!(
                        "{}; its configuration:\n{}",
                        n.version,
                        nginx::config_for_readers(n, workers, 1024)
                    ),
                ),
                None => (
                    Kind::Nginx,
                    Status::NotInstalled,
                    "nginx is not installed".into(),
                ),
            },
            Launch::Python { script } => match &ctx.python {
                Some(v) => (
                    Kind::Python,
                    Status::Measured,
                    format!("{v}, tools/bench/python/{script}: a reference, not a listing"),
                ),
                None => (
                    Kind::Python,
                    Status::NotInstalled,
                    "python3 is not installed".into(),
                ),
            },
        };
        if !self.servers.iter().any(|s| s.name == spec.name) {
            self.servers.push(ServerEntry {
                name: spec.name.into(),
                kind,
                keep_alive: spec.keep_alive,
                status,
                detail,
            });
        }
        status == Status::Measured
    }

    fn case(&mut self, spec: &'static Spec, client: Client, load: Load) {
        self.cases.push(Case::new(spec, client, load));
    }

    /// A rough guess of a case's seconds, for the progress bar.
    fn estimate(case: &Case, hold: Duration) -> f64 {
        let rate = match (case.spec.launch, case.load.mode, &case.client) {
            (Launch::Python { .. }, _, _) => 4_000.0,
            (_, Mode::Close, Client::Ab) => 20_000.0,
            (_, Mode::Close, _) => 25_000.0,
            (_, Mode::KeepAlive, _) => 90_000.0,
        };
        let timed = case.load.rate.is_some()
            || case.rate_share.is_some()
            || case.load.requests == 0
            || matches!(case.client, Client::Wrk | Client::Wrk2);
        let mut secs = if timed {
            case.load.seconds as f64
        } else {
            case.load.requests as f64 / rate
        } + 0.3;
        // Blocking models wait out slow clients.
        if case.slow.is_some() && !case.spec.keep_alive {
            secs += hold.as_secs_f64();
        }
        // Opening idle connections: about ten thousand a second.
        secs += case.extra.idle.unwrap_or(0) as f64 / 10_000.0;
        secs
    }

    /// A rough guess of the calibration's seconds, every round.
    fn calibration_estimate(&self, ctx: &Context) -> f64 {
        let (close, keep_alive) = ctx.sizes.calibration;
        let per_round: f64 = self
            .calibrate
            .iter()
            .map(|(_, mode)| match mode {
                Mode::Close => close as f64 / 25_000.0 + 0.3,
                Mode::KeepAlive => keep_alive as f64 / 90_000.0 + 0.3,
            })
            .sum();
        per_round * ctx.thread_choices().len() as f64 * ctx.options.rounds as f64
    }
}

/// The listings the scenario runs, in the book's order, `--only` applied;
/// absent ones are recorded as such.
fn listings(plan: &mut Plan, ctx: &Context) -> Vec<&'static Spec> {
    let mut out = Vec::new();
    for spec in servers::LISTINGS.iter() {
        // A measuring stick runs only where a scenario names it.
        if !selected(&ctx.options, spec) || testbed::listing(spec.name).measuring_stick {
            continue;
        }
        if plan.add_server(spec, ctx) {
            out.push(spec);
        }
    }
    out
}

/// nginx's rows: included when installed, marked when not.
fn references(plan: &mut Plan, ctx: &Context, specs: &[&'static Spec]) -> Vec<&'static Spec> {
    specs
        .iter()
        .copied()
        .filter(|spec| plan.add_server(spec, ctx))
        .collect()
}

impl Context {
    fn load(&self, mode: Mode, concurrency: usize, requests: u64) -> Load {
        Load {
            mode,
            concurrency,
            requests,
            seconds: self.sizes.wrk_seconds,
            rate: None,
            pause: None,
            timeout: self.sizes.timeout,
            limit: self.sizes.limit,
            path: "/",
        }
    }

    /// The numbers of threads the calibration tries: one, and one per
    /// core.
    fn thread_choices(&self) -> Vec<usize> {
        let mut choices = vec![1, self.machine.cores.max(1)];
        choices.dedup();
        choices
    }

    /// Plans one scenario.
    pub fn plan(&self, scenario: Scenario) -> Plan {
        match scenario {
            Scenario::Clients => self.clients(),
            Scenario::Post => self.post(),
            Scenario::Sweep => self.sweep(),
            Scenario::Slow => self.slow(),
            Scenario::Nginx => self.nginx(),
            Scenario::Gil => self.gil(),
            Scenario::Omission => self.omission(),
            Scenario::UringSteps => self.uring_steps(),
            Scenario::Idle => self.idle(),
            Scenario::Handler => self.handler(),
            Scenario::Load => self.load_question(),
            Scenario::Backlog => self.backlog(),
        }
    }

    /// The load generator against its peers on one server: in closed loop
    /// against `ab`, `wrk` and `oha`; in open loop, at half its own
    /// closed-loop rate, against the rate modes of `oha` and `wrk2`.
    fn clients(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Clients, self);
        let spec = servers::find(CLIENTS_SERVER).expect("the clients' server is listed");
        // Not --only's business: this scenario is about the clients.
        plan.add_server(spec, self);
        let modes: &[Mode] = if spec.keep_alive {
            &Mode::BOTH
        } else {
            &[Mode::Close]
        };
        let levels = if self.options.quick {
            vec![8]
        } else {
            vec![8, 64]
        };
        plan.params.requests = self.sizes.post_requests;
        plan.params.wrk_seconds = self.sizes.wrk_seconds;
        plan.params.concurrency = levels.clone();
        plan.params.modes = modes.to_vec();
        plan.params.open_loop_seconds = self.sizes.open_seconds as f64;
        plan.params.rate_share = Some(RATE_SHARE);
        let path = self.bin.join("loadgen");
        for &mode in modes {
            for &c in &levels {
                let load = self.load(mode, c, self.sizes.post_requests);
                let one_thread = Client::loadgen_threads(path.clone(), 1, "loadgen -t 1");
                let [ab, wrk, oha] = PEERS.map(|peer| peer());
                for client in [ab, self.loadgen(), one_thread, wrk, oha] {
                    plan.case(spec, client, load);
                }
            }
            // Open loop at the most connections, after the closed-loop
            // runs of the round whose rate it takes a share of.
            let c = *levels.last().expect("a level");
            let open = Load {
                seconds: self.sizes.open_seconds,
                ..self.load(mode, c, 0)
            };
            let loadgen = Client::Loadgen {
                path: path.clone(),
                threads: None,
                name: "loadgen --rate".into(),
            };
            for client in [loadgen, Client::Oha, Client::Wrk2] {
                plan.cases.push(Case {
                    spec,
                    client,
                    load: open,
                    slow: None,
                    args: Vec::new(),
                    rate_share: Some(RATE_SHARE),
                    calibrated: false,
                    extra: Extra::default(),
                });
            }
        }
        // The human report the Measuring chapter shows: the post's load on
        // the linear server.
        let linear = servers::find("linear").expect("linear is listed");
        plan.report = Some((linear, self.load(Mode::Close, 8, self.sizes.post_requests)));
        plan
    }

    /// The post's benchmark: 100,000 requests, 8 at a time, a new
    /// connection each, with `ab` and with the load generator.
    fn post(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Post, self);
        plan.params.requests = self.sizes.post_requests;
        plan.params.concurrency = vec![8];
        plan.params.modes = vec![Mode::Close];
        let load = self.load(Mode::Close, 8, self.sizes.post_requests);
        for spec in listings(&mut plan, self) {
            for client in [Client::Ab, self.loadgen()] {
                plan.case(spec, client, load);
            }
        }
        plan
    }

    /// Every server at every concurrency level, close and keep-alive, with
    /// the load generator.
    fn sweep(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Sweep, self);
        let mut levels = Vec::new();
        for &c in &self.sizes.levels {
            // The slow scenario's clients are not here: c is all.
            match self.limits.refuse(c) {
                Some(why) => plan.notes.push(format!("{c} clients skipped: {why}")),
                None => levels.push(c),
            }
        }
        plan.params.requests = self.sizes.close_requests;
        plan.params.keep_alive_requests = Some(self.sizes.keep_alive_requests);
        plan.params.concurrency = levels.clone();
        plan.params.modes = Mode::BOTH.to_vec();
        let mut specs = listings(&mut plan, self);
        specs.extend(references(
            &mut plan,
            self,
            &[&servers::NGINX_ONE, &servers::NGINX_AUTO],
        ));
        // The load generator's threads, per server and mode: the faster of
        // one and one per core, measured first.
        let (close, keep_alive) = self.sizes.calibration;
        plan.params.calibration = Some(CalibrationParams {
            concurrency: CALIBRATION_CLIENTS,
            requests: close,
            keep_alive_requests: keep_alive,
            threads: self.thread_choices(),
        });
        for mode in Mode::BOTH {
            for &spec in &specs {
                if mode == Mode::Close || spec.keep_alive {
                    plan.calibrate.push((spec, mode));
                }
            }
        }
        for mode in Mode::BOTH {
            for &c in &levels {
                for &spec in &specs {
                    // A server that closes every connection has nothing
                    // more to show with keep-alive.
                    if mode == Mode::KeepAlive && !spec.keep_alive {
                        continue;
                    }
                    let requests = match mode {
                        Mode::Close => self.sizes.close_requests,
                        Mode::KeepAlive => self.sizes.keep_alive_requests,
                    };
                    plan.case(spec, self.loadgen(), self.load(mode, c, requests));
                    plan.cases.last_mut().expect("just pushed").calibrated = true;
                }
            }
        }
        plan
    }

    /// Coordinated omission, shown: the load generator at a constant rate
    /// against one listing, which is stopped (SIGSTOP) for about a second
    /// in the middle of the run and then continued.
    fn omission(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Omission, self);
        let spec = servers::find(OMISSION_SERVER).expect("the omission server is listed");
        plan.add_server(spec, self);
        let s = &self.sizes;
        plan.params.concurrency = vec![OMISSION_CONNECTIONS];
        plan.params.modes = vec![Mode::KeepAlive];
        plan.params.open_loop_seconds = s.omission_seconds as f64;
        plan.params.rate = Some(s.omission_rate);
        plan.params.pause_at = Some(s.pause_at.as_secs_f64());
        plan.params.pause = Some(s.pause.as_secs_f64());
        let load = Load {
            seconds: s.omission_seconds,
            rate: Some(s.omission_rate),
            pause: Some((s.pause_at, s.pause)),
            ..self.load(Mode::KeepAlive, OMISSION_CONNECTIONS, 0)
        };
        let client = Client::loadgen_threads(self.bin.join("loadgen"), 1, "loadgen --rate");
        plan.case(spec, client, load);
        plan
    }

    /// The io_uring chapter's steps (`URING_ROWS`) beside the floor and
    /// epoll, at 64 clients with the load generator: keep-alive, and a new
    /// connection per request (where the floor has no row: it only keeps
    /// connections alive). The servers' system calls are counted too.
    fn uring_steps(&self) -> Plan {
        let mut plan = Plan::new(Scenario::UringSteps, self);
        let s = &self.sizes;
        plan.params.requests = s.close_requests;
        plan.params.keep_alive_requests = Some(s.keep_alive_requests);
        plan.params.concurrency = vec![64];
        plan.params.modes = vec![Mode::KeepAlive, Mode::Close];
        let find = |name| servers::find(name).expect("listed");
        let uring = find("uring");
        let mut rows: Vec<(&'static Spec, Vec<String>)> = Vec::new();
        for name in [URING_FLOOR, URING_EPOLL] {
            if plan.add_server(find(name), self) {
                rows.push((find(name), Vec::new()));
            }
        }
        if plan.add_server(uring, self) {
            // One row per step, named as the tables show it.
            plan.servers.retain(|s| s.name != uring.name);
            for (row, steps) in URING_ROWS {
                plan.servers.push(ServerEntry {
                    name: row.into(),
                    kind: Kind::Listing,
                    keep_alive: true,
                    status: Status::Measured,
                    detail: format!("release build of listings/uring, steps {steps}"),
                });
                rows.push((uring, vec![steps.to_string()]));
            }
        }
        for mode in [Mode::KeepAlive, Mode::Close] {
            let requests = match mode {
                Mode::KeepAlive => s.keep_alive_requests,
                Mode::Close => s.close_requests,
            };
            for (spec, args) in &rows {
                if mode == Mode::Close && spec.name == URING_FLOOR {
                    continue;
                }
                plan.cases.push(Case {
                    spec,
                    client: self.loadgen(),
                    load: self.load(mode, 64, requests),
                    slow: None,
                    args: args.clone(),
                    rate_share: None,
                    calibrated: false,
                    extra: Extra::default(),
                });
            }
        }
        plan
    }

    /// Slow clients connected while the load generator runs a normal load.
    fn slow(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Slow, self);
        plan.params.requests = self.sizes.slow_requests;
        plan.params.concurrency = vec![8];
        plan.params.modes = vec![Mode::Close];
        plan.params.slow = self.sizes.slow.clone();
        plan.params.slow_hold = self.sizes.slow_hold.as_secs_f64();
        let mut specs = listings(&mut plan, self);
        specs.extend(references(&mut plan, self, &[&servers::NGINX_ONE]));
        for &case in &self.sizes.slow {
            for &spec in &specs {
                let load = self.load(Mode::Close, 8, self.sizes.slow_requests);
                plan.cases.push(Case {
                    spec,
                    client: self.loadgen(),
                    load,
                    slow: Some(case),
                    args: Vec::new(),
                    rate_share: None,
                    calibrated: false,
                    extra: Extra::default(),
                });
            }
        }
        plan
    }

    /// The book's goals against nginx's single worker, with `wrk -t2 -c64`
    /// as the judge and the load generator beside it.
    fn nginx(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Nginx, self);
        plan.params.requests = self.sizes.post_requests;
        plan.params.wrk_seconds = self.sizes.wrk_seconds;
        plan.params.concurrency = vec![64];
        plan.params.modes = Mode::BOTH.to_vec();
        let mut specs = Vec::new();
        for spec in servers::LISTINGS.iter().filter(|s| s.against_nginx) {
            if !selected(&self.options, spec) {
                continue;
            }
            if plan.add_server(spec, self) {
                specs.push(spec);
            }
        }
        specs.extend(references(&mut plan, self, &[&servers::NGINX_ONE]));
        for mode in Mode::BOTH {
            for &spec in &specs {
                if mode == Mode::KeepAlive && !spec.keep_alive {
                    continue;
                }
                let load = self.load(mode, 64, self.sizes.post_requests);
                plan.case(spec, Client::Wrk, load);
                plan.case(spec, self.loadgen(), load);
            }
        }
        plan
    }

    /// The post's three models and one more, in Python and in Rust, all
    /// with the post's eight workers, with `ab` and the load generator.
    fn gil(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Gil, self);
        plan.params.requests = self.sizes.gil_requests;
        plan.params.concurrency = vec![8];
        plan.params.modes = vec![Mode::Close];
        plan.params.workers = Some(GIL_WORKERS);
        let load = self.load(Mode::Close, 8, self.sizes.gil_requests);
        for (model, py) in GIL_MODELS.iter().zip(servers::PYTHON) {
            let rust = servers::find(model).expect("a gil model is listed");
            for spec in [rust, py] {
                if !plan.add_server(spec, self) {
                    continue;
                }
                for client in [Client::Ab, self.loadgen()] {
                    let args = if *model == "linear" {
                        Vec::new()
                    } else {
                        vec![GIL_WORKERS.to_string()]
                    };
                    plan.cases.push(Case {
                        spec,
                        client,
                        load,
                        slow: None,
                        args,
                        rate_share: None,
                        calibrated: false,
                        extra: Extra::default(),
                    });
                }
            }
        }
        plan
    }

    /// Runs the plans, interleaved round by round within each, and hands
    /// each one's results to `done` as soon as it is over.
    pub fn run(
        &self,
        plans: Vec<Plan>,
        mut done: impl FnMut(&Results) -> Result<(), String>,
    ) -> Result<(), String> {
        let (steps, estimate) = self.estimate(&plans);
        let mut progress = Progress::new(steps, estimate);
        for mut plan in plans {
            let started = std::time::Instant::now();
            let (calibration, choices) = self.calibrate(&mut plan, &mut progress);
            let mut samples: Vec<Sample> = Vec::new();
            for round in 0..self.options.rounds {
                for case in &plan.cases {
                    let mut case = case.clone();
                    if case.calibrated {
                        let threads = choices
                            .iter()
                            .find(|c| c.server == case.spec.name && c.mode == case.load.mode)
                            .map(|c| c.threads);
                        if let (Some(t), Client::Loadgen { threads, .. }) =
                            (threads, &mut case.client)
                        {
                            *threads = Some(t);
                        }
                    }
                    let rate = case.rate_share.map(|share| {
                        closed_loop_rate(&samples, &case).map(|r| (r * share).round().max(1.0))
                    });
                    if let Some(Some(r)) = rate {
                        case.load.rate = Some(r);
                    }
                    progress.begin(&format!(
                        "{}: {} with {}, {} {}{}, round {}",
                        plan.name,
                        case.spec.label(),
                        case.client.name(&case.load),
                        case.load.mode.name(),
                        case.load.concurrency,
                        case.slow
                            .map(|s| format!(", {}", s.short()))
                            .unwrap_or_default(),
                        round + 1
                    ));
                    let sample = if let Some(None) = rate {
                        let mut sample = self.sample(&case, round);
                        sample.error = Some("no closed-loop rate to take a share of".into());
                        sample
                    } else {
                        let count = plan.name == Scenario::UringSteps;
                        self.measure(&case, round, &mut plan.notes, &mut progress, count)
                    };
                    progress.end(Plan::estimate(&case, self.sizes.slow_hold));
                    samples.push(sample);
                }
            }
            let loadgen_report =
                plan.report
                    .and_then(|(spec, load)| match self.report(spec, &load) {
                        Ok(text) => Some(text),
                        Err(e) => {
                            plan.notes.push(format!("the load generator's report: {e}"));
                            None
                        }
                    });
            let results = Results {
                scenario: plan.name,
                command: self.command.clone(),
                machine: self.machine.clone(),
                limits: self.limits.clone(),
                rounds: self.options.rounds,
                params: plan.params,
                servers: plan.servers,
                notes: plan.notes,
                samples,
                loadgen_report,
                calibration,
                client_threads: choices,
                seconds: Some(started.elapsed().as_secs_f64()),
            };
            progress.note(&format!("{}: done", plan.name));
            done(&results)?;
        }
        progress.finish();
        Ok(())
    }

    /// How many runs the plans make, and a rough guess of their seconds.
    pub fn estimate(&self, plans: &[Plan]) -> (usize, f64) {
        let rounds = self.options.rounds;
        let choices = self.thread_choices().len();
        let steps: usize = plans
            .iter()
            .map(|p| (p.cases.len() + p.calibrate.len() * choices) * rounds)
            .sum();
        let estimate: f64 = plans
            .iter()
            .map(|p| {
                p.cases
                    .iter()
                    .map(|c| Plan::estimate(c, self.sizes.slow_hold))
                    .sum::<f64>()
                    * rounds as f64
                    + p.calibration_estimate(self)
            })
            .sum();
        (steps, estimate)
    }

    /// Chooses the load generator's threads for each server and mode the
    /// plan calibrates: every choice in turn, in interleaved rounds, and
    /// the faster median rate wins (one per core where none ran).
    fn calibrate(
        &self,
        plan: &mut Plan,
        progress: &mut Progress,
    ) -> (Vec<Sample>, Vec<ThreadChoice>) {
        let (close, keep_alive) = self.sizes.calibration;
        let path = self.bin.join("loadgen");
        let mut samples = Vec::new();
        let calibrate = plan.calibrate.clone();
        for round in 0..self.options.rounds {
            for &(spec, mode) in &calibrate {
                let requests = match mode {
                    Mode::Close => close,
                    Mode::KeepAlive => keep_alive,
                };
                for threads in self.thread_choices() {
                    let name = format!("loadgen -t {threads}");
                    let case = Case {
                        spec,
                        client: Client::loadgen_threads(path.clone(), threads, name),
                        load: self.load(mode, CALIBRATION_CLIENTS, requests),
                        slow: None,
                        args: Vec::new(),
                        rate_share: None,
                        calibrated: false,
                        extra: Extra::default(),
                    };
                    progress.begin(&format!(
                        "{}: calibrating {} with {}, {}, round {}",
                        plan.name,
                        spec.label(),
                        case.client.name(&case.load),
                        mode.name(),
                        round + 1
                    ));
                    samples.push(self.measure(&case, round, &mut plan.notes, progress, false));
                    progress.end(Plan::estimate(&case, self.sizes.slow_hold));
                }
            }
        }
        let choices = calibrate
            .iter()
            .map(|&(spec, mode)| {
                let rate = |threads: usize| {
                    let rates: Vec<f64> = samples
                        .iter()
                        .filter(|s| {
                            s.server == spec.name
                                && s.mode == mode
                                && s.client == format!("loadgen -t {threads}")
                                && s.usable()
                        })
                        .map(|s| s.requests_per_sec)
                        .collect();
                    crate::stats::median(rates)
                };
                let best = self
                    .thread_choices()
                    .into_iter()
                    .filter(|&t| rate(t).is_finite())
                    .max_by(|&a, &b| rate(a).total_cmp(&rate(b)))
                    .unwrap_or(self.machine.cores.max(1));
                ThreadChoice {
                    server: spec.name.into(),
                    mode,
                    threads: best,
                }
            })
            .collect();
        (samples, choices)
    }

    /// A sample for `case` in `round`, before it runs.
    fn sample(&self, case: &Case, round: usize) -> Sample {
        // A listing run with a second argument may be a row of its own.
        let mut sample = Sample::new(
            row_name(case.spec.name, &case.args),
            &case.client.name(&case.load),
            case.load.mode,
            case.load.concurrency,
            round,
        );
        sample.slow = case.slow;
        sample.idle = case.extra.idle;
        sample.backlog = case.extra.backlog;
        sample.share = case.rate_share;
        if case.load.path != "/" {
            sample.path = Some(case.load.path.into());
        }
        sample
    }

    /// One run of one case: a fresh server, the slow clients if any, the
    /// client, and the server stopped again; with its system calls counted
    /// if `count_syscalls`.
    fn measure(
        &self,
        case: &Case,
        round: usize,
        notes: &mut Vec<String>,
        progress: &mut Progress,
        count_syscalls: bool,
    ) -> Sample {
        let mut sample = self.sample(case, round);
        if !case.client.installed() {
            sample.installed = false;
            return sample;
        }
        let slow_count = case.slow.map_or(0, |s| s.count);
        let backlog = case.extra.backlog.map(|b| b.to_string());
        let env: Vec<(&str, &str)> = backlog
            .iter()
            .map(|b| ("LISTEN_BACKLOG", b.as_str()))
            .collect();
        let target = match Target::start_env(
            case.spec,
            &self.bin,
            self.nginx.as_ref(),
            case.load.concurrency + slow_count + case.extra.idle.unwrap_or(0),
            &case.args,
            &env,
        ) {
            Ok(t) => t,
            Err(e) => {
                sample.error = Some(e);
                return sample;
            }
        };
        let slow = match case.slow {
            Some(s) => match SlowClients::connect(target.addr(), s, self.sizes.slow_hold) {
                Ok(clients) => Some(clients),
                Err(e) => {
                    sample.error = Some(format!("connecting slow clients: {e}"));
                    None
                }
            },
            None => None,
        };
        let idle = match case.extra.idle.filter(|&n| n > 0) {
            Some(n) => {
                match IdleConnections::open(target.addr(), n, case.spec.keep_alive, target.pid()) {
                    Ok(idle) => Some(idle),
                    Err(e) => {
                        sample.error = Some(format!("opening {n} idle connections: {e}"));
                        None
                    }
                }
            }
            None => None,
        };
        let idle_ok = case.extra.idle.is_none_or(|n| n == 0) || idle.is_some();
        if (case.slow.is_none() || slow.is_some()) && idle_ok {
            let counting = count_syscalls
                .then(|| crate::syscalls::Counting::start(target.pid()))
                .flatten();
            run::measure(&target, &case.client, &case.load, &mut sample);
            sample.syscalls = counting.and_then(crate::syscalls::Counting::stop);
        }
        if let Some(clients) = slow {
            sample.slow_clients = Some(clients.leave());
        }
        if let Some(idle) = idle {
            sample.slow_clients = Some(idle.leave());
        }
        match target.stop() {
            Ok(None) => {}
            Ok(Some(message)) => {
                let note = format!("{} ({}): {message}", case.spec.name, sample.command);
                progress.note(&note);
                notes.push(note);
            }
            Err(e) => notes.push(format!("{}: {e}", case.spec.name)),
        }
        if let Some(e) = &sample.error {
            progress.note(&format!("{}: {e}", case.spec.name));
        }
        sample
    }

    /// The load generator's human report of one run.
    fn report(&self, spec: &Spec, load: &Load) -> Result<String, String> {
        let target = Target::start(spec, &self.bin, None, load.concurrency, &[])?;
        let text = run::loadgen_report(&self.bin.join("loadgen"), &target, load);
        let _ = target.stop();
        text
    }
}
