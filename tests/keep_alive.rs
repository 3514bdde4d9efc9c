//! Persistent connections, for every listing that keeps them (`keep_alive`
//! in `support::LISTINGS`): many requests on one connection, pipelined
//! requests, HTTP/1.0's `Connection: keep-alive`, `Connection: close`
//! honoured, and an idle connection closed by the server.
//!
//! Each listing is one line in the `rows!` call at the bottom. The idle
//! test waits out `wire::HEAD_TIMEOUT`, so it is one test that checks every
//! listing at once, in parallel.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::{GET_CLOSE, LISTINGS, WAIT, assert_bytes, connect, read_to_close, start};

/// HTTP/1.1 keeps the connection unless told otherwise.
const GET_KEEP: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// HTTP/1.0 keeps it only when asked, as `ab -k` asks.
const GET_10_KEEP: &[u8] =
    b"GET / HTTP/1.0\r\nHost: test\r\nConnection: Keep-Alive\r\nUser-Agent: ApacheBench/2.3\r\n\r\n";

/// Reads exactly one response of `want`'s length, and checks it.
#[track_caller]
fn expect_response(stream: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0; want.len()];
    stream.read_exact(&mut got).expect("read a response");
    assert_bytes(&got, want);
}

fn many_requests_on_one_connection(name: &str) {
    let server = start(name);
    let mut stream = connect(server.addr());
    for _ in 0..200 {
        stream.write_all(GET_KEEP).expect("write");
        expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    }
    stream.write_all(GET_CLOSE).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    assert_bytes(&got, support::RESPONSE);
}

fn pipelined_requests_are_answered_in_order(name: &str) {
    let server = start(name);
    let mut stream = connect(server.addr());
    // Fifty heads and a closing one, in one write, and one more after the
    // close that must not be answered; then the answers. (The server must
    // close without a reset for the bytes it never read, or the answers
    // could be lost on their way.)
    let mut requests = GET_KEEP.repeat(50);
    requests.extend_from_slice(GET_10_KEEP);
    requests.extend_from_slice(GET_CLOSE);
    requests.extend_from_slice(GET_KEEP);
    stream.write_all(&requests).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    let mut want = support::RESPONSE_KEEP_ALIVE.repeat(51);
    want.extend_from_slice(support::RESPONSE);
    assert_bytes(&got, &want);
}

fn http_1_0_keep_alive(name: &str) {
    let server = start(name);
    let mut stream = connect(server.addr());
    for _ in 0..3 {
        stream.write_all(GET_10_KEEP).expect("write");
        expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    }
    // Plain HTTP/1.0 means close.
    stream.write_all(support::GET_AB).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    assert_bytes(&got, support::RESPONSE);
}

fn close_is_honoured(name: &str) {
    let server = start(name);
    let mut stream = connect(server.addr());
    stream.write_all(GET_KEEP).expect("write");
    expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    stream.write_all(GET_CLOSE).expect("write");
    expect_response(&mut stream, support::RESPONSE);
    // Then the end of the stream, not another byte.
    let mut byte = [0u8; 1];
    assert_eq!(stream.read(&mut byte).expect("read the close"), 0);
}

/// One request, then silence: the server closes the connection once
/// `wire::HEAD_TIMEOUT` has passed since the response, not before.
fn idle_connection_is_closed(name: &str) {
    let server = start(name);
    let mut stream = connect(server.addr());
    stream.write_all(GET_KEEP).expect("write");
    expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    let answered = Instant::now();
    stream
        .set_read_timeout(Some(wire::HEAD_TIMEOUT + WAIT))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("{name}: a byte nobody asked for"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{name}: the idle connection was not closed: {e}"),
    }
    let idle = answered.elapsed();
    assert!(
        idle >= wire::HEAD_TIMEOUT - Duration::from_millis(200),
        "{name} closed an idle connection after {idle:?}"
    );
}

#[test]
fn idle_connections_are_closed() {
    let keep_alive: Vec<_> = LISTINGS
        .iter()
        .filter(|l| l.keep_alive && !support::skipped(l.name))
        .collect();
    thread::scope(|scope| {
        for l in &keep_alive {
            scope.spawn(|| idle_connection_is_closed(l.name));
        }
    });
}

macro_rules! rows {
    ($($row:ident),* $(,)?) => {$(
        mod $row {
            fn name() -> String {
                stringify!($row).replace('_', "-")
            }
            #[test]
            fn many_requests_on_one_connection() {
                if support::skipped(&name()) {
                    return;
                }
                super::many_requests_on_one_connection(&name())
            }
            #[test]
            fn pipelined_requests_are_answered_in_order() {
                if support::skipped(&name()) {
                    return;
                }
                super::pipelined_requests_are_answered_in_order(&name())
            }
            #[test]
            fn http_1_0_keep_alive() {
                if support::skipped(&name()) {
                    return;
                }
                super::http_1_0_keep_alive(&name())
            }
            #[test]
            fn close_is_honoured() {
                if support::skipped(&name()) {
                    return;
                }
                super::close_is_honoured(&name())
            }
        }
    )*
        #[test]
        fn every_keep_alive_listing_has_a_row() {
            let rows = [$(stringify!($row).replace('_', "-")),*];
            for l in support::LISTINGS.iter().filter(|l| l.keep_alive) {
                assert!(rows.contains(&l.name.to_string()), "{} has no row", l.name);
            }
            for row in &rows {
                assert!(support::listing(row).keep_alive, "{row} does not keep connections");
            }
        }
    };
}

rows!(
    thread_pool,
    select,
    poll,
    epoll,
    epoll_edge,
    epoll_reuseport,
    uring,
    tokio_tasks,
);
