//! The scenarios that answer the questions the model chapters raise: what
//! idle connections cost (`idle`), what a slow handler does (`handler`),
//! how latency grows with the load offered (`load`), and what the listen
//! backlog has to do with requests that take a second (`backlog`).

use std::time::Duration;

use nix::sys::select::FD_SETSIZE;

use super::{Case, Context, HANDLER_ROWS, Plan, listings, selected};
use crate::results::{Kind, ServerEntry, Status};
use crate::results::{Mode, Scenario};
use crate::run::{Client, Load};
use crate::servers::{self, Spec};

/// The servers of `idle`: the readiness and completion models, and a
/// thread per connection for contrast.
pub const IDLE_SERVERS: [&str; 7] = [
    "select",
    "poll",
    "epoll",
    "epoll-edge",
    "uring",
    "tokio-tasks",
    "thread-per-connection",
];

/// Idle connections beside the load.
const IDLE_LEVELS: [usize; 4] = [0, 100, 1_000, 10_000];

/// The load beside them: open loop, keep-alive, a rate every server
/// sustains, over this many connections, for this long. It ends within
/// three seconds of the idle connections' last request, well within the
/// servers' head deadline of five.
const IDLE_RATE: f64 = 1_000.0;
pub const IDLE_CONNECTIONS: usize = 8;
const IDLE_SECONDS: u64 = 3;

/// Descriptors `select`'s process holds besides connections: standard
/// streams, the listener, and some to spare.
const SELECT_SPARE: usize = 8;

/// The targets of `handler`: a millisecond of computing, and ten
/// milliseconds blocked in one call.
pub const HANDLER_PATHS: [&str; 2] = ["/cpu/1000", "/sleep/10"];

/// Clients at once, more than any pool's workers, and how long a run
/// lasts.
pub const HANDLER_CLIENTS: usize = 32;
const HANDLER_SECONDS: u64 = 2;

/// The models of `load`: one listing of each way of serving.
const LOAD_SERVERS: [&str; 7] = [
    "linear",
    "prefork",
    "thread-pool",
    "thread-per-connection",
    "epoll",
    "uring",
    "tokio-tasks",
];

/// The load's connections, for the probe and the open-loop runs alike.
pub const LOAD_CONNECTIONS: usize = 16;

/// The open-loop rates, as shares of the probe's closed-loop rate.
const LOAD_SHARES: [f64; 4] = [0.1, 0.5, 0.8, 1.1];

/// How long each open-loop run of `load` lasts, and each probe.
const LOAD_SECONDS: u64 = 2;
const PROBE_SECONDS: u64 = 1;

/// A rate is served well while p99 stays under this.
pub const P99_BOUND: f64 = 0.010;

/// The longest an open-loop request may wait in `load`: past saturation,
/// a request longer than this counts as failed.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// The servers of `backlog`: one that accepts between requests, a pool,
/// and a loop that accepts all it can at every wake-up.
const BACKLOG_SERVERS: [&str; 3] = ["linear", "thread-pool", "epoll"];

/// `TcpListener::bind`'s backlog, and the one every listing asks for.
const BACKLOGS: [u32; 2] = [128, 1024];
const BACKLOG_CLIENTS: [usize; 2] = [256, 1024];
const BACKLOG_REQUESTS: u64 = 10_000;

/// A scenario's servers: those of `names` that `--only` lets run; if it
/// lets none, `fallback` alone, so that a narrowed run still answers.
fn chosen(plan: &mut Plan, ctx: &Context, names: &[&str], fallback: &str) -> Vec<&'static Spec> {
    let mut out = Vec::new();
    for spec in names.iter().filter_map(|n| servers::find(n)) {
        if selected(&ctx.options, spec) && plan.add_server(spec, ctx) {
            out.push(spec);
        }
    }
    if out.is_empty() {
        if let Some(spec) = servers::find(fallback).filter(|s| plan.add_server(s, ctx)) {
            plan.notes.push(format!(
                "--only named none of this scenario's servers: `{fallback}` ran alone"
            ));
            out.push(spec);
        }
    }
    out
}

impl Context {
    fn question_case(&self, spec: &'static Spec, client: Client, load: Load) -> Case {
        Case::new(spec, client, load)
    }

    /// A fixed open-loop load beside 0 to 10,000 idle connections.
    pub(super) fn idle(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Idle, self);
        let quick = self.options.quick;
        let (levels, rate, seconds) = if quick {
            (vec![0, 10], 200.0, 1)
        } else {
            (IDLE_LEVELS.to_vec(), IDLE_RATE, IDLE_SECONDS)
        };
        let specs = chosen(&mut plan, self, &IDLE_SERVERS, "epoll");
        let mut kept = Vec::new();
        for &n in &levels {
            match self.limits.refuse(n + IDLE_CONNECTIONS) {
                Some(why) => plan
                    .notes
                    .push(format!("{n} idle connections skipped: {why}")),
                None => kept.push(n),
            }
        }
        plan.params.idle = kept.clone();
        plan.params.concurrency = vec![IDLE_CONNECTIONS];
        plan.params.modes = vec![Mode::KeepAlive];
        plan.params.rate = Some(rate);
        plan.params.open_loop_seconds = seconds as f64;
        let load = Load {
            seconds,
            rate: Some(rate),
            ..self.load(Mode::KeepAlive, IDLE_CONNECTIONS, 0)
        };
        let client = Client::loadgen_threads(self.bin.join("loadgen"), 1, "loadgen --rate");
        for &n in &kept {
            for &spec in &specs {
                if spec.name == "select" && n + IDLE_CONNECTIONS + SELECT_SPARE >= FD_SETSIZE {
                    plan.notes.push(format!(
                        "select: {n} idle connections skipped: select watches only \
                         descriptors below FD_SETSIZE ({FD_SETSIZE})"
                    ));
                    continue;
                }
                let mut case = self.question_case(spec, client.clone(), load);
                case.extra.idle = Some(n);
                plan.cases.push(case);
            }
        }
        plan
    }

    /// Every listing at a CPU-bound target and at a blocking one, with
    /// more clients than any pool has workers.
    pub(super) fn handler(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Handler, self);
        let (clients, seconds) = if self.options.quick {
            (4, 1)
        } else {
            (HANDLER_CLIENTS, HANDLER_SECONDS)
        };
        plan.params.concurrency = vec![clients];
        plan.params.modes = vec![Mode::Close];
        plan.params.paths = HANDLER_PATHS.iter().map(|p| p.to_string()).collect();
        plan.params.closed_loop_seconds = seconds as f64;
        let specs = listings(&mut plan, self);
        // Each listing at its default, and the rows of `HANDLER_ROWS` just
        // after the listing they vary.
        let mut rows: Vec<(&'static Spec, Vec<String>)> = Vec::new();
        for &spec in &specs {
            rows.push((spec, Vec::new()));
            // `listings` entered `spec`; each of its rows goes after the last.
            let mut at = plan.servers.iter().position(|s| s.name == spec.name);
            for (row, _, arg) in HANDLER_ROWS.iter().filter(|(_, l, _)| *l == spec.name) {
                let entry = ServerEntry {
                    name: row.to_string(),
                    kind: Kind::Listing,
                    keep_alive: spec.keep_alive,
                    status: Status::Measured,
                    detail: format!("release build of listings/{}, run with {arg}", spec.name),
                };
                let i = at.map_or(plan.servers.len(), |i| i + 1);
                plan.servers.insert(i, entry);
                at = Some(i);
                rows.push((spec, vec![arg.to_string()]));
            }
        }
        for path in HANDLER_PATHS {
            for (spec, args) in &rows {
                let load = Load {
                    seconds,
                    path,
                    ..self.load(Mode::Close, clients, 0)
                };
                let mut case = self.question_case(spec, self.loadgen(), load);
                case.args = args.clone();
                plan.cases.push(case);
            }
        }
        plan
    }

    /// Each model at rates from a tenth of its closed-loop maximum (a
    /// probe run just before, in the same round) to past it, open loop,
    /// both modes.
    pub(super) fn load_question(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Load, self);
        let (shares, seconds, probe) = if self.options.quick {
            (vec![0.5, 1.1], 1, 1)
        } else {
            (LOAD_SHARES.to_vec(), LOAD_SECONDS, PROBE_SECONDS)
        };
        plan.params.concurrency = vec![LOAD_CONNECTIONS];
        plan.params.modes = Mode::BOTH.to_vec();
        plan.params.shares = shares.clone();
        plan.params.p99_bound = Some(P99_BOUND);
        plan.params.open_loop_seconds = seconds as f64;
        plan.params.closed_loop_seconds = probe as f64;
        plan.params.timeout = LOAD_TIMEOUT.as_secs_f64();
        let specs = chosen(&mut plan, self, &LOAD_SERVERS, "epoll");
        for mode in Mode::BOTH {
            for &spec in &specs {
                if mode == Mode::KeepAlive && !spec.keep_alive {
                    continue;
                }
                let load = Load {
                    seconds,
                    timeout: LOAD_TIMEOUT,
                    ..self.load(mode, LOAD_CONNECTIONS, 0)
                };
                let probe = Load {
                    seconds: probe,
                    ..load
                };
                plan.cases
                    .push(self.question_case(spec, self.loadgen(), probe));
                for &share in &shares {
                    let client = Client::Loadgen {
                        path: self.bin.join("loadgen"),
                        threads: None,
                        name: "loadgen --rate".into(),
                    };
                    let mut case = self.question_case(spec, client, load);
                    case.rate_share = Some(share);
                    plan.cases.push(case);
                }
            }
        }
        plan
    }

    /// The same servers with the backlog `TcpListener::bind` asks and the
    /// one the listings ask, against more clients at once than the first.
    pub(super) fn backlog(&self) -> Plan {
        let mut plan = Plan::new(Scenario::Backlog, self);
        let (clients, requests) = if self.options.quick {
            (vec![16, 64], 300)
        } else {
            (BACKLOG_CLIENTS.to_vec(), BACKLOG_REQUESTS)
        };
        let mut levels = Vec::new();
        for c in clients {
            match self.limits.refuse(c) {
                Some(why) => plan.notes.push(format!("{c} clients skipped: {why}")),
                None => levels.push(c),
            }
        }
        plan.params.requests = requests;
        plan.params.concurrency = levels.clone();
        plan.params.modes = vec![Mode::Close];
        plan.params.backlogs = BACKLOGS.to_vec();
        let specs = chosen(&mut plan, self, &BACKLOG_SERVERS, "linear");
        for &c in &levels {
            for backlog in BACKLOGS {
                for &spec in &specs {
                    let load = self.load(Mode::Close, c, requests);
                    let mut case = self.question_case(spec, self.loadgen(), load);
                    case.extra.backlog = Some(backlog);
                    plan.cases.push(case);
                }
            }
        }
        plan
    }
}
