//! `accepts`: how a server shares its connections among its workers
//! (processes, threads or loops), and how often its workers are woken per
//! connection, for the servers whose workers share one source of
//! connections.
//!
//! Nothing in the listings counts. Two things are read from outside:
//! - the responses each worker sent: `perf stat --per-thread` counting the
//!   `sendto` calls that sent something (the `syscalls:sys_exit_sendto`
//!   tracepoint, `ret > 0`), attached to every thread of the server. Every
//!   listing writes a response with one `send` (the standard library's
//!   `write` on a socket is a `send` too), and in close mode a connection
//!   carries one request, so this is the connections each worker served.
//!   The kernel counts them; nothing is added to the server's own path but
//!   the tracepoint's counter. Each run checks the counts against the
//!   connections the load generator completed. (`/proc/PID/io`'s `syscw`,
//!   which would need no perf, counts `write` and not `send`: it stays at
//!   zero for these servers.)
//! - the wake-ups: every thread's `voluntary_ctxt_switches`
//!   (`/proc/PID/task/TID/status`), summed, before and after the run: each
//!   time a thread slept (in `accept`, `epoll_wait`, a read) and was woken.
//!
//! perf needs the permission to count tracepoints (root, or
//! `kernel.perf_event_paranoid` at -1); without perf or that permission the
//! table says so, and nothing is made up.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::markdown::{Table, left, right};
use crate::render::write;
use crate::scenario::Options;
use crate::stats::median;
use testbed::procfs::group_threads;

/// Workers asked of every server: more than the cores of a small machine,
/// so that who gets woken is a choice among several idle workers.
pub const WORKERS: usize = 4;

/// One client at a time (every worker idle when a connection comes), and
/// enough at once to keep every worker busy.
const CLIENTS: [usize; 2] = [1, 32];

/// The servers, and whether each runs with `EPOLLEXCLUSIVE=0`.
const CASES: [(&str, bool); 6] = [
    ("prefork", false),
    ("threads-accept", false),
    ("epoll-reuseport", false),
    ("epoll-prefork", false),
    ("epoll-prefork", true),
    ("epoll-acceptor", false),
];

/// The results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accepts {
    pub scenario: String,
    pub command: String,
    /// The machine it ran on (absent from files written before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    pub workers: usize,
    /// Connections (one request each) per run.
    pub requests: u64,
    pub rounds: usize,
    /// Why nothing was measured, when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub runs: Vec<Run>,
    /// How long the scenario took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One run: one server, one number of clients, one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub server: String,
    /// Run with `EPOLLEXCLUSIVE=0`: every worker woken for every connection.
    pub herd: bool,
    pub clients: usize,
    pub round: usize,
    /// Connections the load generator completed.
    pub completed: u64,
    /// Responses each worker sent, worker by worker (by thread id).
    pub responses: Vec<u64>,
    /// Voluntary context switches of every thread of the server during the
    /// run, summed.
    pub wakeups: u64,
}

impl Run {
    fn label(&self) -> String {
        label(&self.server, self.herd)
    }
}

fn label(server: &str, herd: bool) -> String {
    if herd {
        format!("`{server}`, herd")
    } else {
        format!("`{server}`")
    }
}

/// Runs the scenario and writes `accepts.json`, then its table.
pub fn measure(options: &Options, command: String) -> Result<(), String> {
    let requests = if options.quick { 300 } else { 20_000 };
    let mut results = Accepts {
        scenario: "accepts".into(),
        command,
        machine: Some(Machine::read()),
        workers: WORKERS,
        requests,
        rounds: options.rounds,
        skipped: None,
        runs: Vec::new(),
        seconds: None,
    };
    let started = std::time::Instant::now();
    let packages = CASES.iter().map(|(name, _)| *name);
    let bin = testbed::release_build(packages)?;
    let scratch = std::env::temp_dir().join(format!("bench-accepts-{}", std::process::id()));
    fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let outcome = (|| {
        if let Err(why) = perf_works(&scratch) {
            results.skipped = Some(why);
            return Ok(());
        }
        for round in 1..=options.rounds {
            for (server, herd) in CASES {
                for clients in CLIENTS {
                    eprintln!(
                        "accepts: round {round}, {}, {clients} clients",
                        label(server, herd)
                    );
                    let run = one_run(&bin, &scratch, server, herd, clients, requests)?;
                    results.runs.push(Run { round, ..run });
                }
            }
        }
        Ok::<(), String>(())
    })();
    let _ = fs::remove_dir_all(&scratch);
    outcome?;
    results.seconds = Some(started.elapsed().as_secs_f64());
    fs::create_dir_all(&options.out)
        .map_err(|e| format!("creating {}: {e}", options.out.display()))?;
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    write(&options.out.join("accepts.json"), &(json + "\n"))
}

/// How long the last `accepts` took, in seconds, if its file says.
pub fn seconds(dir: &Path) -> Option<f64> {
    let json = fs::read_to_string(dir.join("accepts.json")).ok()?;
    serde_json::from_str::<Accepts>(&json).ok()?.seconds
}

/// Draws `accepts.md` from `accepts.json`, or a placeholder without it.
pub fn render(dir: &Path) -> Result<(), String> {
    let path = dir.join("accepts.json");
    let text = match fs::read_to_string(&path) {
        Err(_) => "*Not measured yet: run `cargo run --release -p bench -- accepts`.*\n".into(),
        Ok(json) => {
            let results: Accepts = serde_json::from_str(&json)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            table(&results)
        }
    };
    write(&dir.join("accepts.md"), &text)
}

/// Whether `perf stat` can count the tracepoint here: a one-second count of
/// this very process.
fn perf_works(scratch: &Path) -> Result<(), String> {
    let out = scratch.join("probe");
    let status = Command::new("perf")
        .args(["stat", "-x,", "-o"])
        .arg(&out)
        .args(["-e", "syscalls:sys_exit_sendto", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Err(e) => Err(format!("perf could not be run ({e})")),
        Ok(s) if !s.success() => Err(format!(
            "perf may not count tracepoints here ({s}; root, or \
             kernel.perf_event_paranoid at -1, is needed)"
        )),
        Ok(_) => Ok(()),
    }
}

/// One server, started afresh, loaded with `requests` connections by
/// `clients` clients at once, with perf counting its workers' responses.
fn one_run(
    bin: &Path,
    scratch: &Path,
    server: &str,
    herd: bool,
    clients: usize,
    requests: u64,
) -> Result<Run, String> {
    let program = if herd {
        without_exclusive(&bin.join(server), scratch)?
    } else {
        bin.join(server)
    };
    let s = testbed::Server::start(&program, &[&WORKERS.to_string()])
        .map_err(|e| format!("{server}: {e}"))?;
    let leader = s.pid();
    let workers = wait_for(&format!("{server}'s {WORKERS} workers"), || {
        let w = workers(leader);
        (w.len() == WORKERS).then_some(w)
    })?;
    let before = switches(leader);
    let counts = scratch.join("perf");
    let perf = Perf::attach(leader, &counts)?;

    let mut config = loadgen::Config::new(s.addr());
    config.requests = requests;
    config.concurrency = clients;
    let report = loadgen::run(&config).map_err(|e| format!("loadgen: {e}"))?;

    let sent = perf.finish(&counts)?;
    let wakeups = switches(leader).saturating_sub(before);
    let _ = s.stop(Duration::from_secs(5));
    Ok(Run {
        server: server.into(),
        herd,
        clients,
        round: 0,
        completed: report.completed,
        responses: workers
            .iter()
            .map(|tid| sent.get(tid).copied().unwrap_or(0))
            .collect(),
        wakeups,
    })
}

/// A script that runs `program` with `EPOLLEXCLUSIVE=0` in its environment
/// (`exec`: the server keeps the script's process).
fn without_exclusive(program: &Path, scratch: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let script = scratch.join("herd.sh");
    let body = format!(
        "#!/bin/sh\nEPOLLEXCLUSIVE=0 exec '{}' \"$@\"\n",
        program.display()
    );
    fs::write(&script, body)
        .and_then(|()| fs::set_permissions(&script, fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("writing {}: {e}", script.display()))?;
    Ok(script)
}

/// Calls `ready` until it gives something, for at most five seconds.
fn wait_for<T>(what: &str, ready: impl FnMut() -> Option<T>) -> Result<T, String> {
    testbed::wait_for(what, Duration::from_secs(5), ready)
}

/// The server's workers, by thread id: every thread but the first of the
/// process that leads the group (the parent, or the main thread that waits
/// for the others) and the thread that only accepts (`epoll-acceptor`'s).
fn workers(leader: u32) -> Vec<u32> {
    group_threads(leader)
        .into_iter()
        .filter(|t| t.tid != leader && t.name != "acceptor")
        .map(|t| t.tid)
        .collect()
}

/// Voluntary context switches of every thread of the group, summed.
fn switches(leader: u32) -> u64 {
    group_threads(leader)
        .iter()
        .map(|t| t.voluntary_switches)
        .sum()
}

/// `perf stat`, counting the responses of every thread of the group.
struct Perf {
    child: Child,
}

impl Perf {
    fn attach(leader: u32, out: &Path) -> Result<Perf, String> {
        let pids: Vec<String> = testbed::procfs::group_members(leader)
            .iter()
            .map(u32::to_string)
            .collect();
        let threads = group_threads(leader).len();
        let child = Command::new("perf")
            .args(["stat", "--per-thread", "-x,", "-o"])
            .arg(out)
            .args(["-e", "syscalls:sys_exit_sendto", "--filter", "ret > 0"])
            .args(["-p", &pids.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e}"))?;
        let perf = Perf { child };
        // Counting starts once perf holds a counter for every thread.
        let id = perf.child.id();
        wait_for("perf to attach", || (counters(id) >= threads).then_some(()))?;
        Ok(perf)
    }

    /// Stops perf (SIGINT, as Ctrl-C) and reads its counts, by thread id.
    fn finish(mut self, out: &Path) -> Result<BTreeMap<u32, u64>, String> {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGINT);
        let status = self.child.wait().map_err(|e| format!("perf: {e}"))?;
        // perf writes its counts, then ends itself with the SIGINT it got,
        // as a program stopped by Ctrl-C should.
        use std::os::unix::process::ExitStatusExt;
        if !status.success() && status.signal() != Some(Signal::SIGINT as i32) {
            return Err(format!("perf stat failed ({status})"));
        }
        let text = fs::read_to_string(out).map_err(|e| format!("perf's output: {e}"))?;
        Ok(parse_perf(&text))
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        // Only if `finish` was never reached: then it is still running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How many perf counters process `pid` holds open.
fn counters(pid: u32) -> usize {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("perf_event"))
        })
        .count()
}

/// `perf stat -x, --per-thread` lines: `COMM-TID,COUNT,UNIT,EVENT,...`.
fn parse_perf(text: &str) -> BTreeMap<u32, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split(',');
        let (Some(task), Some(count)) = (fields.next(), fields.next()) else {
            continue;
        };
        let tid = task.rsplit_once('-').and_then(|(_, t)| t.parse().ok());
        if let (Some(tid), Ok(count)) = (tid, count.parse::<u64>()) {
            *counts.entry(tid).or_default() += count;
        }
    }
    counts
}

/// The medians over the rounds of one server with one number of clients.
struct Row {
    label: String,
    server: String,
    herd: bool,
    clients: usize,
    /// The fewest, median and most responses of one worker, as shares of
    /// all the responses.
    fewest: f64,
    middle: f64,
    most: f64,
    wakeups: f64,
}

fn rows(results: &Accepts) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (server, herd) in CASES {
        for clients in CLIENTS {
            let runs: Vec<&Run> = results
                .runs
                .iter()
                .filter(|r| r.server == server && r.herd == herd && r.clients == clients)
                .filter(|r| r.completed > 0)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let shares = |pick: fn(&[f64]) -> f64| {
                median(
                    runs.iter()
                        .map(|r| {
                            let total = r.responses.iter().sum::<u64>().max(1) as f64;
                            let mut s: Vec<f64> =
                                r.responses.iter().map(|&n| n as f64 / total).collect();
                            s.sort_by(f64::total_cmp);
                            pick(&s)
                        })
                        .collect(),
                )
            };
            rows.push(Row {
                label: runs[0].label(),
                server: server.into(),
                herd,
                clients,
                fewest: shares(|s| s[0]),
                middle: shares(|s| median(s.to_vec())),
                most: shares(|s| s[s.len() - 1]),
                wakeups: median(
                    runs.iter()
                        .map(|r| r.wakeups as f64 / r.completed as f64)
                        .collect(),
                ),
            });
        }
    }
    rows
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// The table, what it shows in generated sentences, and how to reproduce it.
fn table(results: &Accepts) -> String {
    let machine = match &results.machine {
        Some(m) => format!("Measured on {}. ", m.describe()),
        None => String::new(),
    };
    let reproduce = format!("{machine}Reproduce with `{}`.", results.command);
    if let Some(why) = &results.skipped {
        return format!("*Not measured: {why}.* {reproduce}\n");
    }
    let rows = rows(results);
    let mut t = Table::new([
        left("Server"),
        right("Clients"),
        right("Fewest"),
        right("Median"),
        right("Most"),
        right("Wake-ups per conn."),
    ]);
    for r in &rows {
        t.row([
            r.label.clone(),
            r.clients.to_string(),
            percent(r.fewest),
            percent(r.middle),
            percent(r.most),
            format!("{:.2}", r.wakeups),
        ]);
    }
    let mut text = t.finish();
    text += &format!(
        "\nThe share of the responses sent by the worker that sent the fewest, \
         the median worker and the one that sent the most, of {} workers \
         ({} % each if shared evenly), and the server's wake-ups (voluntary \
         context switches, every thread) per connection; {} connections per \
         run, a new one per request; medians of {} rounds. *herd*: run with \
         `EPOLLEXCLUSIVE=0`. {reproduce}\n",
        results.workers,
        100 / results.workers.max(1),
        results.requests,
        results.rounds,
    );
    let counted = results
        .runs
        .iter()
        .filter(|r| r.responses.iter().sum::<u64>() == r.completed)
        .count();
    text += &format!(
        "\nResponses counted by perf equal the connections completed in {counted} \
         of {} runs.\n",
        results.runs.len()
    );
    text += &verdicts(&rows);
    text
}

/// What the figures say, in sentences computed from them.
fn verdicts(rows: &[Row]) -> String {
    let find = |server: &str, herd: bool, clients: usize| {
        rows.iter()
            .find(|r| r.server == server && r.herd == herd && r.clients == clients)
    };
    let light = CLIENTS[0];
    let mut text = String::new();
    if let (Some(one), Some(herd)) = (
        find("epoll-prefork", false, light),
        find("epoll-prefork", true, light),
    ) {
        text += &format!(
            "\nOne client at a time, `epoll-prefork` was woken {:.2} times per \
             connection with `EPOLLEXCLUSIVE`, and {:.2} times without it.",
            one.wakeups, herd.wakeups
        );
    }
    if let (Some(epoll), Some(prefork)) = (
        find("epoll-prefork", false, light),
        find("prefork", false, light),
    ) {
        let (busiest, even) = if epoll.most > prefork.most {
            ("`epoll-prefork`", "`prefork`")
        } else {
            ("`prefork`", "`epoll-prefork`")
        };
        text += &format!(
            " Its busiest worker sent {} of the responses, against {} for \
             `prefork`'s blocking `accept`: the load is less even under \
             {busiest} than under {even}.",
            percent(epoll.most),
            percent(prefork.most)
        );
    }
    if !text.is_empty() {
        text += "\n";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_lines_by_thread() {
        let text = "# started on\n\nprefork-20071,476,,syscalls:sys_exit_sendto,1,100.00,,\n\
                    loop-0-12,3,,syscalls:sys_exit_sendto,1,100.00,,\n\
                    x-9,<not counted>,,syscalls:sys_exit_sendto,0,100.00,,\n";
        let counts = parse_perf(text);
        assert_eq!(counts.get(&20071), Some(&476));
        assert_eq!(counts.get(&12), Some(&3));
        assert_eq!(counts.get(&9), None);
    }

    #[test]
    fn a_table_with_shares_and_verdicts() {
        let run = |server: &str, herd, clients, responses: Vec<u64>, wakeups| Run {
            server: server.into(),
            herd,
            clients,
            round: 1,
            completed: responses.iter().sum(),
            responses,
            wakeups,
        };
        let results = Accepts {
            scenario: "accepts".into(),
            command: "cargo run --release -p bench -- accepts".into(),
            machine: None,
            workers: 4,
            requests: 100,
            rounds: 1,
            skipped: None,
            runs: vec![
                run("prefork", false, 1, vec![25, 25, 25, 25], 200),
                run("epoll-prefork", false, 1, vec![97, 1, 1, 1], 100),
                run("epoll-prefork", true, 1, vec![25, 25, 25, 25], 400),
            ],
            seconds: None,
        };
        let text = table(&results);
        assert!(
            text.contains("| `epoll-prefork` | 1 | 1 % | 1 % | 97 % | 1.00 |"),
            "{text}"
        );
        assert!(
            text.contains("| `epoll-prefork`, herd | 1 | 25 % |"),
            "{text}"
        );
        assert!(text.contains("1.00 times per connection with `EPOLLEXCLUSIVE`, and 4.00"));
        assert!(text.contains("in 3 of 3 runs"));
        assert!(text.contains("less even under `epoll-prefork` than under `prefork`"));
    }
}
