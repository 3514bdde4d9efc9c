//! An `ab`-like HTTP/1.1 load generator that checks every response it gets.
//!
//! [`run`] sends GET requests over at most [`Config::concurrency`]
//! connections at once and returns a [`Report`]: how many came back
//! complete and as expected, how many failed and why, how fast, how long
//! they took, how evenly the connections were served, and what it all cost
//! the client in CPU time.
//!
//! Two ways to send:
//!
//! - **Closed loop** (the default): each connection sends its next request
//!   as soon as the last one is answered, so the server sets the pace.
//! - **Open loop** ([`Config::rate`]): requests are due on a fixed
//!   schedule, `rate` per second in all, whether or not the server has
//!   answered the earlier ones. A request due while every connection is
//!   busy waits for one, and its *corrected* latency counts that wait: it
//!   runs from the moment the request was due, as a client arriving on its
//!   own schedule would see it. A server that stalls for a second is then
//!   seen to delay a second's worth of requests, not only the few that
//!   were in flight (the "coordinated omission" that closed-loop figures
//!   suffer from).
//!
//! A run is bounded by a number of requests ([`Config::requests`]), by a
//! time ([`Config::duration`]), or both, whichever comes first.
//!
//! How: a few worker threads, each owning its share of the connections and
//! one edge-triggered epoll instance. A socket is registered once, for
//! reading and writing, so a request costs no `epoll_ctl` beyond that one.
//! In closed loop, workers claim requests from a shared counter, so exactly
//! `requests` are started however fast each worker goes; in open loop, each
//! worker takes every `threads`-th request of the schedule, and a timerfd
//! wakes it when the next one is due.
//!
//! Latencies go into HdrHistograms (three significant digits, constant
//! memory however long the run), one per worker, added up at the end.
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

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};
use serde::{Deserialize, Serialize};

mod histogram;
mod report;
mod response;
mod worker;

pub use report::{Bound, Fairness, JsonBound, JsonLatency, JsonReport, Latency, OpenLoop, Report};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request target, such as `/`.
    pub path: String,
    /// The most requests to send in all; [`u64::MAX`] for no bound by
    /// count, when [`Config::duration`] bounds the run.
    pub requests: u64,
    /// The most time to send for. Closed loop: no request starts after it.
    /// Open loop: the schedule ends there (requests due before it are
    /// sent, however late). `None`: no bound by time.
    pub duration: Option<Duration>,
    /// Open loop: requests per second in all, on a fixed schedule. `None`:
    /// closed loop.
    pub rate: Option<f64>,
    /// How many requests are in flight at once, each on its own connection:
    /// in open loop, the most connections open at once.
    pub concurrency: usize,
    /// Worker threads; 0 picks `min(concurrency, available cores)`.
    pub threads: usize,
    /// Reuse connections (`-k`); otherwise ask the server to close each one.
    pub keep_alive: bool,
    /// The most one request may take, from connect (or write) to its end.
    /// In open loop, also the most a due request waits for a connection:
    /// one that waits longer is never sent, and counts as a timeout.
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
    /// 1000 requests in closed loop, 8 at a time, one connection per
    /// request, each allowed 10 s, every response checked against the
    /// book's.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            host: addr.to_string(),
            path: "/".to_string(),
            requests: 1000,
            duration: None,
            rate: None,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Not over within the timeout; in open loop, also a request that
    /// waited that long for a connection and was never sent.
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

    /// Each kind by the name the reports give it.
    pub fn by_kind(&self) -> [(&'static str, u64); 7] {
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

/// Runs the load and reports. `Err` only when the run cannot be set up;
/// whatever the server does ends up in the report.
pub fn run(config: &Config) -> io::Result<Report> {
    let invalid = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_string()));
    if config.concurrency == 0 || config.timeout.is_zero() {
        return invalid("concurrency and timeout must be more than zero");
    }
    if config.duration.is_some_and(|d| d.is_zero()) {
        return invalid("the duration must be more than zero");
    }
    if config.requests == u64::MAX && config.duration.is_none() {
        return invalid("a run needs a bound: a number of requests or a duration");
    }
    if config.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return invalid("the rate must be a positive number of requests per second");
    }
    // Open loop: every request of the schedule, numbered from 0, is due at
    // i / rate seconds after the start; with a duration, only those due
    // before its end are on it.
    let scheduled = config.rate.map(|rate| {
        let by_time = config.duration.map_or(u64::MAX, |d| {
            // Less a hair, so that float noise cannot put a request due at
            // exactly the end on the schedule.
            (d.as_secs_f64() * rate - 1e-9).ceil().max(0.0) as u64
        });
        config.requests.min(by_time)
    });
    // More connections than requests would sit idle.
    let most = scheduled.unwrap_or(config.requests);
    let slots = usize::try_from(most).map_or(config.concurrency, |n| n.min(config.concurrency));
    let threads = match config.threads {
        0 => thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .clamp(1, slots.max(1));
    allow_descriptors(slots)?;
    let shared = worker::Shared::new(config)?;
    // Everything a worker needs is set up before the clock starts, so that
    // the first requests of a schedule are not late for it.
    let workers = (0..threads)
        .map(|t| {
            // Share the slots out as evenly as they go.
            let mine = slots / threads + usize::from(t < slots % threads);
            let plan = scheduled.map(|total| worker::Share {
                first: t as u64,
                step: threads as u64,
                total,
            });
            worker::Worker::new(&shared, mine, plan)
        })
        .collect::<io::Result<Vec<_>>>()?;

    let cpu_before = cpu_time()?;
    let start = now()?;
    let tallies: Vec<io::Result<worker::Tally>> = thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|w| scope.spawn(move || w.run(start)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let elapsed = start.instant.elapsed();
    let cpu = cpu_time()?.saturating_sub(cpu_before);

    let mut total = worker::Tally::default();
    for tally in tallies {
        total.merge(tally?);
    }
    Ok(report::Report::of(config, total, elapsed, cpu, threads))
}

/// The moment a run starts, as an [`Instant`] and as a reading of the same
/// clock (`CLOCK_MONOTONIC`) that a timerfd can be armed with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    pub instant: Instant,
    pub monotonic: TimeSpec,
}

/// Now, both ways. On Linux an [`Instant`] is a `CLOCK_MONOTONIC` reading:
/// the clock read just after it is later by some tens of nanoseconds, so
/// that a timer set from it goes off at a due time or just after, never
/// before.
fn now() -> io::Result<Start> {
    let instant = Instant::now();
    let monotonic = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(Start { instant, monotonic })
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
