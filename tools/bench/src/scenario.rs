//! The scenarios: which servers, which clients, which loads, in which
//! order; and the loop that runs them in interleaved rounds.
//!
//! A scenario is planned first, as a list of cases (one server, one client,
//! one load). A round runs every case once, in order; the next round runs
//! them all again. So every server of a scenario is measured once before
//! any is measured twice, and a machine that gets busier or quieter during
//! the run spreads its noise over all of them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::machine::{Limits, Machine};
use crate::progress::Progress;
use crate::results::{
    Kind, Mode, Params, Results, Sample, Scenario, ServerEntry, SlowCase, SlowKind, Status,
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

/// The models the `gil` scenario compares, in Rust and in Python, with the
/// post's eight workers.
const GIL_MODELS: [&str; 4] = ["linear", "prefork", "thread-pool", "threads-accept"];
const GIL_WORKERS: usize = 8;

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
        // The clients and gil scenarios run their listings whatever --only
        // says.
        for model in GIL_MODELS.into_iter().chain([CLIENTS_SERVER]) {
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
        Client::Loadgen(self.bin.join("loadgen"))
    }
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
struct Case {
    spec: &'static Spec,
    client: Client,
    load: Load,
    slow: Option<SlowCase>,
    /// Arguments after the server's address.
    args: Vec<String>,
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
        self.cases.push(Case {
            spec,
            client,
            load,
            slow: None,
            args: Vec::new(),
        });
    }

    /// A rough guess of a case's seconds, for the progress bar.
    fn estimate(case: &Case, hold: Duration) -> f64 {
        let rate = match (case.spec.launch, case.load.mode) {
            (Launch::Python { .. }, _) => 4_000.0,
            (_, Mode::Close) => 12_000.0,
            (_, Mode::KeepAlive) => 40_000.0,
        };
        let mut secs = match case.client {
            Client::Wrk => case.load.seconds as f64,
            _ => case.load.requests as f64 / rate,
        } + 0.2;
        // Blocking models wait out slow clients.
        if case.slow.is_some() && !case.spec.keep_alive {
            secs += hold.as_secs_f64();
        }
        secs
    }
}

/// The listings the scenario runs, in the book's order, `--only` applied;
/// absent ones are recorded as such.
fn listings(plan: &mut Plan, ctx: &Context) -> Vec<&'static Spec> {
    let mut out = Vec::new();
    for spec in servers::LISTINGS.iter() {
        if !selected(&ctx.options, spec) {
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
            timeout: self.sizes.timeout,
            limit: self.sizes.limit,
        }
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
        }
    }

    /// The load generator against `ab` and `wrk`, on one server.
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
        for &mode in modes {
            for &c in &levels {
                let load = self.load(mode, c, self.sizes.post_requests);
                let one_thread = Client::LoadgenOneThread(self.bin.join("loadgen"));
                for client in [Client::Ab, self.loadgen(), one_thread, Client::Wrk] {
                    plan.case(spec, client, load);
                }
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
                }
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
        let rounds = self.options.rounds;
        let steps: usize = plans.iter().map(|p| p.cases.len() * rounds).sum();
        let estimate: f64 = plans
            .iter()
            .flat_map(|p| &p.cases)
            .map(|c| Plan::estimate(c, self.sizes.slow_hold))
            .sum::<f64>()
            * rounds as f64;
        let mut progress = Progress::new(steps, estimate);
        for mut plan in plans {
            let mut samples = Vec::new();
            for round in 0..rounds {
                for case in &plan.cases {
                    progress.begin(&format!(
                        "{}: {} with {}, {} {}{}, round {}",
                        plan.name,
                        case.spec.label(),
                        case.client.name(),
                        case.load.mode.name(),
                        case.load.concurrency,
                        case.slow
                            .map(|s| format!(", {}", s.short()))
                            .unwrap_or_default(),
                        round + 1
                    ));
                    let sample = self.measure(case, round, &mut plan.notes, &mut progress);
                    progress.end(Plan::estimate(case, self.sizes.slow_hold));
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
                rounds,
                params: plan.params,
                servers: plan.servers,
                notes: plan.notes,
                samples,
                loadgen_report,
            };
            progress.note(&format!("{}: done", plan.name));
            done(&results)?;
        }
        progress.finish();
        Ok(())
    }

    /// One run of one case: a fresh server, the slow clients if any, the
    /// client, and the server stopped again.
    fn measure(
        &self,
        case: &Case,
        round: usize,
        notes: &mut Vec<String>,
        progress: &mut Progress,
    ) -> Sample {
        let mut sample = Sample::new(
            case.spec.name,
            case.client.name(),
            case.load.mode,
            case.load.concurrency,
            round,
        );
        sample.slow = case.slow;
        if !case.client.installed() {
            sample.installed = false;
            return sample;
        }
        let slow_count = case.slow.map_or(0, |s| s.count);
        let target = match Target::start(
            case.spec,
            &self.bin,
            self.nginx.as_ref(),
            case.load.concurrency + slow_count,
            &case.args,
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
        if case.slow.is_none() || slow.is_some() {
            run::measure(&target, &case.client, &case.load, &mut sample);
        }
        if let Some(clients) = slow {
            sample.slow_clients = Some(clients.leave());
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
