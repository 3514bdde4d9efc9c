//! What a fixed number of threads can and cannot do, whether a queue feeds
//! them (thread-pool) or each accepts for itself (threads-accept): a silent
//! client takes one worker, not the server; as many silent clients as there
//! are workers take them all, and the next request waits (in our queue, or
//! in the kernel's backlog) until a worker is freed, by the client leaving
//! or by `wire::HEAD_TIMEOUT`.
//!
//! Each listing is one line in the `pools!` call at the bottom; every test
//! runs it with two workers.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{
    GET_CLOSE, Server, WAIT, assert_bytes, connect, exchange, read_to_close, start_with,
};

/// Two workers; the main thread makes three.
fn start_two(name: &str) -> Server {
    start_with(name, &["2"])
}

/// Shorter than `wire::HEAD_TIMEOUT` by far: long enough for any idle
/// worker to have answered.
const QUIET: Duration = Duration::from_millis(1000);

/// A connection whose request is sent, and whose answer is read later.
fn send_request(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    stream.write_all(GET_CLOSE).expect("write");
    stream
}

#[track_caller]
fn assert_no_answer_yet(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut byte = [0u8; 1];
    let err = stream
        .read(&mut byte)
        .expect_err("answered while every worker was busy");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
}

fn the_number_of_threads_is_fixed(name: &str) {
    let server = start_two(name);
    // The main thread (which accepts, or only waits) and the two workers.
    assert_eq!(server.threads().unwrap(), 3);
    for _ in 0..20 {
        let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
        assert_bytes(&got, support::RESPONSE);
    }
    assert_eq!(server.threads().unwrap(), 3);
}

fn a_silent_client_takes_one_worker_only(name: &str) {
    let server = start_two(name);
    let _silent = connect(server.addr());
    let started = Instant::now();
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
    assert!(
        started.elapsed() < wire::HEAD_TIMEOUT,
        "served only after the silent client timed out"
    );
}

fn silent_clients_take_every_worker_until_one_leaves(name: &str) {
    let server = start_two(name);
    let first = connect(server.addr());
    let _second = connect(server.addr());
    let mut next = send_request(server.addr());
    assert_no_answer_yet(&mut next);

    // A worker's read returns 0, it is done with that client, and it takes
    // the request waiting for it (from the queue, or from the backlog).
    drop(first);
    next.set_read_timeout(Some(WAIT)).unwrap();
    let got = read_to_close(&mut next).expect("read the response");
    assert_bytes(&got, support::RESPONSE);
}

fn silent_clients_take_every_worker_until_the_head_timeout(name: &str) {
    let server = start_two(name);
    let started = Instant::now();
    let _first = connect(server.addr());
    let _second = connect(server.addr());
    let mut next = send_request(server.addr());
    assert_no_answer_yet(&mut next);

    next.set_read_timeout(Some(wire::HEAD_TIMEOUT + WAIT))
        .unwrap();
    let got = read_to_close(&mut next).expect("read the response");
    assert_bytes(&got, support::RESPONSE);
    // A worker's clock started after our connect: it gave up no sooner.
    let waited = started.elapsed();
    assert!(
        waited >= wire::HEAD_TIMEOUT - Duration::from_millis(100),
        "answered after {waited:?}, before a worker could have timed out"
    );
}

macro_rules! pools {
    ($($row:ident),* $(,)?) => {$(
        mod $row {
            fn name() -> String {
                stringify!($row).replace('_', "-")
            }
            #[test]
            fn the_number_of_threads_is_fixed() {
                super::the_number_of_threads_is_fixed(&name())
            }
            #[test]
            fn a_silent_client_takes_one_worker_only() {
                super::a_silent_client_takes_one_worker_only(&name())
            }
            #[test]
            fn silent_clients_take_every_worker_until_one_leaves() {
                super::silent_clients_take_every_worker_until_one_leaves(&name())
            }
            #[test]
            fn silent_clients_take_every_worker_until_the_head_timeout() {
                super::silent_clients_take_every_worker_until_the_head_timeout(&name())
            }
        }
    )*};
}

pools!(thread_pool, threads_accept);
