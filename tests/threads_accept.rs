//! What N threads that each accept on the same listener can and cannot do,
//! with no queue between them: a silent client takes one thread, not the
//! server; as many silent clients as there are threads take them all, and
//! the next connection waits in the kernel's backlog until a thread is
//! freed, by the client leaving or by `wire::HEAD_TIMEOUT`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{GET_CLOSE, WAIT, assert_bytes, connect, exchange, read_to_close, start_with};

const NAME: &str = "threads-accept";

/// Shorter than `wire::HEAD_TIMEOUT` by far: long enough for any idle
/// thread to have answered.
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
        .expect_err("answered while every thread was busy");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
}

#[test]
fn the_number_of_threads_is_fixed() {
    let server = start_with(NAME, &["2"]);
    // The main thread, which only waits, and the two that accept.
    assert_eq!(server.threads().unwrap(), 3);
    for _ in 0..20 {
        let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
        assert_bytes(&got, wire::RESPONSE);
    }
    assert_eq!(server.threads().unwrap(), 3);
}

#[test]
fn a_silent_client_takes_one_thread_only() {
    let server = start_with(NAME, &["2"]);
    let _silent = connect(server.addr());
    let started = Instant::now();
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, wire::RESPONSE);
    assert!(
        started.elapsed() < wire::HEAD_TIMEOUT,
        "served only after the silent client timed out"
    );
}

#[test]
fn silent_clients_take_every_thread_until_one_leaves() {
    let server = start_with(NAME, &["2"]);
    let first = connect(server.addr());
    let _second = connect(server.addr());
    let mut next = send_request(server.addr());
    assert_no_answer_yet(&mut next);

    // A thread's read returns 0, it is done with that client, and its next
    // accept takes the connection waiting in the backlog.
    drop(first);
    next.set_read_timeout(Some(WAIT)).unwrap();
    let got = read_to_close(&mut next).expect("read the response");
    assert_bytes(&got, wire::RESPONSE);
}

#[test]
fn silent_clients_take_every_thread_until_the_head_timeout() {
    let server = start_with(NAME, &["2"]);
    let started = Instant::now();
    let _first = connect(server.addr());
    let _second = connect(server.addr());
    let mut next = send_request(server.addr());
    assert_no_answer_yet(&mut next);

    next.set_read_timeout(Some(wire::HEAD_TIMEOUT + WAIT))
        .unwrap();
    let got = read_to_close(&mut next).expect("read the response");
    assert_bytes(&got, wire::RESPONSE);
    // A thread's clock started after our connect: it gave up no sooner.
    let waited = started.elapsed();
    assert!(
        waited >= wire::HEAD_TIMEOUT - Duration::from_millis(100),
        "answered after {waited:?}, before a thread could have timed out"
    );
}
