//! What a thread per connection buys and costs: nobody waits for a free
//! worker, however many clients are connected, but every open connection
//! is a thread, and the threads go when their clients do.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{
    GET_CLOSE, Server, assert_bytes, connect, exchange, read_to_close, start, wait_until,
};

const NAME: &str = "thread-per-connection";

/// How many clients are connected at once: a bounded experiment.
const CLIENTS: usize = 200;

fn threads(server: &Server) -> usize {
    server.threads().expect("count the server's threads")
}

#[test]
fn two_hundred_clients_at_once() {
    let server = start(NAME);
    // Only the main thread, which accepts.
    let baseline = threads(&server);
    assert_eq!(baseline, 1);

    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr())).collect();
    // Each connection has a thread of its own, waiting for a request.
    wait_until("a thread per connection", || {
        threads(&server) == baseline + CLIENTS
    });
    for client in &mut clients {
        client.write_all(GET_CLOSE).expect("write");
    }
    for client in &mut clients {
        let got = read_to_close(client).expect("read the response");
        assert_bytes(&got, support::RESPONSE);
    }

    drop(clients);
    wait_until("the threads to end", || threads(&server) == baseline);
}

#[test]
fn silent_clients_stall_nobody() {
    let server = start(NAME);
    let silent: Vec<TcpStream> = (0..20).map(|_| connect(server.addr())).collect();
    let started = Instant::now();
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
    assert!(
        started.elapsed() < wire::HEAD_TIMEOUT,
        "served only after the silent clients timed out"
    );
    drop(silent);
}
