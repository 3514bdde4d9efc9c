//! One measurement: start a fresh server, run one client against it as a
//! child process, and read what both cost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loadgen::Server;
use nix::sys::resource::{UsageWho, getrusage};
use serde::Serialize;

/// A load client, run as a child process so that its CPU time can be read
/// the same way for all of them.
pub enum Client {
    /// ApacheBench, as the post used it.
    Ab,
    /// The book's load generator (the path of its release binary).
    Loadgen(PathBuf),
    /// wrk with two threads, running for a fixed time.
    Wrk { seconds: u64 },
}

impl Client {
    pub fn name(&self) -> &'static str {
        match self {
            Client::Ab => "ab",
            Client::Loadgen(_) => "loadgen",
            Client::Wrk { .. } => "wrk",
        }
    }

    /// The command line, as a reader could type it against `url`.
    fn command(&self, url: &str, requests: u64, concurrency: usize) -> Command {
        let (n, c) = (requests.to_string(), concurrency.to_string());
        match self {
            Client::Ab => {
                let mut cmd = Command::new("ab");
                cmd.args(["-q", "-n", &n, "-c", &c, url]);
                cmd
            }
            Client::Loadgen(path) => {
                let mut cmd = Command::new(path);
                cmd.args(["--json", "-n", &n, "-c", &c, url]);
                cmd
            }
            Client::Wrk { seconds } => {
                let mut cmd = Command::new("wrk");
                let d = format!("{seconds}s");
                cmd.args(["-t2", "-c", &c, "-d", &d, "--latency"]);
                cmd.args(["-H", "Connection: close", url]);
                cmd
            }
        }
    }
}

/// What one run measured. Times are in seconds; `None` where the client
/// does not report a figure (or is not installed).
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub server: String,
    pub client: String,
    pub round: usize,
    pub command: String,
    pub installed: bool,
    pub completed: u64,
    pub failed: u64,
    pub elapsed: f64,
    pub requests_per_sec: f64,
    pub client_cpu: f64,
    pub server_cpu: f64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

impl Sample {
    pub fn client_cpu_per_request(&self) -> f64 {
        self.client_cpu / self.completed.max(1) as f64
    }
    pub fn server_cpu_per_request(&self) -> f64 {
        self.server_cpu / self.completed.max(1) as f64
    }
}

/// Starts `server` from `bin`, runs `client` against it, stops the server.
pub fn measure(
    bin: &Path,
    server: &str,
    client: &Client,
    round: usize,
    requests: u64,
    concurrency: usize,
) -> Result<Sample, String> {
    let running =
        Server::start(&bin.join(server), &[]).map_err(|e| format!("starting {server}: {e}"))?;
    let url = running.url();
    let mut cmd = client.command(&url, requests, concurrency);
    let command = format!("{cmd:?}").replace('"', "");
    let mut sample = Sample {
        server: server.into(),
        client: client.name().into(),
        round,
        command,
        installed: true,
        completed: 0,
        failed: 0,
        elapsed: 0.0,
        requests_per_sec: 0.0,
        client_cpu: 0.0,
        server_cpu: 0.0,
        p50: None,
        p99: None,
    };

    let server_before = running.cpu_time().map_err(|e| e.to_string())?;
    let children_before = children_cpu();
    let started = Instant::now();
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            sample.installed = false;
            return Ok(sample);
        }
        Err(e) => return Err(format!("running {}: {e}", client.name())),
    };
    let wall = started.elapsed();
    sample.client_cpu = (children_cpu() - children_before).as_secs_f64();
    sample.server_cpu =
        (running.cpu_time().map_err(|e| e.to_string())? - server_before).as_secs_f64();
    running
        .stop(Duration::from_secs(10))
        .map_err(|e| format!("stopping {server}: {e}"))?;

    let text = String::from_utf8_lossy(&output.stdout);
    let parsed = match client {
        Client::Ab => parse_ab(&text, &mut sample),
        Client::Loadgen(_) => parse_loadgen(&text, &mut sample),
        Client::Wrk { .. } => parse_wrk(&text, &mut sample),
    };
    parsed.map_err(|e| {
        format!(
            "{} against {server}: {e}\n{}{}",
            client.name(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if sample.elapsed == 0.0 {
        sample.elapsed = wall.as_secs_f64();
    }
    Ok(sample)
}

/// The load generator's own human report of one run against `server`.
pub fn loadgen_report(
    bin: &Path,
    server: &str,
    requests: u64,
    concurrency: usize,
) -> Result<String, String> {
    let running =
        Server::start(&bin.join(server), &[]).map_err(|e| format!("starting {server}: {e}"))?;
    let url = running.url();
    let output = Command::new(bin.join("loadgen"))
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            &concurrency.to_string(),
            &url,
        ])
        .output()
        .map_err(|e| format!("running loadgen: {e}"))?;
    running
        .stop(Duration::from_secs(10))
        .map_err(|e| format!("stopping {server}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// User plus system time of every child process we have waited for.
fn children_cpu() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let time = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    time(usage.user_time()) + time(usage.system_time())
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
    s.completed = (complete as u64).saturating_sub(s.failed);
    s.elapsed = field(text, "Time taken for tests:").ok_or("no time taken")?;
    s.requests_per_sec = field(text, "Requests per second:").ok_or("no rate")?;
    // ab reports percentiles in whole milliseconds.
    s.p50 = field(text, "50%").map(|ms| ms / 1e3);
    s.p99 = field(text, "99%").map(|ms| ms / 1e3);
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
    s.completed = num("/completed")? as u64;
    s.failed = num("/requests")? as u64 - s.completed;
    s.elapsed = num("/elapsed")?;
    s.requests_per_sec = s.completed as f64 / s.elapsed;
    s.p50 = Some(num("/latency/p50")?);
    s.p99 = Some(num("/latency/p99")?);
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
    let errors: u64 = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            l.strip_prefix("Socket errors:")
                .or_else(|| l.strip_prefix("Non-2xx or 3xx responses:"))
        })
        .flat_map(|rest| rest.split(|c: char| !c.is_ascii_digit()))
        .filter_map(|w| w.parse::<u64>().ok())
        .sum();
    s.failed = errors;
    s.completed = total.saturating_sub(errors.min(total));
    s.elapsed = words
        .nth(2)
        .and_then(|w| parse_wrk_time(w.trim_end_matches(',')))
        .ok_or("bad duration")?;
    s.requests_per_sec = field(text, "Requests/sec:").ok_or("no rate")?;
    s.p50 = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("50%"))
        .and_then(|w| parse_wrk_time(w.trim()));
    s.p99 = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("99%"))
        .and_then(|w| parse_wrk_time(w.trim()));
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

    #[test]
    fn wrk_times() {
        assert_eq!(parse_wrk_time("5.00s"), Some(5.0));
        assert_eq!(parse_wrk_time("250.00us"), Some(250e-6));
        assert_eq!(parse_wrk_time("1.50ms"), Some(1.5e-3));
        assert_eq!(parse_wrk_time("fast"), None);
    }

    #[test]
    fn ab_fields() {
        let text = "Complete requests:      100000\nFailed requests:        0\n";
        assert_eq!(field(text, "Complete requests:"), Some(100000.0));
        assert_eq!(field(text, "Failed requests:"), Some(0.0));
        assert_eq!(field(text, "Non-2xx responses:"), None);
    }
}
