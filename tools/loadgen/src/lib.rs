//! An `ab`-like HTTP/1.1 load generator that checks every response it gets.
//!
//! [`run`] sends [`Config::requests`] GET requests over
//! [`Config::concurrency`] connections at once and returns a [`Report`]:
//! how many came back complete and as expected, how many failed and why, how
//! fast, and what it cost the client in CPU time.
//!
//! How: a few worker threads, each owning its share of the connections and
//! one edge-triggered epoll instance. A socket is registered once, for
//! reading and writing, so a request costs no `epoll_ctl` beyond that one.
//! Workers claim requests from a shared counter, so exactly
//! `requests` are started however fast each worker goes.
//!
//! Without keep-alive, each request asks for `Connection: close`, and the
//! client reads on after the response until the server closes: the side
//! that closes first holds the `TIME_WAIT`, and on the server it costs no
//! ephemeral port of ours.
//!
//! Every response is parsed and checked (see [`Expect`] and [`Failures`]).
//! Responses are framed by their Content-Length only, which is required:
//! a response without one (or with chunked encoding) is a `length` failure,
//! even in close mode where the close could frame it. The book's servers
//! always send one, and saying so catches a server that forgets. No retries
//! either: a reused connection that the server closed before answering is a
//! `read` failure, not a silent reconnect.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};

mod response;
mod worker;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request target, such as `/`.
    pub path: String,
    /// How many requests to send in all.
    pub requests: u64,
    /// How many requests are in flight at once, each on its own connection.
    pub concurrency: usize,
    /// Worker threads; 0 picks `min(concurrency, available cores)`.
    pub threads: usize,
    /// Reuse connections (`-k`); otherwise ask the server to close each one.
    pub keep_alive: bool,
    /// The most one request may take, from connect (or write) to its end.
    pub timeout: Duration,
    /// What counts as a correct response.
    pub expect: Expect,
}

/// What counts as a correct response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any well-formed 2xx response with a Content-Length.
    Any,
    /// Exactly [`wire::RESPONSE`]; with keep-alive, exactly
    /// [`wire::RESPONSE_KEEP_ALIVE`], or [`wire::RESPONSE`] followed by a
    /// close when the server declines to keep the connection.
    Book,
    /// Exactly one of these byte strings, head and body.
    Exact(Vec<Vec<u8>>),
}

impl Config {
    /// 1000 requests, 8 at a time, one connection per request, each allowed
    /// 10 s, every response checked against the book's.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            host: addr.to_string(),
            path: "/".to_string(),
            requests: 1000,
            concurrency: 8,
            threads: 0,
            keep_alive: false,
            timeout: Duration::from_secs(10),
            expect: Expect::Book,
        }
    }

    /// The defaults of [`Config::new`] for a URL `http://HOST[:PORT][/PATH]`.
    /// HOST is resolved here, and sent as written in the `Host` header.
    pub fn from_url(url: &str) -> io::Result<Config> {
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        // A colon after the last "]" (IPv6 literals have colons inside) is a port.
        let after_bracket = authority.rfind(']').map_or(authority, |i| &authority[i..]);
        let with_port = if after_bracket.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| invalid(&e.to_string()))?
            .next()
            .ok_or_else(|| invalid("the host has no address"))?;
        Ok(Config {
            host: authority.to_string(),
            path: path.to_string(),
            ..Config::new(addr)
        })
    }

    /// The request, the same bytes every time.
    fn request(&self) -> io::Result<Vec<u8>> {
        let clean = |s: &str| !s.is_empty() && !s.bytes().any(|b| b <= b' ' || b == 0x7f);
        if !clean(&self.path) || !clean(&self.host) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unusable path {:?} or host {:?}", self.path, self.host),
            ));
        }
        let connection = if self.keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n{connection}\r\n",
            self.path, self.host
        );
        Ok(request.into_bytes())
    }
}

/// Why a request failed; each kind has its counter in [`Failures`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect,
    Write,
    Read,
    Length,
    Status,
    Mismatch,
    Timeout,
}

/// Failed requests by kind. Every request that did not complete as
/// expected is counted exactly once, under the first thing that went wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    /// The connection could not be set up (refused, no ports left, ...).
    pub connect: u64,
    /// Sending the request failed (a reset, typically).
    pub write: u64,
    /// A reset, or EOF before the response head was complete.
    pub read: u64,
    /// No usable Content-Length, EOF within the body, or bytes after it.
    pub length: u64,
    /// A malformed response head, or a status other than 2xx (unless that
    /// exact response was expected).
    pub status: u64,
    /// A well-formed 2xx response, but not the expected bytes.
    pub mismatch: u64,
    /// Not over within the timeout.
    pub timeout: u64,
}

impl Failures {
    pub fn total(&self) -> u64 {
        self.connect
            + self.write
            + self.read
            + self.length
            + self.status
            + self.mismatch
            + self.timeout
    }

    pub(crate) fn add(&mut self, kind: Kind) {
        *match kind {
            Kind::Connect => &mut self.connect,
            Kind::Write => &mut self.write,
            Kind::Read => &mut self.read,
            Kind::Length => &mut self.length,
            Kind::Status => &mut self.status,
            Kind::Mismatch => &mut self.mismatch,
            Kind::Timeout => &mut self.timeout,
        } += 1;
    }

    fn merge(&mut self, other: &Failures) {
        self.connect += other.connect;
        self.write += other.write;
        self.read += other.read;
        self.length += other.length;
        self.status += other.status;
        self.mismatch += other.mismatch;
        self.timeout += other.timeout;
    }

    fn by_kind(&self) -> [(&'static str, u64); 7] {
        [
            ("connect", self.connect),
            ("write", self.write),
            ("read", self.read),
            ("length", self.length),
            ("status", self.status),
            ("mismatch", self.mismatch),
            ("timeout", self.timeout),
        ]
    }
}

/// Latency percentiles over the completed requests: from the connect (or,
/// on a reused connection, from the write) to the last byte of the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least p of all at or below it.
        let rank = |p: f64| {
            let i = (p * samples.len() as f64).ceil() as usize;
            samples
                .get(i.saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        Latency {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Requests attempted: always [`Config::requests`].
    pub requests: u64,
    /// Responses received complete and as expected.
    pub completed: u64,
    /// The rest: `completed + failures.total() == requests`.
    pub failures: Failures,
    /// TCP connections opened (established; refused ones do not count).
    pub connections: u64,
    pub elapsed: Duration,
    /// All response bytes received, failed responses included.
    pub bytes: u64,
    /// Body bytes of the completed responses.
    pub body_bytes: u64,
    pub latency: Latency,
    /// User plus system CPU time of this whole process during the run
    /// (`getrusage(RUSAGE_SELF)`), so anything else it did meanwhile counts.
    pub cpu: Duration,
    pub concurrency: usize,
    /// Worker threads used.
    pub threads: usize,
    pub keep_alive: bool,
}

impl Report {
    /// Completed requests per second.
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// Client CPU time per request attempted.
    pub fn cpu_per_request(&self) -> Duration {
        self.cpu
            .checked_div(self.requests.try_into().unwrap_or(u32::MAX))
            .unwrap_or_default()
    }

    /// All fields on one line of JSON; durations in seconds.
    pub fn to_json(&self) -> String {
        let secs = |d: Duration| d.as_secs_f64();
        let failures: Vec<String> = self
            .failures
            .by_kind()
            .iter()
            .map(|(k, n)| format!("\"{k}\":{n}"))
            .collect();
        let l = &self.latency;
        format!(
            concat!(
                "{{\"requests\":{},\"completed\":{},\"failures\":{{{}}},\"connections\":{},",
                "\"elapsed\":{},\"bytes\":{},\"body_bytes\":{},",
                "\"latency\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}},",
                "\"cpu\":{},\"concurrency\":{},\"threads\":{},\"keep_alive\":{},",
                "\"requests_per_sec\":{},\"cpu_per_request\":{}}}"
            ),
            self.requests,
            self.completed,
            failures.join(","),
            self.connections,
            secs(self.elapsed),
            self.bytes,
            self.body_bytes,
            secs(l.p50),
            secs(l.p90),
            secs(l.p99),
            secs(l.max),
            secs(self.cpu),
            self.concurrency,
            self.threads,
            self.keep_alive,
            self.requests_per_sec(),
            secs(self.cpu_per_request()),
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mode = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        writeln!(
            f,
            "Concurrency:          {} ({} threads, {mode})",
            self.concurrency, self.threads
        )?;
        writeln!(f, "Requests:             {}", self.requests)?;
        writeln!(f, "Completed:            {}", self.completed)?;
        write!(f, "Failed:               {}", self.failures.total())?;
        if self.failures.total() > 0 {
            let kinds: Vec<String> = self
                .failures
                .by_kind()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        writeln!(f)?;
        writeln!(f, "Connections:          {}", self.connections)?;
        writeln!(
            f,
            "Bytes received:       {} ({} in bodies)",
            self.bytes, self.body_bytes
        )?;
        writeln!(
            f,
            "Time taken:           {:.3} s",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "Requests per second:  {:.0}", self.requests_per_sec())?;
        let l = &self.latency;
        writeln!(
            f,
            "Latency (ms):         p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        )?;
        write!(
            f,
            "Client CPU:           {:.3} s, {:.1} µs per request",
            self.cpu.as_secs_f64(),
            self.cpu_per_request().as_secs_f64() * 1e6
        )
    }
}

/// Runs the load and reports. `Err` only when the run cannot be set up;
/// whatever the server does ends up in the report.
pub fn run(config: &Config) -> io::Result<Report> {
    if config.concurrency == 0 || config.timeout.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "concurrency and timeout must be more than zero",
        ));
    }
    // More connections than requests would sit idle.
    let slots =
        usize::try_from(config.requests).map_or(config.concurrency, |n| n.min(config.concurrency));
    let threads = match config.threads {
        0 => thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .clamp(1, slots.max(1));
    allow_descriptors(slots)?;
    let shared = worker::Shared::new(config)?;

    let cpu_before = cpu_time()?;
    let start = Instant::now();
    let tallies: Vec<io::Result<worker::Tally>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // Share the slots out as evenly as they go.
                let mine = slots / threads + usize::from(t < slots % threads);
                let shared = &shared;
                scope.spawn(move || worker::Worker::new(shared, mine)?.run())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let cpu = cpu_time()?.saturating_sub(cpu_before);

    let mut report = Report {
        requests: config.requests,
        completed: 0,
        failures: Failures::default(),
        connections: 0,
        elapsed,
        bytes: 0,
        body_bytes: 0,
        latency: Latency::default(),
        cpu,
        concurrency: config.concurrency,
        threads,
        keep_alive: config.keep_alive,
    };
    let mut samples = Vec::new();
    for tally in tallies {
        let tally = tally?;
        report.completed += tally.completed;
        report.failures.merge(&tally.failures);
        report.connections += tally.connections;
        report.bytes += tally.bytes;
        report.body_bytes += tally.body_bytes;
        samples.extend(tally.latencies);
    }
    report.latency = Latency::of(samples);
    Ok(report)
}

/// User plus system time of this process so far.
fn cpu_time() -> io::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let d =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok(d(usage.user_time()) + d(usage.system_time()))
}

/// Makes sure this process may open a descriptor per connection (and a
/// few more), raising its soft limit as far as the hard limit allows.
fn allow_descriptors(connections: usize) -> io::Result<()> {
    let needed = connections as u64 + 64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(io::Error::other(format!(
            "{connections} connections need more file descriptors than the limit of {hard}"
        )));
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard)?;
    Ok(())
}

#[cfg(test)]
mod tests;
