//! What the tests share: the listings (from the registry,
//! `testbed::LISTINGS`), one release build of them per test run, a runner
//! that puts every listing through a check at once, and small blocking
//! clients that say exactly what they send and check exactly what comes
//! back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub use testbed::{Holdings, LISTINGS, Listing, Model, Server, Stopped, listing, procfs};

/// Every wait in a test is bounded by this unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// The listings are other workspace members, so `cargo test` does not build
/// their binaries for us. Build them all once per test process, in release
/// mode (the same binaries the benchmark runs), with the cargo running us.
fn release_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        testbed::release_build(LISTINGS.iter().map(|l| l.name))
            .unwrap_or_else(|e| panic!("building the listings: {e}"))
    })
}

/// The path of a listing's release binary, built (once) first.
pub fn program(name: &str) -> PathBuf {
    release_dir().join(name)
}

/// Why the tests do not run a listing, if they do not: a measuring stick
/// (`floor`), which is no server to check; or, where this machine cannot
/// run it at all, one whose registry entry says the kernel may refuse it
/// (`uring`, on a kernel without io_uring or one that forbids it). The listing itself is the
/// judge: it is run once, and either says it listens (and is stopped) or
/// exits with one line saying why.
pub fn unavailable(name: &str) -> Option<String> {
    if listing(name).measuring_stick {
        return Some("a measuring stick, not a server: only tests/floor.rs checks it".into());
    }
    static REFUSED: OnceLock<Vec<(&str, Option<String>)>> = OnceLock::new();
    let refused = REFUSED.get_or_init(|| {
        LISTINGS
            .iter()
            .filter(|l| l.kernel_may_refuse)
            .map(|l| (l.name, refusal(l.name)))
            .collect()
    });
    refused
        .iter()
        .find(|(listing, _)| *listing == name)
        .and_then(|(_, why)| why.clone())
}

/// Runs the listing `name` once: `None` if it listens, or what it said
/// when it exited instead.
fn refusal(name: &str) -> Option<String> {
    testbed::server::refusal(&program(name), WAIT)
}

/// For a test that needs the listing `name`: if this machine cannot run
/// it, prints `skipped: <reason>` and returns true (the test then returns
/// at once, and passes as a skip that says so).
pub fn skipped(name: &str) -> bool {
    match unavailable(name) {
        Some(reason) => {
            println!("skipped: {name}: {reason}");
            true
        }
        None => false,
    }
}

/// Builds (once) and starts a listing on 127.0.0.1:0, with the arguments
/// its registry entry gives tests (a number of workers).
pub fn start(name: &str) -> Server {
    let args = listing(name).test_args();
    start_with(name, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Starts a listing with these arguments after the address.
pub fn start_with(name: &str, args: &[&str]) -> Server {
    Server::start(&program(name), args).unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// A check of one listing: `Err` says what went wrong (a panic does too).
pub type Check = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Runs the checks, `batch` at a time, each in a thread of its own, and
/// fails with every failure, labelled.
pub fn run_all(checks: Vec<(String, Check)>, batch: usize) {
    let mut failures = Vec::new();
    let mut checks = checks.into_iter().peekable();
    while checks.peek().is_some() {
        let running: Vec<_> = checks
            .by_ref()
            .take(batch.max(1))
            .map(|(label, check)| (label, thread::spawn(check)))
            .collect();
        for (label, handle) in running {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{label}: {e}")),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{label}: panicked: {message}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Runs `check` on every listing that `which` picks and this machine can
/// run, `batch` at a time (see [`run_all`]). `LISTING=epoll,poll cargo
/// test` narrows every such test to those listings.
pub fn for_every_listing(
    batch: usize,
    which: impl Fn(&Listing) -> bool,
    check: fn(&'static Listing) -> Result<(), String>,
) {
    let only = std::env::var("LISTING").unwrap_or_default();
    let checks = LISTINGS
        .iter()
        .filter(|l| only.is_empty() || only.split(',').any(|name| name.trim() == l.name))
        .filter(|l| which(l) && !skipped(l.name))
        .map(|l| {
            let check: Check = Box::new(move || check(l));
            (l.name.to_string(), check)
        })
        .collect();
    run_all(checks, batch);
}

/// Waits, up to [`WAIT`], until `done` says so; panics naming `what`.
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    if let Err(e) = testbed::wait_for(what, WAIT, || done().then_some(())) {
        panic!("{e}");
    }
}

/// What the server holds once it has settled: the same three times in a
/// row, 50 ms apart (a server may finish starting threads after it says
/// it listens).
pub fn settled(server: &Server) -> Holdings {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = server.holdings();
    let mut same = 0;
    while same < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        let now = server.holdings();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// Waits (up to [`WAIT`]) for the server to hold what it held before:
/// descriptors close, and threads end, a moment after their clients leave.
pub fn back_to(server: &Server, before: &Holdings) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = server.holdings();
        if now == *before {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the clients are gone, but after {WAIT:?} the server holds {now:?}, \
                 not what it held before they came, {before:?}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Connects with every later read and write bounded by [`WAIT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Reads until the server closes the connection (or [`WAIT`] runs out,
/// which is an error).
pub fn read_to_close(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}

/// Sends `parts` with a pause between them, then reads until the server
/// closes the connection.
pub fn exchange(addr: SocketAddr, parts: &[&[u8]], pause: Duration) -> Vec<u8> {
    let mut stream = connect(addr);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            thread::sleep(pause);
        }
        stream.write_all(part).expect("write");
    }
    read_to_close(&mut stream).expect("read the response")
}

/// The bytes every server must answer with, written out here rather than
/// taken from `wire`: the tests are the reader's check on the listings, so
/// a change to `wire`'s constants must turn them red, not follow along.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello world";

/// The same for a request that keeps its connection open.
pub const RESPONSE_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\nHello world";

/// A head over 8 KiB.
pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A head that is not HTTP/1.x, or whose body cannot be told from what
/// follows it.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A body announced over 1 MiB.
pub const CONTENT_TOO_LARGE: &[u8] =
    b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A body sent with `Transfer-Encoding` rather than `Content-Length`.
pub const LENGTH_REQUIRED: &[u8] =
    b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A target asking for malformed work, or for more than a second of it.
pub const BAD_WORK: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\
Content-Length: 47\r\n\r\n/cpu/N: N <= 1000000 us; /sleep/N: N <= 1000 ms";

/// What a keep-alive server sends a client that asked, with
/// `Expect: 100-continue`, before it sends its body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A plain request that asks the server to close after answering.
pub const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

/// What `ab` sends without -k: HTTP/1.0, so the server closes by default.
pub const GET_AB: &[u8] =
    b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n";

/// Shows response bytes readably in assertion messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

/// Asserts that `got` is exactly `want`, printing both readably if not.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8]) {
    assert!(got == want, "\n  got: {}\n want: {}", text(got), text(want));
}

/// `dir`, made empty: removed with all it holds, then created anew. For a
/// test's own files under cargo's `CARGO_TARGET_TMPDIR` (which only
/// integration tests are given, so they name the directory).
pub fn empty_dir(dir: PathBuf) -> PathBuf {
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
