//! What the tests share: the table of server listings, one release build of
//! them per test run, and small blocking clients that say exactly what they
//! send and check exactly what comes back.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::Duration;

pub use loadgen::{Server, server::Stopped};

/// One server listing: a workspace crate whose binary has the same name.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    pub name: &'static str,
    /// Whether it serves persistent connections when a client asks.
    pub keep_alive: bool,
    /// How it serves its clients, which tells what a misbehaving client can
    /// do to it: see `tests/misbehaving.rs`. Every listing must say, with
    /// `.model(..)`; a test fails for a row that does not.
    pub model: Option<Model>,
}

/// Every server listing in the book. A new listing is one new row here
/// and one in `tests/listings.rs`.
pub const LISTINGS: &[Listing] = &[
    Listing::close("linear").model(Model::Linear),
    Listing::close("prefork").model(Model::Workers),
    Listing::keep_alive("thread-pool").model(Model::Workers),
    Listing::close("threads-accept").model(Model::Workers),
    Listing::close("thread-per-connection").model(Model::ThreadPerConnection),
    Listing::keep_alive("select").model(Model::EventLoop),
    Listing::keep_alive("poll").model(Model::EventLoop),
    Listing::keep_alive("epoll").model(Model::EventLoop),
    Listing::keep_alive("epoll-edge").model(Model::EventLoop),
    Listing::keep_alive("epoll-reuseport").model(Model::EventLoop),
    Listing::keep_alive("uring").model(Model::EventLoop),
    Listing::keep_alive("tokio-tasks").model(Model::EventLoop),
];

/// How a listing serves its clients, as far as a client can tell from
/// outside: the four kinds of server the fault matrix of
/// `tests/misbehaving.rs` knows what to expect of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One connection at a time, served with blocking calls.
    Linear,
    /// A fixed number of blocking workers (processes or threads), taken
    /// from the second argument: tests start it with [`Model::WORKERS`].
    Workers,
    /// A new blocking thread for every connection.
    ThreadPerConnection,
    /// Non-blocking connections that one thread, or one per core, watches
    /// for readiness (or completion) and drives, each closed when its
    /// `conn::Conn::deadline()` passes.
    EventLoop,
}

impl Model {
    /// Every model, in the order of the matrix's columns.
    pub const ALL: [Model; 4] = [
        Model::Linear,
        Model::Workers,
        Model::ThreadPerConnection,
        Model::EventLoop,
    ];

    /// How many workers the tests give a listing with a fixed number.
    pub const WORKERS: usize = 2;

    /// The arguments that follow the address when a test starts it.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Model::Workers => &["2"],
            _ => &[],
        }
    }

    /// How many clients it serves at once; `None`: as many as connect.
    pub fn serves_at_once(self) -> Option<usize> {
        match self {
            Model::Linear => Some(1),
            Model::Workers => Some(Model::WORKERS),
            Model::ThreadPerConnection | Model::EventLoop => None,
        }
    }
}

impl Listing {
    /// A listing that closes every connection after one response.
    const fn close(name: &'static str) -> Listing {
        Listing {
            name,
            keep_alive: false,
            model: None,
        }
    }

    /// A listing that keeps connections open for clients that ask.
    const fn keep_alive(name: &'static str) -> Listing {
        Listing {
            name,
            keep_alive: true,
            model: None,
        }
    }

    /// Says which model the listing follows.
    const fn model(self, model: Model) -> Listing {
        Listing {
            model: Some(model),
            ..self
        }
    }
}

pub fn listing(name: &str) -> Listing {
    *LISTINGS
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listing named {name} in support::LISTINGS"))
}

/// Every wait in a test is bounded by this unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// The listings are other workspace members, so `cargo test` does not build
/// their binaries for us. Build them all once per test process, in release
/// mode (the same binaries the benchmark runs), with the cargo running us.
fn release_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(&root)
            .args(["build", "--release", "--quiet"]);
        for l in LISTINGS {
            build.args(["-p", l.name]);
        }
        let status = build.status().expect("could not run cargo build");
        assert!(
            status.success(),
            "cargo build --release of the listings failed"
        );
        // Cargo honours CARGO_TARGET_DIR in the environment, as we do.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let target = if target.is_absolute() {
            target
        } else {
            root.join(target)
        };
        target.join("release")
    })
}

/// The path of a listing's release binary, built (once) first.
pub fn program(name: &str) -> PathBuf {
    release_dir().join(name)
}

/// Why this machine cannot run a listing at all, if it cannot: only
/// `uring` may be refused, by a kernel without io_uring (or one that
/// forbids it). The listing itself is the judge: it is run once, and either
/// says it listens (and is stopped) or exits with one line saying why.
pub fn unavailable(name: &str) -> Option<String> {
    static URING: OnceLock<Option<String>> = OnceLock::new();
    if name != "uring" {
        return None;
    }
    URING
        .get_or_init(|| {
            let mut child = Command::new(program(name))
                .arg("127.0.0.1:0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run the uring listing");
            // Its first line, or nothing if it exits first; in a thread,
            // so that the wait is bounded.
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            let (sender, first_line) = mpsc::channel();
            thread::spawn(move || {
                let mut line = String::new();
                let _ = stdout.read_line(&mut line);
                let _ = sender.send(line);
            });
            let line = first_line.recv_timeout(WAIT).unwrap_or_default();
            if line.starts_with("listening on ") {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            let _ = child.kill(); // should it hang
            let output = child
                .wait_with_output()
                .expect("wait for the uring listing");
            let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
            Some(if why.is_empty() {
                format!(
                    "the uring listing exited ({}) saying nothing",
                    output.status
                )
            } else {
                why
            })
        })
        .clone()
}

/// For a test that needs the listing `name`: if this machine cannot run
/// it, prints `skipped: <reason>` and returns true (the test then returns
/// at once, and passes as a skip that says so).
pub fn skipped(name: &str) -> bool {
    match unavailable(name) {
        Some(reason) => {
            println!("skipped: {reason}");
            true
        }
        None => false,
    }
}

/// Builds (once) and starts a listing on 127.0.0.1:0.
pub fn start(name: &str) -> Server {
    start_with(name, &[])
}

/// Starts a listing with extra arguments after the address.
pub fn start_with(name: &str, args: &[&str]) -> Server {
    Server::start(&program(name), args).unwrap_or_else(|e| panic!("starting {name}: {e}"))
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

/// A head that is not HTTP/1.x.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

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
