//! One measurement: run one client against a running server as a child
//! process, read what both cost and what the kernel's TCP counters say,
//! and watch the server's memory meanwhile (and stop it for a moment, if
//! the load asks).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use testbed::netstat::Counters;

use crate::results::{JsonLatency, Mode, OpenLoopFigures, Sample};
use crate::target::Target;
use testbed::procfs::{self, Usage};

/// How often the server's memory is read during a run.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How often we look whether the client is done.
const POLL: Duration = Duration::from_millis(5);

/// A load client, run as a child process so that its CPU time can be read
/// the same way for all of them.
#[derive(Debug, Clone)]
pub enum Client {
    /// ApacheBench, as the post used it: one thread.
    Ab,
    /// The book's load generator (the path of its release binary) with
    /// `threads` threads (`None`: its default, one per core and at most
    /// one per connection), called `name` in the tables. With a rate in
    /// the load, open loop.
    Loadgen {
        path: PathBuf,
        threads: Option<usize>,
        name: String,
    },
    /// wrk with two threads, running for a fixed time.
    Wrk,
    /// oha (a Rust load generator on tokio): closed loop for a number of
    /// requests, or with a rate in the load, at that rate for a fixed
    /// time with its latency correction.
    Oha,
    /// wrk2, wrk with a constant rate (`-R`) and corrected latencies:
    /// open loop only.
    Wrk2,
}

/// What to ask of a client.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub mode: Mode,
    pub concurrency: usize,
    /// Requests in all (`ab`, `oha` and the load generator in closed loop;
    /// 0: the load generator runs for `seconds` instead).
    pub requests: u64,
    /// How long to run (`wrk`, and every client in open loop).
    pub seconds: u64,
    /// Open loop: requests per second in all.
    pub rate: Option<f64>,
    /// Stop the server (SIGSTOP to its process group) this long after the
    /// client starts, for this long.
    pub pause: Option<(Duration, Duration)>,
    /// The most one request of the load generator may take.
    pub timeout: Duration,
    /// The most the client may run before it is killed and the run counted
    /// as failed: a server that hangs must not hang the benchmark.
    pub limit: Duration,
    /// The request target: `/`, or work for the server to do first
    /// (`/cpu/N`, `/sleep/N`; the load generator only).
    pub path: &'static str,
}

impl Client {
    /// The book's load generator with its default threads.
    pub fn loadgen(path: PathBuf) -> Client {
        Client::Loadgen {
            path,
            threads: None,
            name: "loadgen".into(),
        }
    }

    /// The load generator with `threads` threads, named `name`.
    pub fn loadgen_threads(path: PathBuf, threads: usize, name: impl Into<String>) -> Client {
        Client::Loadgen {
            path,
            threads: Some(threads),
            name: name.into(),
        }
    }

    /// How the tables name it; open loop (a rate in the load) is a client
    /// of its own: `loadgen --rate`, `oha -q`, `wrk2 -R`.
    pub fn name(&self, load: &Load) -> String {
        let open = load.rate.is_some();
        match self {
            Client::Ab => "ab".into(),
            Client::Loadgen { name, .. } => name.clone(),
            Client::Wrk => "wrk".into(),
            Client::Oha if open => "oha -q".into(),
            Client::Oha => "oha".into(),
            Client::Wrk2 => "wrk2 -R".into(),
        }
    }

    /// The program it runs.
    fn program(&self) -> PathBuf {
        match self {
            Client::Ab => "ab".into(),
            Client::Loadgen { path, .. } => path.clone(),
            Client::Wrk => "wrk".into(),
            Client::Oha => "oha".into(),
            Client::Wrk2 => "wrk2".into(),
        }
    }

    /// Whether the client's program can be found.
    pub fn installed(&self) -> bool {
        match self {
            Client::Loadgen { path, .. } => path.is_file(),
            other => on_path(&other.program()),
        }
    }

    /// The threads it runs, where its command line decides (the load
    /// generator reports its own).
    fn threads(&self, cores: usize) -> Option<usize> {
        match self {
            Client::Ab => Some(1),
            Client::Wrk | Client::Wrk2 => Some(2),
            // tokio's runtime: a worker thread per core.
            Client::Oha => Some(cores),
            Client::Loadgen { .. } => None,
        }
    }

    /// The program and its arguments against `url`; `any`: accept any
    /// well-formed 2xx response (the load generator checks bytes).
    fn command(&self, url: &str, load: &Load, any: bool) -> (PathBuf, Vec<String>) {
        let (n, c) = (load.requests.to_string(), load.concurrency.to_string());
        let secs = load.seconds.to_string();
        let rate = load.rate.map(|r| format!("{r:.0}"));
        let keep_alive = load.mode == Mode::KeepAlive;
        let mut args: Vec<String> = Vec::new();
        let mut add = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
        match self {
            Client::Ab => {
                add(&["-q", "-n", &n, "-c", &c]);
                if keep_alive {
                    add(&["-k"]);
                }
            }
            Client::Loadgen { threads, .. } => {
                let timeout = format!("{}", load.timeout.as_secs_f64());
                add(&["--json"]);
                match &rate {
                    Some(r) => add(&["--rate", r, "-d", &secs]),
                    // Closed loop for a time rather than a count.
                    None if load.requests == 0 => add(&["-d", &secs]),
                    None => add(&["-n", &n]),
                }
                add(&["-c", &c, "-s", &timeout]);
                if let Some(t) = threads {
                    add(&["-t", &t.to_string()]);
                }
                if keep_alive {
                    add(&["-k"]);
                }
                if any {
                    add(&["--any"]);
                }
            }
            Client::Wrk | Client::Wrk2 => {
                add(&["-t2", "-c", &c, "-d", &format!("{secs}s")]);
                if let (Client::Wrk2, Some(r)) = (self, &rate) {
                    add(&["-R", r]);
                }
                add(&["--latency"]);
                if !keep_alive {
                    add(&["-H", "Connection: close"]);
                }
            }
            Client::Oha => {
                match &rate {
                    // -w: the requests in flight at the end are waited
                    // for, not counted as errors.
                    Some(r) => add(&[
                        "-z",
                        &format!("{secs}s"),
                        "-q",
                        r,
                        "--latency-correction",
                        "-w",
                    ]),
                    None => add(&["-n", &n]),
                }
                add(&["-c", &c, "--no-tui", "--output-format", "json"]);
                if !keep_alive {
                    add(&["--disable-keepalive"]);
                }
            }
        }
        args.push(url.to_string());
        (self.program(), args)
    }
}

/// Whether `program` is in a directory of the PATH.
fn on_path(program: &Path) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// A command line as a reader would type it: the workspace's binaries by
/// their path from the workspace root, arguments quoted where the shell
/// needs it.
pub fn shell_line(program: &Path, args: &[String]) -> String {
    let root = testbed::workspace();
    let program = program
        .strip_prefix(&root)
        .or_else(|_| {
            // The root path holds "..": compare the canonical forms.
            let root = root.canonicalize()?;
            program.strip_prefix(root).map_err(io::Error::other)
        })
        .unwrap_or(program);
    let mut words = vec![program.display().to_string()];
    for arg in args {
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
        words.push(if plain {
            arg.clone()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        });
    }
    words.join(" ")
}

/// The server's memory over a run: the last reading and the largest.
#[derive(Default)]
struct Watch {
    last: Option<Usage>,
    peak: Option<Usage>,
}

impl Watch {
    fn read(&mut self, pid: u32) -> Option<Usage> {
        let usage = procfs::usage(pid)?;
        let peak = self.peak.get_or_insert(usage);
        peak.pss = peak.pss.max(usage.pss);
        peak.threads = peak.threads.max(usage.threads);
        peak.processes = peak.processes.max(usage.processes);
        Some(usage)
    }
}

/// What a run needs of the server it loads: where it listens, and the
/// process group whose CPU time it reads (and which it may stop).
pub trait Served {
    /// The leader of the server's process group.
    fn pid(&self) -> u32;
    fn url(&self) -> String;
    /// Whether the load generator should accept any well-formed 2xx
    /// response rather than the book's bytes.
    fn any_response(&self) -> bool;
}

impl Served for Target {
    fn pid(&self) -> u32 {
        Target::pid(self)
    }

    fn url(&self) -> String {
        Target::url(self)
    }

    fn any_response(&self) -> bool {
        Target::any_response(self)
    }
}

/// A server stopped for a moment during a run: SIGSTOP at `at`, SIGCONT
/// `length` later, both to its whole process group.
struct Pause {
    group: Pid,
    at: Duration,
    length: Duration,
    stopped: Option<Instant>,
    lasted: Option<Duration>,
}

impl Pause {
    fn new(pid: u32, (at, length): (Duration, Duration)) -> Pause {
        Pause {
            group: Pid::from_raw(pid as i32),
            at,
            length,
            stopped: None,
            lasted: None,
        }
    }

    /// Stops or continues the server if it is time.
    fn tick(&mut self, since_start: Duration) {
        match self.stopped {
            None if since_start >= self.at && killpg(self.group, Signal::SIGSTOP).is_ok() => {
                self.stopped = Some(Instant::now());
            }
            Some(t) if self.lasted.is_none() && t.elapsed() >= self.length => self.resume(),
            _ => {}
        }
    }

    /// Continues the server if it is stopped: always before the run ends.
    fn resume(&mut self) {
        if let (Some(t), None) = (self.stopped, self.lasted) {
            let _ = killpg(self.group, Signal::SIGCONT);
            self.lasted = Some(t.elapsed());
        }
    }
}

/// Runs `client` against `server` with `load`, filling in `sample`. A run
/// that fails as a run (the client missing, killed at its limit, its
/// output unreadable) is recorded in the sample, not returned as an error.
pub fn measure(server: &impl Served, client: &Client, load: &Load, sample: &mut Sample) {
    let url = server.url() + load.path.trim_start_matches('/');
    let (program, args) = client.command(&url, load, server.any_response());
    sample.command = shell_line(&program, &args);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    sample.cores = Some(cores);
    sample.client_threads = client.threads(cores);
    let pid = server.pid();
    let Ok(server_before) = procfs::group_cpu_time(pid).map(|t| t.as_secs_f64()) else {
        sample.error = Some("the server was gone before the run".into());
        return;
    };
    let system_before = procfs::group_system_time(pid).ok();
    let kernel_before = Counters::read().ok();
    let children_before = children_cpu();
    let started = Instant::now();
    let child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            sample.installed = false;
            return;
        }
        Err(e) => {
            sample.error = Some(format!("running {}: {e}", sample.client));
            return;
        }
    };
    // Read its output on the side, so that it never blocks on a full pipe.
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let mut watch = Watch::default();
    let mut pause = load.pause.map(|p| Pause::new(pid, p));
    let mut next_read = started + SAMPLE_EVERY;
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        let now = Instant::now();
        if let Some(p) = &mut pause {
            p.tick(now.duration_since(started));
        }
        if now >= next_read {
            if let Some(usage) = watch.read(pid) {
                watch.last = Some(usage);
            }
            next_read = now + SAMPLE_EVERY;
        }
        if !killed && now.duration_since(started) > load.limit {
            killed = true;
            let _ = child.kill();
        }
        thread::sleep(POLL);
    };
    let wall = started.elapsed();
    if let Some(p) = &mut pause {
        p.resume();
        sample.pause = p.lasted.map(|d| d.as_secs_f64());
    }
    sample.client_cpu = (children_cpu() - children_before).max(0.0);
    if let (Some(before), Ok(after)) = (kernel_before, Counters::read()) {
        sample.kernel = Some(after.since(&before));
    }
    match procfs::group_cpu_time(pid).map(|t| t.as_secs_f64()) {
        Ok(after) => sample.server_cpu = (after - server_before).max(0.0),
        Err(_) => sample.error = Some("the server exited during the run".into()),
    }
    if let (Some(before), Ok(after)) = (system_before, procfs::group_system_time(pid)) {
        sample.server_system_cpu = Some((after - before).as_secs_f64().max(0.0));
    }
    // Right after the load: the reading for a load too short to be read
    // during (the connections may be closed by now).
    let after = watch.read(pid);
    let usage = watch.last.or(after);
    sample.pss = usage.map(|u| u.pss);
    sample.pss_peak = watch.peak.map(|u| u.pss);
    sample.threads_peak = watch.peak.map(|u| u.threads);
    sample.processes_peak = watch.peak.map(|u| u.processes);

    let output = Output {
        status: match status {
            Ok(status) => status,
            Err(e) => {
                sample.error = Some(format!("waiting for {}: {e}", sample.client));
                return;
            }
        },
        stdout: stdout
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
        stderr: stderr
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default(),
    };
    if killed {
        sample.error = Some(format!(
            "{} was still running after {:?} and was killed",
            sample.client, load.limit
        ));
        return;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed = match client {
        Client::Ab => parse_ab(&text, sample),
        Client::Loadgen { .. } => parse_loadgen(&text, sample),
        Client::Wrk | Client::Wrk2 => parse_wrk(&text, sample),
        Client::Oha => parse_oha(&text, sample),
    };
    if let (Ok(()), Some(rate)) = (&parsed, load.rate) {
        open_loop_of_peer(client, rate, sample);
    }
    if let Err(e) = parsed {
        let stderr = String::from_utf8_lossy(&output.stderr);
        sample.error = Some(format!(
            "{} ({}): {e}: {}",
            sample.client,
            output.status,
            stderr.trim()
        ));
        return;
    }
    if sample.elapsed == 0.0 {
        sample.elapsed = wall.as_secs_f64();
    }
}

/// A peer's open-loop figures: the rate asked, the rate it completed, and
/// its latencies, which in its rate mode it corrects for coordinated
/// omission (oha with `--latency-correction`, wrk2 always): they are
/// moved from the uncorrected fields, which it did not measure, to the
/// corrected ones.
fn open_loop_of_peer(client: &Client, rate: f64, s: &mut Sample) {
    if matches!(client, Client::Loadgen { .. }) {
        return;
    }
    let corrected = s.p50.map(|p50| JsonLatency {
        p50,
        p90: s.p90.unwrap_or(f64::NAN),
        p99: s.p99.unwrap_or(f64::NAN),
        p999: s.p999.unwrap_or(f64::NAN),
        max: s.max.unwrap_or(f64::NAN),
    });
    (s.p50, s.p90, s.p99, s.p999, s.max) = (None, None, None, None, None);
    s.open_loop = Some(OpenLoopFigures {
        rate_asked: rate,
        rate_achieved: s.requests_per_sec,
        unsent: 0,
        corrected,
        send_delay: None,
        schedule_lag: None,
    });
}

fn reader(mut pipe: impl io::Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// The load generator's own human report of one run against `target`.
pub fn loadgen_report(loadgen: &Path, target: &Target, load: &Load) -> Result<String, String> {
    let output = Command::new(loadgen)
        .args(["-n", &load.requests.to_string()])
        .args(["-c", &load.concurrency.to_string()])
        .arg(target.url())
        .output()
        .map_err(|e| format!("running loadgen: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// User plus system time, in seconds, of every child process we have
/// waited for.
fn children_cpu() -> f64 {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return 0.0;
    };
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

/// The first number after `label` on the line that starts with it.
fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|word| word.parse().ok())
}

fn parse_ab(text: &str, s: &mut Sample) -> Result<(), String> {
    let complete = field(text, "Complete requests:").ok_or("no Complete requests")?;
    let failed = field(text, "Failed requests:").ok_or("no Failed requests")?;
    let non_2xx = field(text, "Non-2xx responses:").unwrap_or(0.0);
    s.failed = (failed + non_2xx) as u64;
    s.requests = complete as u64;
    s.completed = s.requests.saturating_sub(s.failed);
    if failed > 0.0 {
        s.failures.insert("failed".into(), failed as u64);
    }
    if non_2xx > 0.0 {
        s.failures.insert("non-2xx".into(), non_2xx as u64);
    }
    s.elapsed = field(text, "Time taken for tests:").ok_or("no time taken")?;
    s.requests_per_sec = s.completed as f64 / s.elapsed.max(1e-9);
    // ab reports percentiles in whole milliseconds; 100% is the longest.
    let ms = |label| field(text, label).map(|ms| ms / 1e3);
    s.p50 = ms("50%");
    s.p90 = ms("90%");
    s.p99 = ms("99%");
    s.max = ms("100%");
    Ok(())
}

/// The load generator's JSON report (`loadgen --json`).
fn parse_loadgen(text: &str, s: &mut Sample) -> Result<(), String> {
    let r: loadgen::JsonReport =
        serde_json::from_str(text.trim()).map_err(|e| format!("not its JSON report: {e}"))?;
    s.requests = r.requests;
    s.completed = r.completed;
    s.failed = s.requests.saturating_sub(s.completed);
    for (kind, n) in r.failures.by_kind() {
        if n > 0 {
            s.failures.insert(kind.into(), n);
        }
    }
    s.connections = Some(r.connections);
    s.elapsed = r.elapsed;
    s.requests_per_sec = s.completed as f64 / s.elapsed.max(1e-9);
    // No latency without a completed request.
    if s.completed > 0 {
        let l = r.latency;
        (s.p50, s.p90, s.p99, s.p999, s.max) = (
            Some(l.p50),
            Some(l.p90),
            Some(l.p99),
            Some(l.p999),
            Some(l.max),
        );
    }
    s.client_threads = Some(r.threads);
    s.fairness = Some(r.per_connection);
    if r.open_loop {
        s.open_loop = Some(OpenLoopFigures {
            rate_asked: r.rate_asked.unwrap_or_default(),
            rate_achieved: r.rate_achieved.unwrap_or_default(),
            unsent: r.unsent,
            corrected: r.corrected.filter(|_| s.completed > 0),
            send_delay: r.send_delay,
            schedule_lag: r.schedule_lag,
        });
    }
    Ok(())
}

/// oha's JSON report (`--output-format json`): the summary's time, the
/// responses by status, the errors by kind, and the latency percentiles.
fn parse_oha(text: &str, s: &mut Sample) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    s.elapsed = v
        .pointer("/summary/total")
        .and_then(serde_json::Value::as_f64)
        .ok_or("no summary.total")?;
    let statuses = v
        .get("statusCodeDistribution")
        .and_then(|d| d.as_object())
        .ok_or("no statusCodeDistribution")?;
    let mut completed = 0;
    for (status, n) in statuses {
        let n = n.as_u64().unwrap_or(0);
        if status.starts_with('2') {
            completed += n;
        } else if n > 0 {
            *s.failures.entry(format!("status {status}")).or_default() += n;
        }
    }
    if let Some(errors) = v.get("errorDistribution").and_then(|d| d.as_object()) {
        for (error, n) in errors {
            let n = n.as_u64().unwrap_or(0);
            if n > 0 {
                *s.failures.entry(error.clone()).or_default() += n;
            }
        }
    }
    s.completed = completed;
    s.failed = s.failures.values().sum();
    s.requests = s.completed + s.failed;
    s.requests_per_sec = s.completed as f64 / s.elapsed.max(1e-9);
    if completed > 0 {
        let p = |name: &str| {
            v.pointer(&format!("/latencyPercentiles/{name}"))
                .and_then(serde_json::Value::as_f64)
        };
        (s.p50, s.p90, s.p99, s.p999) = (p("p50"), p("p90"), p("p99"), p("p99.9"));
        s.max = v
            .pointer("/summary/slowest")
            .and_then(serde_json::Value::as_f64);
    }
    Ok(())
}

fn parse_wrk(text: &str, s: &mut Sample) -> Result<(), String> {
    // "  123456 requests in 5.00s, 8.13MB read"
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .ok_or("no request count")?;
    let mut words = line.split_whitespace();
    let total: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("bad count")?;
    let mut failed = 0;
    for l in text.lines().map(str::trim_start) {
        // "Socket errors: connect 0, read 12, write 0, timeout 0"
        if let Some(rest) = l.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                let mut kv = part.split_whitespace();
                if let (Some(k), Some(Ok(n))) = (kv.next(), kv.next().map(str::parse::<u64>)) {
                    if n > 0 {
                        s.failures.insert(k.to_string(), n);
                    }
                    failed += n;
                }
            }
        }
        if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
            let n: u64 = rest.trim().parse().map_err(|_| "bad Non-2xx count")?;
            s.failures.insert("non-2xx".into(), n);
            failed += n;
        }
    }
    // wrk counts a request whose read or write failed among its errors, not
    // in its total: both together are what it attempted.
    s.failed = failed;
    s.completed = total.saturating_sub(s.failures.get("non-2xx").copied().unwrap_or(0));
    s.requests = total + failed - s.failures.get("non-2xx").copied().unwrap_or(0);
    s.elapsed = words
        .nth(2)
        .and_then(|w| parse_wrk_time(w.trim_end_matches(',')))
        .ok_or("bad duration")?;
    s.requests_per_sec = s.completed as f64 / s.elapsed.max(1e-9);
    let percentile = |label: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|w| parse_wrk_time(w.trim()))
    };
    // wrk's "99%", wrk2's "99.000%".
    let either = |short: &str, long: &str| percentile(short).or_else(|| percentile(long));
    s.p50 = either("50%", "50.000%");
    s.p90 = either("90%", "90.000%");
    s.p99 = either("99%", "99.000%");
    s.p999 = percentile("99.900%");
    // "    Latency   245.26us  133.51us   6.89ms   93.45%": avg, stdev, max.
    s.max = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Latency "))
        .and_then(|rest| rest.split_whitespace().nth(2))
        .and_then(parse_wrk_time);
    Ok(())
}

/// wrk's times: "5.00s", "1.23ms", "456.00us", "2.00m".
fn parse_wrk_time(word: &str) -> Option<f64> {
    let split = word.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = word.split_at(split);
    let value: f64 = value.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        Sample::new("linear", "x", Mode::Close, 8, 0)
    }

    #[test]
    fn wrk_times() {
        assert_eq!(parse_wrk_time("5.00s"), Some(5.0));
        assert_eq!(parse_wrk_time("250.00us"), Some(250e-6));
        assert_eq!(parse_wrk_time("1.50ms"), Some(1.5e-3));
        assert_eq!(parse_wrk_time("fast"), None);
    }

    #[test]
    fn ab_output() {
        let text = "Complete requests:      1000\nFailed requests:        2\n\
                    Time taken for tests:   0.500 seconds\n  50%      0\n  90%      1\n  \
                    99%      2\n 100%     12 (longest request)\n";
        let mut s = sample();
        parse_ab(text, &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (1000, 998, 2));
        assert_eq!(s.requests_per_sec, 1996.0);
        assert_eq!((s.p99, s.max), (Some(0.002), Some(0.012)));
    }

    #[test]
    fn wrk_output() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    \
            Latency   245.26us  133.51us   6.89ms   93.45%\n  Latency Distribution\n     \
            50%  220.00us\n     90%  300.00us\n     99%  700.00us\n  \
            100000 requests in 5.00s, 8.13MB read\n  \
            Socket errors: connect 0, read 3, write 0, timeout 1\n\
            Requests/sec:  20000.00\n";
        let mut s = sample();
        parse_wrk(text, &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (100_004, 100_000, 4));
        assert_eq!(s.failures.get("read"), Some(&3));
        assert_eq!(s.elapsed, 5.0);
        assert!((s.max.unwrap() - 6.89e-3).abs() < 1e-12);
        assert!((s.p90.unwrap() - 300e-6).abs() < 1e-12);
    }

    /// Captured from `loadgen --json -n 2000 -c 8 -k` against the epoll
    /// listing.
    const LOADGEN_CLOSED: &str = r#"{"requests":2000,"completed":2000,"failures":{"connect":0,"write":0,"read":0,"length":0,"status":0,"mismatch":0,"timeout":0},"connections":8,"elapsed":0.026130006,"bytes":148000,"body_bytes":22000,"latency":{"p50":0.000075903,"p90":0.000120319,"p99":0.000643583,"p999":0.004251647,"max":0.004294226},"cpu":0.021348,"concurrency":8,"threads":2,"keep_alive":true,"requests_per_sec":76540.35747255474,"cpu_per_request":0.000010674,"bound":{"requests":2000,"duration":null},"open_loop":false,"rate_asked":null,"rate_achieved":null,"unsent":0,"corrected":null,"send_delay":null,"schedule_lag":null,"per_connection":{"min":170,"median":171,"max":331}}"#;

    /// Captured from `loadgen --json --rate 2000 -d 1 -c 8 -k`, the same.
    const LOADGEN_OPEN: &str = r#"{"requests":2000,"completed":2000,"failures":{"connect":0,"write":0,"read":0,"length":0,"status":0,"mismatch":0,"timeout":0},"connections":8,"elapsed":0.999706189,"bytes":148000,"body_bytes":22000,"latency":{"p50":0.000048095,"p90":0.000066047,"p99":0.001288191,"p999":0.003586047,"max":0.004308221},"cpu":0.085627,"concurrency":8,"threads":2,"keep_alive":true,"requests_per_sec":2000.5877947005488,"cpu_per_request":0.000042813,"bound":{"requests":null,"duration":1.0},"open_loop":true,"rate_asked":2000.0,"rate_achieved":1999.9724043807646,"unsent":0,"corrected":{"p50":0.000063871,"p90":0.000226815,"p99":0.006766591,"p999":0.012992511,"max":0.013978194},"send_delay":{"p50":0.000015775,"p90":0.000024623,"p99":0.006615039,"p999":0.012804095,"max":0.013760115},"schedule_lag":{"p50":0.000015663,"p90":0.000022431,"p99":0.002957311,"p999":0.012804095,"max":0.013760115},"per_connection":{"min":249,"median":250,"max":251}}"#;

    #[test]
    fn loadgen_output() {
        let mut s = sample();
        parse_loadgen(LOADGEN_CLOSED, &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (2000, 2000, 0));
        assert!(s.failures.is_empty());
        assert_eq!((s.connections, s.client_threads), (Some(8), Some(2)));
        assert_eq!(s.p999, Some(0.004251647));
        assert_eq!(s.fairness.unwrap().max, 331);
        assert!(s.open_loop.is_none());

        let mut s = sample();
        parse_loadgen(LOADGEN_OPEN, &mut s).unwrap();
        let open = s.open_loop.unwrap();
        assert_eq!(open.rate_asked, 2000.0);
        assert!((open.rate_achieved - 2000.0).abs() < 1.0);
        assert_eq!(open.corrected.unwrap().p99, 0.006766591);
        assert_eq!(open.schedule_lag.unwrap().p50, 0.000015663);
        // Failures by kind, and no latency without a completed request.
        let failed = LOADGEN_CLOSED
            .replace(r#""completed":2000"#, r#""completed":0"#)
            .replace(r#""timeout":0"#, r#""timeout":2000"#);
        let mut s = sample();
        parse_loadgen(&failed, &mut s).unwrap();
        assert_eq!((s.failed, s.failures.get("timeout")), (2000, Some(&2000)));
        assert_eq!(s.p50, None);
        assert!(parse_loadgen("{}", &mut sample()).is_err());
    }

    /// What the peers printed in real runs against the epoll listing
    /// (`tools/bench/fixtures/output/`).
    fn output(name: &str) -> String {
        let path = testbed::workspace()
            .join("tools/bench/fixtures/output")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn real_outputs() {
        // ab -q -n 2000 -c 8
        let mut s = sample();
        parse_ab(&output("ab.txt"), &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (2000, 2000, 0));
        assert_eq!((s.p99, s.max), (Some(0.002), Some(0.011)));
        // wrk -t2 -c 8 -d 1s --latency -H 'Connection: close'
        let mut s = sample();
        parse_wrk(&output("wrk.txt"), &mut s).unwrap();
        assert_eq!((s.completed, s.failed, s.elapsed), (11218, 0, 1.0));
        assert!((s.p99.unwrap() - 15.58e-3).abs() < 1e-12);
        assert!((s.max.unwrap() - 28.53e-3).abs() < 1e-12);
        // oha -n 2000 -c 8 --no-tui --output-format json --disable-keepalive
        let mut s = sample();
        parse_oha(&output("oha-closed.json"), &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (2000, 2000, 0));
        assert_eq!(s.elapsed, 0.207340642);
        assert_eq!((s.p99, s.max), (Some(0.007130967), Some(0.068604823)));
        assert!(s.p999.is_some() && s.open_loop.is_none());
        // oha -z 1s -q 2000 --latency-correction -w -c 8 ...: its
        // latencies are the corrected ones.
        let mut s = sample();
        parse_oha(&output("oha-open.json"), &mut s).unwrap();
        open_loop_of_peer(&Client::Oha, 2000.0, &mut s);
        assert_eq!((s.completed, s.failed, s.p99), (1922, 0, None));
        let open = s.open_loop.unwrap();
        assert_eq!(open.rate_asked, 2000.0);
        assert_eq!(open.corrected.unwrap().p99, 0.288266327);
        assert!((open.rate_achieved - 1922.0 / 1.161228432).abs() < 1e-6);
        // Errors by kind, and statuses that are not 2xx.
        let failing = output("oha-closed.json")
            .replace(r#""200": 2000"#, r#""200": 1990, "503": 4"#)
            .replace(
                r#""errorDistribution": {}"#,
                r#""errorDistribution": {"connection closed": 6}"#,
            );
        let mut s = sample();
        parse_oha(&failing, &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (2000, 1990, 10));
        assert_eq!(s.failures.get("status 503"), Some(&4));
    }

    /// wrk2 is not packaged where the book was measured: its output, in
    /// the shape of its README's, goes through wrk's parser with its own
    /// percentiles.
    #[test]
    fn wrk2_percentiles() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    \
            Latency     1.20ms  500.00us   9.00ms   80.00%\n  \
            Latency Distribution (HdrHistogram - Recorded Latency)\n \
            50.000%    1.10ms\n 75.000%    1.40ms\n 90.000%    1.80ms\n 99.000%    3.00ms\n \
            99.900%    6.00ms\n100.000%    9.00ms\n  \
            50000 requests in 5.00s, 4.00MB read\nRequests/sec:  10000.00\n";
        let mut s = sample();
        parse_wrk(text, &mut s).unwrap();
        assert_eq!(s.completed, 50000);
        assert!((s.p50.unwrap() - 1.1e-3).abs() < 1e-12);
        assert!((s.p999.unwrap() - 6e-3).abs() < 1e-12);
        assert!((s.max.unwrap() - 9e-3).abs() < 1e-12);
    }

    #[test]
    fn command_lines() {
        let load = Load {
            mode: Mode::Close,
            concurrency: 64,
            requests: 10,
            seconds: 5,
            rate: None,
            pause: None,
            timeout: Duration::from_secs(10),
            limit: Duration::from_secs(60),
            path: "/",
        };
        let (program, args) = Client::Wrk.command("http://127.0.0.1:1/", &load, false);
        assert_eq!(
            shell_line(&program, &args),
            "wrk -t2 -c 64 -d 5s --latency -H 'Connection: close' http://127.0.0.1:1/"
        );
        let loadgen = testbed::workspace().join("target/release/loadgen");
        let keep = Load {
            mode: Mode::KeepAlive,
            ..load
        };
        let lg = Client::loadgen(loadgen.clone());
        let (program, args) = lg.command("http://h/", &keep, true);
        assert_eq!(
            shell_line(&program, &args),
            "target/release/loadgen --json -n 10 -c 64 -s 10 -k --any http://h/"
        );
        let open = Load {
            rate: Some(2500.0),
            ..keep
        };
        let (program, args) = lg.command("http://h/", &open, false);
        assert_eq!(
            shell_line(&program, &args),
            "target/release/loadgen --json --rate 2500 -d 5 -c 64 -s 10 -k http://h/"
        );
        assert_eq!(lg.name(&open), "loadgen");
        let one = Client::loadgen_threads(loadgen, 1, "loadgen -t 1");
        let (_, args) = one.command("http://h/", &load, false);
        assert!(args.join(" ").contains("-n 10 -c 64 -s 10 -t 1 http"));
        let (program, args) = Client::Oha.command("http://h/", &load, false);
        assert_eq!(
            shell_line(&program, &args),
            "oha -n 10 -c 64 --no-tui --output-format json --disable-keepalive http://h/"
        );
        let (program, args) = Client::Oha.command("http://h/", &open, false);
        assert_eq!(
            shell_line(&program, &args),
            "oha -z 5s -q 2500 --latency-correction -w -c 64 --no-tui --output-format json http://h/"
        );
        assert_eq!(Client::Oha.name(&open), "oha -q");
        let (program, args) = Client::Wrk2.command("http://h/", &open, false);
        assert_eq!(
            shell_line(&program, &args),
            "wrk2 -t2 -c 64 -d 5s -R 2500 --latency http://h/"
        );
    }

    /// A listener that never accepts, with a backlog of one, and a run of
    /// eight clients against it: the run's record has the kernel counting
    /// the handshakes it could not queue.
    #[test]
    fn a_full_backlog_shows_in_the_run() {
        struct NeverAccepts(std::net::TcpListener);
        impl Served for NeverAccepts {
            // Our own process stands in for the server's group.
            fn pid(&self) -> u32 {
                std::process::id()
            }
            fn url(&self) -> String {
                format!("http://{}/", self.0.local_addr().unwrap())
            }
            fn any_response(&self) -> bool {
                false
            }
        }
        let server = NeverAccepts(testbed::netstat::listener_with_backlog(1).unwrap());

        let bin = testbed::release_build(["loadgen"]).unwrap();
        let client = Client::loadgen(bin.join("loadgen"));
        let load = Load {
            mode: Mode::Close,
            concurrency: 8,
            requests: 8,
            seconds: 1,
            rate: None,
            pause: None,
            timeout: Duration::from_secs(2),
            limit: Duration::from_secs(30),
            path: "/",
        };
        let mut s = sample();
        measure(&server, &client, &load, &mut s);
        assert_eq!(s.error, None);
        assert_eq!((s.completed, s.failures.get("timeout")), (0, Some(&8)));
        let kernel = s.kernel.expect("the counters around the run");
        assert!(
            kernel.listen_overflows > 0 || kernel.listen_drops > 0,
            "{kernel:?}"
        );
        assert!(kernel.any_trouble());
        assert_eq!(
            s.cores,
            std::thread::available_parallelism().ok().map(usize::from)
        );
    }
}
