//! One measurement: run one client against a running server as a child
//! process, read what both cost, and watch the server's memory meanwhile.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

use crate::results::{Mode, Sample};
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
    /// ApacheBench, as the post used it.
    Ab,
    /// The book's load generator (the path of its release binary), with
    /// its default number of threads (one per core, at most one per
    /// connection).
    Loadgen(PathBuf),
    /// The same with one thread: the fair match for a single-threaded
    /// server when both share two cores (see the Results chapter).
    LoadgenOneThread(PathBuf),
    /// wrk with two threads, running for a fixed time.
    Wrk,
}

/// What to ask of a client.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub mode: Mode,
    pub concurrency: usize,
    /// Requests in all (`ab`, the load generator).
    pub requests: u64,
    /// How long to run (`wrk`).
    pub seconds: u64,
    /// The most one request of the load generator may take.
    pub timeout: Duration,
    /// The most the client may run before it is killed and the run counted
    /// as failed: a server that hangs must not hang the benchmark.
    pub limit: Duration,
}

impl Client {
    pub fn name(&self) -> &'static str {
        match self {
            Client::Ab => "ab",
            Client::Loadgen(_) => "loadgen",
            Client::LoadgenOneThread(_) => "loadgen -t 1",
            Client::Wrk => "wrk",
        }
    }

    /// Whether the client's program can be found.
    pub fn installed(&self) -> bool {
        match self {
            Client::Ab => on_path("ab"),
            Client::Wrk => on_path("wrk"),
            Client::Loadgen(path) | Client::LoadgenOneThread(path) => path.is_file(),
        }
    }

    /// The program and its arguments against `url`; `any`: accept any
    /// well-formed 2xx response (the load generator checks bytes).
    fn command(&self, url: &str, load: &Load, any: bool) -> (PathBuf, Vec<String>) {
        let (n, c) = (load.requests.to_string(), load.concurrency.to_string());
        let keep_alive = load.mode == Mode::KeepAlive;
        let mut args: Vec<String> = Vec::new();
        let program = match self {
            Client::Ab => {
                args.extend(["-q", "-n", &n, "-c", &c].map(String::from));
                if keep_alive {
                    args.push("-k".into());
                }
                PathBuf::from("ab")
            }
            Client::Loadgen(path) | Client::LoadgenOneThread(path) => {
                let timeout = format!("{}", load.timeout.as_secs_f64());
                args.extend(["--json", "-n", &n, "-c", &c, "-s", &timeout].map(String::from));
                if matches!(self, Client::LoadgenOneThread(_)) {
                    args.extend(["-t", "1"].map(String::from));
                }
                if keep_alive {
                    args.push("-k".into());
                }
                if any {
                    args.push("--any".into());
                }
                path.clone()
            }
            Client::Wrk => {
                let d = format!("{}s", load.seconds);
                args.extend(["-t2", "-c", &c, "-d", &d, "--latency"].map(String::from));
                if !keep_alive {
                    args.extend(["-H", "Connection: close"].map(String::from));
                }
                PathBuf::from("wrk")
            }
        };
        args.push(url.to_string());
        (program, args)
    }
}

/// Whether `program` is in a directory of the PATH.
fn on_path(program: &str) -> bool {
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

/// Runs `client` against `target` with `load`, filling in `sample`. A run
/// that fails as a run (the client missing, killed at its limit, its
/// output unreadable) is recorded in the sample, not returned as an error.
pub fn measure(target: &Target, client: &Client, load: &Load, sample: &mut Sample) {
    let (program, args) = client.command(&target.url(), load, target.any_response());
    sample.command = shell_line(&program, &args);
    let pid = target.pid();
    let Ok(server_before) = procfs::group_cpu_time(pid).map(|t| t.as_secs_f64()) else {
        sample.error = Some("the server was gone before the run".into());
        return;
    };
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
            sample.error = Some(format!("running {}: {e}", client.name()));
            return;
        }
    };
    // Read its output on the side, so that it never blocks on a full pipe.
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let mut watch = Watch::default();
    let mut next_read = started + SAMPLE_EVERY;
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        let now = Instant::now();
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
    sample.client_cpu = (children_cpu() - children_before).max(0.0);
    match procfs::group_cpu_time(pid).map(|t| t.as_secs_f64()) {
        Ok(after) => sample.server_cpu = (after - server_before).max(0.0),
        Err(_) => sample.error = Some("the server exited during the run".into()),
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
                sample.error = Some(format!("waiting for {}: {e}", client.name()));
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
            client.name(),
            load.limit
        ));
        return;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let parsed = match client {
        Client::Ab => parse_ab(&text, sample),
        Client::Loadgen(_) | Client::LoadgenOneThread(_) => parse_loadgen(&text, sample),
        Client::Wrk => parse_wrk(&text, sample),
    };
    if let Err(e) = parsed {
        let stderr = String::from_utf8_lossy(&output.stderr);
        sample.error = Some(format!(
            "{} ({}): {e}: {}",
            client.name(),
            output.status,
            stderr.trim()
        ));
        return;
    }
    if sample.elapsed == 0.0 {
        sample.elapsed = wall.as_secs_f64();
    }
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

fn parse_loadgen(text: &str, s: &mut Sample) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let num = |path: &str| {
        v.pointer(path)
            .and_then(serde_json::Value::as_f64)
            .ok_or(format!("no {path} in the report"))
    };
    s.requests = num("/requests")? as u64;
    s.completed = num("/completed")? as u64;
    s.failed = s.requests.saturating_sub(s.completed);
    if let Some(kinds) = v.pointer("/failures").and_then(|f| f.as_object()) {
        for (kind, n) in kinds {
            match n.as_u64() {
                Some(n) if n > 0 => {
                    s.failures.insert(kind.clone(), n);
                }
                _ => {}
            }
        }
    }
    s.connections = Some(num("/connections")? as u64);
    s.elapsed = num("/elapsed")?;
    s.requests_per_sec = s.completed as f64 / s.elapsed.max(1e-9);
    // No latency without a completed request.
    let latency = |p: &str| {
        (s.completed > 0)
            .then(|| num(&format!("/latency/{p}")))
            .transpose()
    };
    s.p50 = latency("p50")?;
    s.p90 = latency("p90")?;
    s.p99 = latency("p99")?;
    s.max = latency("max")?;
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
    s.p50 = percentile("50%");
    s.p90 = percentile("90%");
    s.p99 = percentile("99%");
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

    #[test]
    fn loadgen_output() {
        let text = r#"{"requests":100,"completed":98,"failures":{"connect":0,"timeout":2},"connections":100,"elapsed":0.5,"latency":{"p50":0.001,"p90":0.002,"p99":0.003,"max":5.0}}"#;
        let mut s = sample();
        parse_loadgen(text, &mut s).unwrap();
        assert_eq!((s.requests, s.completed, s.failed), (100, 98, 2));
        assert_eq!(s.failures.len(), 1);
        assert_eq!((s.requests_per_sec, s.max), (196.0, Some(5.0)));
    }

    #[test]
    fn command_lines() {
        let load = Load {
            mode: Mode::Close,
            concurrency: 64,
            requests: 10,
            seconds: 5,
            timeout: Duration::from_secs(10),
            limit: Duration::from_secs(60),
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
        let (program, args) = Client::Loadgen(loadgen).command("http://h/", &keep, true);
        assert_eq!(
            shell_line(&program, &args),
            "target/release/loadgen --json -n 10 -c 64 -s 10 -k --any http://h/"
        );
    }
}
