//! When clients misbehave: every server listing against every fault a
//! client can commit, and what each model of server must do about it.
//!
//! What each model does about each fault is one table, [`expected`]. The
//! tests assert it, and the book shows it: [`render`] turns it into
//! `src/generated/misbehaving.md`, and `the_book_shows_this_table` fails if
//! the committed file differs. So the chapter cannot say one thing while
//! the servers do another.
//!
//! A listing gets its rows by its model in the registry (`testbed::LISTINGS`);
//! nothing here names a listing. Each test takes a family of faults and
//! runs it against every listing at once, each on a server of its own, in
//! a thread of its own, and reports every listing that failed and the
//! fault it failed on. Some faults take `wire::HEAD_TIMEOUT` to play out:
//! running listings side by side keeps the whole file as slow as the
//! slowest of them, not as their sum.
//!
//! What every server must do, whatever the fault, and each test checks:
//! stay up (the same processes as before, none replaced), answer a head it
//! refuses with 400, 411, 413 or 431 and close, never spin (its threads
//! sleep while it waits), hold no more (processes, threads, descriptors)
//! once the clients are gone than before they came, and serve the next
//! client. The last row is not a client's doing but an operator's (or a
//! debugger's), and has a test of its own: a server with a stopped process
//! must still stop when it is asked to.

use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, SockRef, Socket, Type};
use support::{
    BAD_REQUEST, CONTENT_TOO_LARGE, CONTINUE, Check, GET_CLOSE, Holdings, LENGTH_REQUIRED,
    LISTINGS, Listing, Model, RESPONSE, RESPONSE_KEEP_ALIVE, Server, TOO_LARGE, WAIT, back_to,
    run_all, settled, text,
};
use wire::{BODY_LIMIT, HEAD_LIMIT, HEAD_TIMEOUT};

/// What a client does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Silent,
    Slowloris,
    TooLarge,
    TooLargeComplete,
    Binary,
    Tls,
    Http2,
    EmptyLines,
    ResetMidHead,
    ResetBeforeResponse,
    HalfCloseAfterHead,
    HalfCloseMidHead,
    FinWithRequest,
    BareLineFeeds,
    HostMissingOrTwice,
    CloseAndKeepAlive,
    BodyIsARequest,
    BodyThenRequest,
    ExpectContinue,
    BodyTooLarge,
    Chunked,
    AmbiguousLength,
    Thousand,
    OverFdLimit,
    StoppedProcess,
}

impl Fault {
    /// Every fault, in the order of the table's rows.
    const ALL: [Fault; 25] = [
        Fault::Silent,
        Fault::Slowloris,
        Fault::TooLarge,
        Fault::TooLargeComplete,
        Fault::Binary,
        Fault::Tls,
        Fault::Http2,
        Fault::EmptyLines,
        Fault::ResetMidHead,
        Fault::ResetBeforeResponse,
        Fault::HalfCloseAfterHead,
        Fault::HalfCloseMidHead,
        Fault::FinWithRequest,
        Fault::BareLineFeeds,
        Fault::HostMissingOrTwice,
        Fault::CloseAndKeepAlive,
        Fault::BodyIsARequest,
        Fault::BodyThenRequest,
        Fault::ExpectContinue,
        Fault::BodyTooLarge,
        Fault::Chunked,
        Fault::AmbiguousLength,
        Fault::Thousand,
        Fault::OverFdLimit,
        Fault::StoppedProcess,
    ];

    /// The first cell of its row: "A client that ..."
    fn what(self) -> &'static str {
        match self {
            Fault::Silent => "connects and sends nothing",
            Fault::Slowloris => "sends its head a byte a second (slowloris)",
            Fault::TooLarge => "sends a head of more than 8 KiB, with no end",
            Fault::TooLargeComplete => "sends a complete head of more than 8 KiB",
            Fault::Binary => "sends 1 KiB of random bytes",
            Fault::Tls => "speaks TLS: its first message, a ClientHello",
            Fault::Http2 => "speaks HTTP/2: its connection preface",
            Fault::EmptyLines => "sends 8 KiB of empty lines",
            Fault::ResetMidHead => "resets the connection halfway through its head",
            Fault::ResetBeforeResponse => "sends a request and resets before the response",
            Fault::HalfCloseAfterHead => "sends a request, then shuts down its sending half",
            Fault::HalfCloseMidHead => "shuts down its sending half halfway through its head",
            Fault::FinWithRequest => "sends its request and the end of its sending in one packet",
            Fault::BareLineFeeds => "ends its lines with a bare LF, not CR LF",
            Fault::HostMissingOrTwice => "sends HTTP/1.1 without a `Host`, or with two",
            Fault::CloseAndKeepAlive => {
                "asks for `close` and `keep-alive` at once (`close` first, or in one header)"
            }
            Fault::BodyIsARequest => "sends a `POST` whose body is a whole request",
            Fault::BodyThenRequest => "sends a `POST` with a body, then a `GET`",
            Fault::ExpectContinue => "asks for `100 Continue` before it sends its body",
            Fault::BodyTooLarge => "announces a body of more than 1 MiB",
            Fault::Chunked => "sends its body in chunks (`Transfer-Encoding`)",
            Fault::AmbiguousLength => {
                "sends two `Content-Length`s, or one and a `Transfer-Encoding`"
            }
            Fault::Thousand => "is one of 1,000 clients arriving together",
            Fault::OverFdLimit => {
                "is one of 200 silent clients, the server limited to 64 descriptors"
            }
            Fault::StoppedProcess => {
                "stops a process of the server (SIGSTOP) before the server is asked to stop"
            }
        }
    }
}

/// What happens to a client that commits a fault, and to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    // A client that holds its connection and never finishes its head is
    // closed, unanswered, `HEAD_TIMEOUT` after it was accepted. Meanwhile:
    /// ...no other client is served.
    StallsEveryone,
    /// ...it holds a worker; as many such clients as workers stall everyone.
    TakesAWorker,
    /// ...it holds a thread of its own; nobody waits.
    TakesAThread,
    /// ...it holds its buffer in the event loop; nobody waits.
    TakesABuffer,

    /// At once: this status, then an orderly close.
    Refused431,
    Refused400,
    Refused411,
    Refused413,
    /// The full response, then the close.
    Answered,
    /// The full response, saying `Connection: close`, then the close.
    AnsweredClosing,
    /// One response, not two: the body is not a request.
    AnsweredOnce,
    /// Both requests answered, in order: on one connection (a server that
    /// keeps connections), on two (one that closes after every response),
    /// or either, as the listing does.
    BothOnOne,
    BothOnTwo,
    BothOnOneOrTwo,
    /// `100 Continue`, then the response once the body is in (a server that
    /// keeps connections); the response at once, and a close (one that
    /// closes after every response, and never reads a body); either.
    Continued,
    NoContinue,
    ContinuedOrNot,
    /// Closed at once, with nothing to answer.
    ClosedUnanswered,
    /// The server's read fails or ends: it drops the connection.
    Dropped,
    /// The server's write fails or goes nowhere, harmlessly.
    ResponseLost,

    // Many clients at once.
    /// All served, in turn; the rest wait in the kernel's backlog.
    InTurn,
    /// All held at once, each by a thread of its own.
    AllAtOnceThreads,
    /// All held at once, by a fixed number of threads.
    AllAtOnce,

    // More clients than descriptors.
    /// It never runs out: it holds only the few clients it serves.
    NeverOutOfFds,
    /// It runs out, and retries `accept` every 10 ms: no spin.
    PausesAtLimit,
    /// It runs out, and neither spins nor stops.
    AtLimitNoSpin,

    /// Asked to stop, it stops all the same, and leaves no process.
    StopsAllTheSame,
}

impl Outcome {
    /// What the table's cell says.
    fn text(self) -> &'static str {
        match self {
            Outcome::StallsEveryone => "nobody else is served until it is closed, at 5 s",
            Outcome::TakesAWorker => {
                "holds a worker until closed at 5 s; N such clients stall everyone"
            }
            Outcome::TakesAThread => "holds a thread until closed at 5 s; nobody waits",
            Outcome::TakesABuffer => "holds 8 KiB of buffer until closed at 5 s; nobody waits",
            Outcome::Refused431 => "431 at once, and a close",
            Outcome::Refused400 => "400 at once, and a close",
            Outcome::Refused411 => "411 at once, and a close",
            Outcome::Refused413 => "413 at once, and a close",
            Outcome::Answered => "the whole response, and a close",
            Outcome::AnsweredClosing => "the response, saying `close`, and a close",
            Outcome::AnsweredOnce => "one response: the body is not a request",
            Outcome::BothOnOne => "both answered, on the one connection",
            Outcome::BothOnTwo => {
                "the `POST` answered, and a close; the `GET` answered on a new one"
            }
            Outcome::BothOnOneOrTwo => {
                "both answered: on one connection where it keeps them, else on two"
            }
            Outcome::Continued => "`100 Continue`, and the response after the body",
            Outcome::NoContinue => "the response at once, and a close: it reads no body",
            Outcome::ContinuedOrNot => {
                "`100 Continue` where it keeps connections, else the response at once"
            }
            Outcome::ClosedUnanswered => "closed at once, unanswered",
            Outcome::Dropped => "the read fails; the connection is dropped",
            Outcome::ResponseLost => "the write fails or goes nowhere",
            Outcome::InTurn => "all served in turn; the rest wait in the backlog",
            Outcome::AllAtOnceThreads => "all held at once, a thread each",
            Outcome::AllAtOnce => "all held at once, no thread each",
            Outcome::NeverOutOfFds => "never runs out: holds only whom it serves",
            Outcome::PausesAtLimit => "runs out; retries every 10 ms; the rest wait",
            Outcome::AtLimitNoSpin => "runs out; must neither spin nor stop",
            Outcome::StopsAllTheSame => "it stops all the same, and leaves no process behind",
        }
    }
}

/// What each model does about each fault: one column per model, in the
/// order of `Model::ALL`.
fn expected(fault: Fault) -> [Outcome; 4] {
    use Outcome::*;
    // [linear, N workers, thread per connection, event loop]
    match fault {
        Fault::Silent | Fault::Slowloris => {
            [StallsEveryone, TakesAWorker, TakesAThread, TakesABuffer]
        }
        Fault::TooLarge | Fault::TooLargeComplete => [Refused431; 4],
        Fault::Binary | Fault::Tls | Fault::Http2 | Fault::EmptyLines => [Refused400; 4],
        Fault::ResetMidHead => [Dropped; 4],
        Fault::ResetBeforeResponse => [ResponseLost; 4],
        Fault::HalfCloseAfterHead | Fault::FinWithRequest => [Answered; 4],
        Fault::HalfCloseMidHead => [ClosedUnanswered; 4],
        Fault::BareLineFeeds | Fault::HostMissingOrTwice | Fault::AmbiguousLength => {
            [Refused400; 4]
        }
        Fault::CloseAndKeepAlive => [AnsweredClosing; 4],
        Fault::BodyIsARequest => [AnsweredOnce; 4],
        Fault::BodyThenRequest => [BothOnTwo, BothOnOneOrTwo, BothOnTwo, BothOnOne],
        Fault::ExpectContinue => [NoContinue, ContinuedOrNot, NoContinue, Continued],
        Fault::BodyTooLarge => [Refused413; 4],
        Fault::Chunked => [Refused411; 4],
        Fault::Thousand => [InTurn, InTurn, AllAtOnceThreads, AllAtOnce],
        Fault::OverFdLimit => [NeverOutOfFds, NeverOutOfFds, PausesAtLimit, AtLimitNoSpin],
        Fault::StoppedProcess => [StopsAllTheSame; 4],
    }
}

fn outcome(model: Model, fault: Fault) -> Outcome {
    let column = Model::ALL.iter().position(|&m| m == model).unwrap();
    expected(fault)[column]
}

/// A column's heading.
fn heading(model: Model) -> &'static str {
    match model {
        Model::Linear => "linear",
        Model::Workers => "N workers",
        Model::ThreadPerConnection => "a thread per connection",
        Model::EventLoop => "event loop",
    }
}

const TABLE: &str = "src/generated/misbehaving.md";

/// The table as the chapter shows it.
fn render() -> String {
    let mut out = String::new();
    writeln!(
        out,
        "<!-- Written by tests/misbehaving.rs from its table `expected`, which the \
         tests assert. Regenerate: BLESS=1 cargo test --test misbehaving -->\n"
    )
    .unwrap();
    let headings: Vec<&str> = Model::ALL.iter().map(|&m| heading(m)).collect();
    writeln!(out, "| A client that... | {} |", headings.join(" | ")).unwrap();
    writeln!(out, "|---|{}", "---|".repeat(headings.len())).unwrap();
    for fault in Fault::ALL {
        let cells: Vec<&str> = expected(fault).iter().map(|o| o.text()).collect();
        writeln!(out, "| {} | {} |", fault.what(), cells.join(" | ")).unwrap();
    }
    out
}

#[test]
fn the_book_shows_this_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let table = render();
    if std::env::var_os("BLESS").is_some() {
        fs::write(&path, &table).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == table,
        "{TABLE} is not the table in tests/misbehaving.rs. Regenerate it with\n  \
         BLESS=1 cargo test --test misbehaving the_book_shows_this_table\n\
         then check the chapter's prose still agrees.\n\n{table}"
    );
}

/// No server listing runs a program or opens a file: whatever a client
/// sends, the worst it can get back is one of seven fixed answers. The one
/// file any of them opens is `/dev/null`, the descriptor `conn::Acceptor`
/// keeps in reserve against `EMFILE`. Unit tests (after `#[cfg(test)]`)
/// may do as they like.
#[test]
fn no_listing_runs_commands_or_opens_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = ["wire", "conn"];
    let names = LISTINGS.iter().map(|l| l.name).chain(shared);
    for name in names {
        let src = root.join("listings").join(name).join("src");
        for entry in fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let code = fs::read_to_string(&path).unwrap();
            let code = code.split("#[cfg(test)]").next().unwrap();
            for line in code.lines() {
                for word in [
                    "Command",
                    "OpenOptions",
                    "fs::read",
                    "fs::write",
                    "File::create",
                ] {
                    assert!(
                        !line.contains(word),
                        "{} uses {word}: {line}",
                        path.display()
                    );
                }
                if line.contains("File::open(") {
                    assert!(
                        line.contains("File::open(RESERVE)"),
                        "{}: {line}",
                        path.display()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------
// Running a check against every listing at once

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {{
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($message)+));
        }
    }};
}

/// One check per listing, `batch` at a time.
fn for_every_listing(batch: usize, check: fn(&'static Listing) -> Result<(), String>) {
    support::for_every_listing(batch, |_| true, check);
}

/// Starts a listing with the arguments the registry gives tests, and with
/// its descriptor limit lowered to `max_fds` if given.
fn start(l: &Listing, max_fds: Option<u64>) -> Result<Server, String> {
    let program = support::program(l.name);
    let args = l.test_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_limited(&program, &args, max_fds).map_err(|e| format!("start: {e}"))
}

// ---------------------------------------------------------------------
// What the server holds, and whether it spins

/// Whether the server spins: how much of a window of time its threads
/// were running or ready to run, rather than asleep waiting for something.
struct SpinMeter {
    busy: Duration,
    cpu: Duration,
    wall: Instant,
}

impl SpinMeter {
    fn start(server: &Server) -> SpinMeter {
        SpinMeter {
            busy: server.busy_time().unwrap_or_default(),
            cpu: server.cpu_time().unwrap_or_default(),
            wall: Instant::now(),
        }
    }

    /// A server that waits is asleep nearly all the time: a share near 0.
    /// A thread in a busy loop never sleeps: a share near 1, whether it
    /// gets a CPU or waits for one on a machine shared with other tests.
    /// So the share is measured from `/proc/PID/task/TID/schedstat`, which
    /// counts both; the CPU time from `/proc/PID/stat` comes with it, to
    /// show in the message.
    fn check(&self, server: &Server, what: &str) -> Result<(), String> {
        let wall = self.wall.elapsed();
        let busy = server
            .busy_time()
            .unwrap_or_default()
            .saturating_sub(self.busy);
        let cpu = server
            .cpu_time()
            .unwrap_or_default()
            .saturating_sub(self.cpu);
        let share = busy.as_secs_f64() / wall.as_secs_f64();
        ensure!(
            share < 0.5,
            "{what}: in {wall:?} it ran or waited to run for {busy:?} \
             ({:.0}% of the time, {cpu:?} of CPU time): a busy loop?",
            share * 100.0
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Clients

/// How long a client that has done nothing wrong may wait for its answer
/// when the model lets nobody stall it: far below `HEAD_TIMEOUT`.
const PROMPT: Duration = Duration::from_millis(2500);

/// How late after `HEAD_TIMEOUT` a stalled client may be closed, or a
/// waiting one served, on a busy machine.
const MARGIN: Duration = Duration::from_secs(2);

fn client(addr: SocketAddr, wait: Duration) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect_timeout(&addr, wait).map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.set_write_timeout(Some(wait)).unwrap();
    Ok(stream)
}

fn send(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), String> {
    stream
        .write_all(bytes)
        .map_err(|e| format!("cannot send: {e}"))
}

/// How the server ended a connection.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// An orderly close: FIN.
    Closed,
    /// A reset.
    Reset,
}

/// Reads until the server ends the connection; a timeout is an error.
fn read_to_end(stream: &mut TcpStream) -> Result<(Vec<u8>, End), String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok((got, End::Closed)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok((got, End::Reset)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let waited = stream.read_timeout().unwrap().unwrap_or_default();
                return Err(format!(
                    "still open after {waited:?}, having answered {:?}",
                    text(&got)
                ));
            }
            Err(e) => return Err(format!("{e}, having answered {:?}", text(&got))),
        }
    }
}

/// Reads an answer that must be exactly `want`, followed by an orderly
/// close: a reset could have destroyed the answer on its way.
fn expect_answer(stream: &mut TcpStream, want: &[&[u8]]) -> Result<(), String> {
    let (got, end) = read_to_end(stream)?;
    ensure!(
        want.contains(&got.as_slice()),
        "got {:?}, want {:?}",
        text(&got),
        text(want[0])
    );
    ensure!(end == End::Closed, "the answer was followed by a reset");
    Ok(())
}

/// A well-behaved client: sends a request and must get the response,
/// within `wait`. Returns how long it took.
fn served(addr: SocketAddr, wait: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = client(addr, wait)?;
    send(&mut stream, GET_CLOSE)?;
    expect_answer(&mut stream, &[RESPONSE])?;
    Ok(started.elapsed())
}

/// Makes the next close of `stream` a reset: a linger of zero.
fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Starts a connection without waiting for it to be established: a
/// server that takes no more may leave it unfinished for a long while.
fn connect_in_background(addr: SocketAddr) -> Result<Socket, String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(Errno::EINPROGRESS as i32) => Ok(socket),
        Err(e) => Err(format!("cannot start a connection: {e}")),
    }
}

/// The start of a head that a client never finishes.
const HEAD_START: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n";

/// The rest of it, for a client that does.
const HEAD_END: &[u8] = b"Connection: close\r\n\r\n";

/// 1 KiB of bytes that look random, the same every run (an LCG).
fn random_bytes() -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..1024)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// What a TLS client sends first: a record header (22: handshake, version
/// 3.1, length), a ClientHello header (1, length), version 3.3, 32 random
/// bytes, and so on; here the rest is filler of the announced length.
fn tls_client_hello() -> Vec<u8> {
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    hello.resize(5 + 0xc8, 0x5a);
    hello
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113, 3.4):
/// a head in HTTP/1 form whose version is not 1.x.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn too_large(complete: bool) -> Vec<u8> {
    let mut head = HEAD_START.to_vec();
    head.extend_from_slice(b"X-Filler: ");
    head.resize(HEAD_LIMIT + 100, b'a');
    if complete {
        head.extend_from_slice(b"\r\n\r\n");
    }
    head
}

// ---------------------------------------------------------------------
// The faults that play out at once, one after another on one server

/// What a client that commits `fault` in one write sends: one message for
/// each form the fault takes, each on a connection of its own. Empty for
/// the faults that take more than a write.
fn forms(fault: Fault) -> Vec<Vec<u8>> {
    let post = |headers: &str, body: &str| {
        format!("POST / HTTP/1.1\r\nHost: test\r\n{headers}\r\n{body}").into_bytes()
    };
    match fault {
        Fault::TooLarge | Fault::TooLargeComplete => {
            vec![too_large(fault == Fault::TooLargeComplete)]
        }
        Fault::Binary => vec![random_bytes()],
        Fault::Tls => vec![tls_client_hello()],
        Fault::Http2 => vec![HTTP2_PREFACE.to_vec()],
        Fault::EmptyLines => vec![b"\r\n".repeat(HEAD_LIMIT / 2)],
        Fault::BareLineFeeds => vec![
            b"GET / HTTP/1.1\nHost: test\n\n".to_vec(),
            // The same, waiting for no blank line: refused as soon as the
            // bare LF comes.
            b"GET / HTTP/1.1\r\nHost: test\n".to_vec(),
        ],
        Fault::HostMissingOrTwice => vec![
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: test\r\nHost: other\r\nConnection: close\r\n\r\n".to_vec(),
        ],
        Fault::CloseAndKeepAlive => vec![
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close, keep-alive\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"
                .to_vec(),
        ],
        Fault::BodyTooLarge => vec![post(
            &format!("Content-Length: {}\r\n", BODY_LIMIT + 1),
            "the start of a body",
        )],
        Fault::Chunked => vec![post(
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        )],
        Fault::AmbiguousLength => vec![
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            post("Content-Length: 5, 5\r\n", "hello"),
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
        ],
        _ => Vec::new(),
    }
}

/// The request of a client that keeps its connection.
const GET_KEEP: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// Commits `fault` and checks what the client sees against `outcome`.
fn commit(addr: SocketAddr, l: &Listing, fault: Fault, outcome: Outcome) -> Result<(), String> {
    let forms = forms(fault);
    if !forms.is_empty() {
        for form in forms {
            let mut stream = client(addr, PROMPT)?;
            send(&mut stream, &form)?;
            expect_outcome(&mut stream, l, outcome)
                .map_err(|e| format!("after {:?}: {e}", text(&form)))?;
        }
        return Ok(());
    }
    let mut stream = client(addr, PROMPT)?;
    match fault {
        Fault::ResetMidHead => {
            send(&mut stream, HEAD_START)?;
            // Long enough for the server to have read it and to wait on.
            thread::sleep(Duration::from_millis(50));
            reset(stream);
            return expect_nothing(outcome);
        }
        Fault::ResetBeforeResponse => {
            send(&mut stream, GET_CLOSE)?;
            reset(stream);
            return expect_nothing(outcome);
        }
        Fault::HalfCloseAfterHead => {
            // HTTP/1.1 without `Connection: close`: a keep-alive server
            // answers in kind, then finds the client has finished.
            send(&mut stream, GET_KEEP)?;
            stream.shutdown(Shutdown::Write).unwrap();
        }
        Fault::HalfCloseMidHead => {
            send(&mut stream, HEAD_START)?;
            stream.shutdown(Shutdown::Write).unwrap();
        }
        Fault::FinWithRequest => {
            // Connected and waited on, the request and the FIN arrive
            // together: corked, they leave in one segment.
            thread::sleep(Duration::from_millis(50));
            SockRef::from(&stream).set_tcp_cork(true).unwrap();
            send(&mut stream, GET_KEEP)?;
            stream.shutdown(Shutdown::Write).unwrap();
            SockRef::from(&stream).set_tcp_cork(false).unwrap();
        }
        Fault::BodyIsARequest => {
            let head = format!(
                "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
                GET_KEEP.len()
            );
            send(&mut stream, &[head.as_bytes(), GET_KEEP].concat())?;
            stream.shutdown(Shutdown::Write).unwrap();
        }
        Fault::BodyThenRequest => {
            expect_kept(l, outcome)?;
            // A little JSON, a moment after its head, in a read of its own.
            // Taken for the start of the next request, it is no method.
            let body = br#"{"hello": "world"}"#;
            let head = format!(
                "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            send(&mut stream, head.as_bytes())?;
            thread::sleep(Duration::from_millis(50));
            send(&mut stream, body)?;
            if l.keep_alive {
                expect_exactly(&mut stream, RESPONSE_KEEP_ALIVE)?;
            } else {
                // Closed after the POST: the GET goes on a new connection,
                // as a client does that is told `Connection: close`.
                expect_answer(&mut stream, &[RESPONSE])?;
                stream = client(addr, PROMPT)?;
            }
            send(&mut stream, GET_CLOSE)?;
            return expect_answer(&mut stream, &[RESPONSE]).map_err(|e| format!("the GET: {e}"));
        }
        Fault::ExpectContinue => {
            expect_kept(l, outcome)?;
            let head = b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n\
                         Content-Length: 5\r\n\r\n";
            send(&mut stream, head)?;
            if !l.keep_alive {
                // Its answer does not depend on the body, and it will not
                // read one: it answers at once, and closes.
                return expect_answer(&mut stream, &[RESPONSE]);
            }
            expect_exactly(&mut stream, CONTINUE)?;
            send(&mut stream, b"hello")?;
            expect_exactly(&mut stream, RESPONSE_KEEP_ALIVE)?;
            stream.shutdown(Shutdown::Write).unwrap();
            return expect_answer(&mut stream, &[&b""[..]]);
        }
        _ => return Err(format!("{fault:?} is not a fault that plays out at once")),
    }
    expect_outcome(&mut stream, l, outcome)
}

/// Checks what a client that has done its part sees, until the close.
fn expect_outcome(stream: &mut TcpStream, l: &Listing, outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Refused431 => expect_answer(stream, &[TOO_LARGE]),
        Outcome::Refused400 => expect_answer(stream, &[BAD_REQUEST]),
        Outcome::Refused411 => expect_answer(stream, &[LENGTH_REQUIRED]),
        Outcome::Refused413 => expect_answer(stream, &[CONTENT_TOO_LARGE]),
        Outcome::Answered | Outcome::AnsweredOnce if l.keep_alive => {
            expect_answer(stream, &[RESPONSE_KEEP_ALIVE, RESPONSE])
        }
        Outcome::Answered | Outcome::AnsweredOnce | Outcome::AnsweredClosing => {
            expect_answer(stream, &[RESPONSE])
        }
        Outcome::ClosedUnanswered => {
            let (got, _) = read_to_end(stream)?;
            ensure!(got.is_empty(), "answered {:?}", text(&got));
            Ok(())
        }
        _ => Err(format!("no check for {outcome:?}")),
    }
}

/// Checks that an outcome which says whether the connection is kept says
/// what the listing does (`keep_alive` in the registry).
fn expect_kept(l: &Listing, outcome: Outcome) -> Result<(), String> {
    let kept = match outcome {
        Outcome::BothOnOne | Outcome::Continued => true,
        Outcome::BothOnTwo | Outcome::NoContinue => false,
        Outcome::BothOnOneOrTwo | Outcome::ContinuedOrNot => l.keep_alive,
        _ => return Err(format!("no check for {outcome:?}")),
    };
    ensure!(
        kept == l.keep_alive,
        "the table says {outcome:?}, but the registry says keep_alive: {}",
        l.keep_alive
    );
    Ok(())
}

/// Reads exactly `want`, however many reads it takes: what comes after,
/// if anything, is left unread.
fn expect_exactly(stream: &mut TcpStream, want: &[u8]) -> Result<(), String> {
    let mut got = vec![0; want.len()];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("{e}, waiting for {:?}", text(want)))?;
    ensure!(got == want, "got {:?}, want {:?}", text(&got), text(want));
    Ok(())
}

/// The client is gone: what the server did with its connection shows in
/// what it holds afterwards, and in whether it serves the next client.
fn expect_nothing(outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Dropped | Outcome::ResponseLost => Ok(()),
        _ => Err(format!("no check for {outcome:?} after a reset")),
    }
}

fn plays_out_at_once(fault: Fault) -> bool {
    !matches!(
        fault,
        Fault::Silent
            | Fault::Slowloris
            | Fault::Thousand
            | Fault::OverFdLimit
            | Fault::StoppedProcess
    )
}

fn faults_at_once(l: &'static Listing) -> Result<(), String> {
    let server = start(l, None)?;
    let before = settled(&server);
    for fault in Fault::ALL.into_iter().filter(|&f| plays_out_at_once(f)) {
        let outcome = outcome(l.model, fault);
        let context = format!("a client that {} ({outcome:?})", fault.what());
        commit(server.addr(), l, fault, outcome).map_err(|e| format!("{context}: {e}"))?;
        // Whatever that client did, the next one is served, and soon.
        served(server.addr(), PROMPT).map_err(|e| format!("{context}, then a good client: {e}"))?;
    }
    back_to(&server, &before)
}

/// Bad bytes, resets and half-closes, each answered at once: every
/// listing, one fault after another, a good client after each.
#[test]
fn faults_that_play_out_at_once() {
    for_every_listing(LISTINGS.len(), faults_at_once);
}

// ---------------------------------------------------------------------
// A stopped process, and a server asked to stop

fn signal(pid: u32, signal: Signal) -> Result<(), String> {
    let pid = Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
    kill(pid, signal).map_err(|e| format!("{signal}: {e}"))
}

/// One of the server's processes is stopped, as a debugger or Ctrl-Z
/// stops it: a worker, where there are workers, or else the server. Then
/// the server is asked to stop, as a supervisor asks (systemd does so):
/// `SIGTERM` and, so that a stopped process can act on it, `SIGCONT`,
/// both to the server alone. It must exit, and take every process of its
/// own with it, without being killed.
fn stopped_process(l: &'static Listing) -> Result<(), String> {
    let outcome = outcome(l.model, Fault::StoppedProcess);
    ensure!(
        outcome == Outcome::StopsAllTheSame,
        "no check for {outcome:?}"
    );
    let server = start(l, None)?;
    let pid = server.pid();
    let before = settled(&server);
    let victim = before
        .processes
        .iter()
        .copied()
        .filter(|&p| p != pid)
        .max()
        .unwrap_or(pid);
    signal(victim, Signal::SIGSTOP)?;
    signal(pid, Signal::SIGTERM)?;
    signal(pid, Signal::SIGCONT)?;
    // `stop` sends SIGTERM again, which changes nothing, then waits.
    let stopped = server.stop(WAIT).map_err(|e| format!("stop: {e}"))?;
    ensure!(
        !stopped.killed,
        "with process {victim} stopped, the server was still running {WAIT:?} after SIGTERM"
    );
    let left = support::procfs::group_members(pid);
    ensure!(left.is_empty(), "processes left behind: {left:?}");
    Ok(())
}

/// A server with a stopped process is asked to stop: every listing.
#[test]
fn a_stopped_process_does_not_stop_the_stop() {
    for_every_listing(LISTINGS.len(), stopped_process);
}

// ---------------------------------------------------------------------
// Clients that hold a connection and never finish their head

/// Watches clients that never finish their heads (trickling one more byte
/// a second into them if `trickle`), until the server closes each.
/// Returns when each was closed, counted from `since`.
fn watch_stalled(
    clients: Vec<TcpStream>,
    trickle: bool,
    since: Instant,
) -> Result<Vec<Duration>, String> {
    let give_up = since + HEAD_TIMEOUT + MARGIN + Duration::from_secs(1);
    let mut closed: Vec<Option<Duration>> = vec![None; clients.len()];
    let mut next_byte = Instant::now() + Duration::from_secs(1);
    for stream in &clients {
        stream.set_nonblocking(true).unwrap();
    }
    while closed.iter().any(Option::is_none) {
        ensure!(
            Instant::now() < give_up,
            "a client that never finished its head is still open after {:?}",
            since.elapsed()
        );
        let write_now = trickle && Instant::now() >= next_byte;
        if write_now {
            next_byte += Duration::from_secs(1);
        }
        for (mut stream, closed) in clients.iter().zip(&mut closed) {
            if closed.is_some() {
                continue;
            }
            let mut byte = [0u8; 1];
            let end = match stream.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => return Err("answered a client that never finished its head".into()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(_) => true, // a reset: the byte we sent last was unread
            };
            let end = end || (write_now && stream.write(b"a").is_err());
            if end {
                *closed = Some(since.elapsed());
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(closed.into_iter().flatten().collect())
}

fn stall(l: &'static Listing, fault: Fault) -> Result<(), String> {
    let outcome = outcome(l.model, fault);
    let server = start(l, None)?;
    let before = settled(&server);

    // As many stalled clients as the model serves at once, so that a model
    // that can be stalled is; one for those that cannot.
    let count = l.serves_at_once().unwrap_or(1);
    let since = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..count {
        let mut stream = client(server.addr(), PROMPT)?;
        if fault == Fault::Slowloris {
            send(&mut stream, HEAD_START)?;
        }
        stalled.push(stream);
    }
    let watcher = thread::spawn(move || watch_stalled(stalled, fault == Fault::Slowloris, since));
    // The server takes the stalled clients before the next one.
    thread::sleep(Duration::from_millis(100));
    let meter = SpinMeter::start(&server);

    let took = served(server.addr(), HEAD_TIMEOUT + MARGIN)
        .map_err(|e| format!("the next client: {e}"))?;
    let answered = since.elapsed();
    match outcome {
        Outcome::StallsEveryone | Outcome::TakesAWorker => ensure!(
            answered >= HEAD_TIMEOUT - Duration::from_millis(100),
            "the next client was served after {answered:?}, before the stall could end"
        ),
        Outcome::TakesAThread | Outcome::TakesABuffer => ensure!(
            took < PROMPT,
            "the next client waited {took:?}, as if stalled"
        ),
        _ => return Err(format!("no check for {outcome:?} after {fault:?}")),
    }

    let closed = watcher.join().unwrap()?;
    for at in closed {
        ensure!(
            at >= HEAD_TIMEOUT - Duration::from_millis(100) && at < HEAD_TIMEOUT + MARGIN,
            "a stalled client was closed after {at:?}, not at the head timeout"
        );
    }
    meter.check(&server, "while it waited for the stalled clients")?;
    back_to(&server, &before)
}

/// A silent client and a slowloris, each against every listing: the two
/// cases that must wait out `HEAD_TIMEOUT`, so all of them run at once.
#[test]
fn clients_that_never_finish_their_head() {
    let mut checks: Vec<(String, Check)> = Vec::new();
    for l in LISTINGS.iter().filter(|l| !support::skipped(l.name)) {
        for fault in [Fault::Silent, Fault::Slowloris] {
            let label = format!("{}, a client that {}", l.name, fault.what());
            checks.push((label, Box::new(move || stall(l, fault))));
        }
    }
    let all = checks.len();
    run_all(checks, all);
}

// ---------------------------------------------------------------------
// Many clients at once

const THOUSAND: usize = 1000;

/// Raises this process's descriptor limit (which the servers inherit) to
/// at least `needed`, if its hard limit allows. Returns the limit.
fn raise_fd_limit(needed: u64) -> u64 {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= needed {
        return soft;
    }
    let wanted = needed.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
        Ok(()) => wanted,
        Err(_) => soft,
    }
}

fn thousand(l: &'static Listing) -> Result<(), String> {
    let outcome = outcome(l.model, Fault::Thousand);
    let server = start(l, None)?;
    let before = settled(&server);
    let mut clients = Vec::with_capacity(THOUSAND);
    match outcome {
        Outcome::InTurn => {
            // Each sends its whole request as soon as it is connected, so
            // that a server which takes one at a time can go on taking.
            // Connecting faster than it accepts would overflow the kernel's
            // backlog (128 for most listings), which drops the handshake
            // and has the client try again a second later: so no client
            // connects before the one 64 places ahead of it is answered.
            for i in 0..THOUSAND {
                if let Some(ahead) = i.checked_sub(64) {
                    expect_answer(&mut clients[ahead], &[RESPONSE])
                        .map_err(|e| format!("client {ahead}: {e}"))?;
                }
                let mut stream = client(server.addr(), WAIT)?;
                send(&mut stream, GET_CLOSE)?;
                clients.push(stream);
            }
            let now = server.holdings();
            ensure!(
                now.threads == before.threads && now.processes == before.processes,
                "it started threads or processes for its clients: {now:?}, before {before:?}"
            );
        }
        Outcome::AllAtOnceThreads | Outcome::AllAtOnce => {
            // Half a head each: the server must hold all of them at once,
            // and from the first one's connect it has `HEAD_TIMEOUT` before
            // the first deadline closes it.
            let first = Instant::now();
            let mut now = server.holdings();
            for i in 1..=THOUSAND {
                let mut stream = client(server.addr(), WAIT)?;
                send(&mut stream, HEAD_START)?;
                clients.push(stream);
                // Connecting faster than the server accepts overflows the
                // kernel's backlog (128 for these listings), which drops
                // the handshake; the client tries again a second later,
                // then two seconds later, while the deadlines run. So let
                // the server keep up.
                if i % 32 == 0 || i == THOUSAND {
                    let behind = if i == THOUSAND { 0 } else { 64 };
                    now = held_at_least(&server, (before.fds + i).saturating_sub(behind))?;
                }
            }
            let took = first.elapsed();
            ensure!(
                took < HEAD_TIMEOUT - Duration::from_secs(1),
                "it took {took:?} to hold {THOUSAND} clients: too slow to see them all at once"
            );
            if outcome == Outcome::AllAtOnceThreads {
                // A connection is accepted a moment before its thread starts.
                let deadline = Instant::now() + PROMPT;
                while now.threads < before.threads + THOUSAND {
                    ensure!(
                        Instant::now() < deadline,
                        "{} threads for {THOUSAND} clients",
                        now.threads
                    );
                    thread::sleep(Duration::from_millis(10));
                    now = server.holdings();
                }
            } else {
                ensure!(
                    now.threads == before.threads,
                    "{} threads, {} before the clients came",
                    now.threads,
                    before.threads
                );
            }
            // Meanwhile, one more is served at once.
            served(server.addr(), PROMPT)
                .map_err(|e| format!("a client beside the {THOUSAND}: {e}"))?;
            for stream in &mut clients {
                send(stream, HEAD_END)?;
            }
        }
        _ => return Err(format!("no check for {outcome:?}")),
    }
    let unread = match outcome {
        Outcome::InTurn => THOUSAND - 64,
        _ => 0,
    };
    for (i, stream) in clients.iter_mut().enumerate().skip(unread) {
        expect_answer(stream, &[RESPONSE]).map_err(|e| format!("client {i}: {e}"))?;
    }
    drop(clients);
    back_to(&server, &before)
}

/// Waits (up to [`WAIT`]) until the server holds at least `fds`
/// descriptors, and says what it holds then.
fn held_at_least(server: &Server, fds: usize) -> Result<Holdings, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = server.holdings();
        if now.fds >= fds {
            return Ok(now);
        }
        ensure!(
            Instant::now() < deadline,
            "it holds {} descriptors after {WAIT:?}, not {fds}",
            now.fds
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// A thousand clients at once, against every listing; as many listings at
/// once as this process's descriptors allow.
#[test]
fn a_thousand_clients_at_once() {
    // Per listing: its clients here, and a margin for everything else.
    let per_listing = THOUSAND as u64 + 100;
    let wanted = per_listing * 4 + 512;
    let limit = raise_fd_limit(wanted);
    if limit < per_listing + 512 {
        eprintln!(
            "SKIPPED a_thousand_clients_at_once: this process may open only {limit} \
             descriptors (ulimit -n, hard limit included), and the test needs {}",
            per_listing + 512
        );
        return;
    }
    let batch = ((limit - 512) / per_listing).clamp(1, 4) as usize;
    for_every_listing(batch, thousand);
}

// ---------------------------------------------------------------------
// More clients than the server has descriptors

/// The server's limit on open descriptors, and how many clients come.
const FD_LIMIT: u64 = 64;
const CROWD: usize = 200;

fn over_fd_limit(l: &'static Listing) -> Result<(), String> {
    let outcome = outcome(l.model, Fault::OverFdLimit);
    let server = start(l, Some(FD_LIMIT))?;
    let before = settled(&server);
    let crowd = (0..CROWD)
        .map(|_| connect_in_background(server.addr()))
        .collect::<Result<Vec<Socket>, String>>()?;

    let deadline = Instant::now() + WAIT;
    match outcome {
        Outcome::NeverOutOfFds => {
            // Time to take all it would take.
            thread::sleep(Duration::from_millis(500));
            let now = server.holdings();
            // Those it serves, those queued for it (one per worker), and
            // one more in hand waiting for room in the queue.
            let most = 2 * l.serves_at_once().unwrap_or(1) + 1;
            ensure!(
                now.fds <= before.fds + most,
                "it holds {} descriptors more than before, for {most} clients at most",
                now.fds - before.fds.min(now.fds)
            );
        }
        Outcome::PausesAtLimit | Outcome::AtLimitNoSpin => {
            let full = FD_LIMIT as usize - 8;
            while server.holdings().fds < full {
                ensure!(
                    Instant::now() < deadline,
                    "it never came near its limit of {FD_LIMIT} descriptors: {:?}",
                    server.holdings()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        _ => return Err(format!("no check for {outcome:?}")),
    }
    // Now it has no descriptor for the next connection: it must wait
    // quietly, not retry in a loop.
    let meter = SpinMeter::start(&server);
    thread::sleep(Duration::from_secs(1));
    meter.check(&server, "with the crowd connected")?;
    let now = server.holdings();
    ensure!(
        now.processes == before.processes,
        "its processes changed under load: {:?}, before {:?}",
        now.processes,
        before.processes
    );

    // The crowd leaves; the server serves again, and gives back all it held.
    drop(crowd);
    served(server.addr(), WAIT).map_err(|e| format!("after the crowd left: {e}"))?;
    back_to(&server, &before)
}

/// 200 silent clients against every listing, each limited to 64 open
/// descriptors.
#[test]
fn more_clients_than_descriptors() {
    raise_fd_limit(CROWD as u64 * LISTINGS.len() as u64 + 512);
    for_every_listing(LISTINGS.len(), over_fd_limit);
}
