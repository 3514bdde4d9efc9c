//! The answers to the chapters' exercises whose answer is code. Each test
//! is named in its exercise; run one with `cargo test --test exercises
//! NAME`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use support::{GET_CLOSE, Server, WAIT, assert_bytes, connect, read_to_close, start_with};

/// Well within `wire::HEAD_TIMEOUT`: long enough for a free worker to have
/// answered.
const QUIET: Duration = Duration::from_millis(1000);

/// Sends a plain request and asserts that no answer comes for `QUIET`.
#[track_caller]
fn unanswered_for_a_while(server: &Server) -> TcpStream {
    let mut next = connect(server.addr());
    next.write_all(GET_CLOSE).expect("write");
    next.set_read_timeout(Some(QUIET)).unwrap();
    let mut byte = [0u8; 1];
    let err = next
        .read(&mut byte)
        .expect_err("answered while every worker was busy");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    next.set_read_timeout(Some(WAIT)).unwrap();
    next
}

/// Pre-forked processes, exercise 1: with one worker, the pre-forked
/// server is the linear server again. A silent client holds the only
/// worker, the next request waits in the backlog, and it is answered the
/// moment the silent client leaves.
#[test]
fn prefork_with_one_worker_stalls_like_the_linear_server() {
    let server = start_with("prefork", &["1"]);
    let silent = connect(server.addr());
    let mut next = unanswered_for_a_while(&server);
    drop(silent);
    let got = read_to_close(&mut next).expect("read the response");
    assert_bytes(&got, support::RESPONSE);
}

/// select and poll, exercise 1: `poll` takes an array, not a bitmap of
/// `FD_SETSIZE` bits, so it serves a connection whose descriptor is past
/// 1023, where the `select` listing must close it
/// (`select_sheds_descriptors_past_fd_setsize` in `tests/event_loops.rs`).
#[test]
fn poll_serves_past_fd_setsize() {
    const CONNECTIONS: usize = 1100;
    // This process holds every client, and the server inherits the limit.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = (CONNECTIONS as u64 + 256).min(hard);
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
    }
    if wanted < CONNECTIONS as u64 + 64 {
        println!(
            "skipped: the limit on open files is {hard}, too low for {CONNECTIONS} connections"
        );
        return;
    }
    let server = start_with("poll", &[]);
    let mut clients: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|i| {
            // The listening socket's queue holds 128: pace the connects so
            // that none waits a second for its SYN to be sent again.
            if i % 64 == 63 {
                thread::sleep(Duration::from_millis(10));
            }
            connect(server.addr())
        })
        .collect();
    // The newest has the highest descriptor in the server: past 1023.
    let mut last = clients.pop().unwrap();
    last.write_all(GET_CLOSE).expect("write");
    let got = read_to_close(&mut last).expect("read the response");
    assert_bytes(&got, support::RESPONSE);
}
