//! Work handed off: the `epoll-offload` server, and `tokio-tasks` with its
//! `spawn-blocking` switch, answer a plain request while another request's
//! `/sleep` runs elsewhere; `epoll`, `executor`, and `tokio-tasks` on one
//! worker without the switch, make it wait. The check is an order, not a time:
//! whether the sleeping request was answered before the plain one.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::{
    RESPONSE, RESPONSE_KEEP_ALIVE, Server, assert_bytes, back_to, connect, exchange, program,
    read_to_close, settled, start_with,
};

const SLEEP: &[u8] = b"GET /sleep/1000 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
const PLAIN: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

/// Sends a request that sleeps a second, and, once the server has had time
/// to start it, a plain one on another connection, answered in full.
/// Returns whether the sleeping one had been answered by then: whether it
/// held up the plain one.
fn held_up(server: &Server) -> bool {
    let mut sleeping = connect(server.addr());
    sleeping.write_all(SLEEP).expect("write");
    thread::sleep(Duration::from_millis(200));
    let plain = exchange(server.addr(), &[PLAIN], Duration::ZERO);
    assert_bytes(&plain, RESPONSE);
    sleeping.set_nonblocking(true).unwrap();
    let answered = match sleeping.read(&mut [0; 1]) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("{e}"),
    };
    sleeping.set_nonblocking(false).unwrap();
    let mut rest = read_to_close(&mut sleeping).expect("read");
    if answered {
        rest.insert(0, RESPONSE[0]);
    }
    assert_bytes(&rest, RESPONSE);
    answered
}

fn tokio_on_one_worker(args: &[&str]) -> Server {
    let vars = [("TOKIO_WORKER_THREADS", "1")];
    Server::start_env(&program("tokio-tasks"), args, &vars).expect("start")
}

#[test]
fn epoll_waits_for_the_work_and_epoll_offload_does_not() {
    assert!(held_up(&start_with("epoll", &[])));
    // The executor by hand does the work in its task, on its one thread.
    assert!(held_up(&start_with("executor", &[])));
    assert!(!held_up(&start_with("epoll-offload", &["1"])));
}

#[test]
fn tokio_waits_for_the_work_unless_it_goes_to_spawn_blocking() {
    assert!(held_up(&tokio_on_one_worker(&[])));
    assert!(!held_up(&tokio_on_one_worker(&["spawn-blocking"])));
}

/// Work and plain requests pipelined on one connection are answered in
/// the order they came, each once.
#[test]
fn pipelined_work_is_answered_in_order() {
    let get = |target: &str, close: bool| {
        let connection = if close { "Connection: close\r\n" } else { "" };
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n{connection}\r\n")
    };
    let requests = [
        get("/sleep/50", false),
        get("/", false),
        get("/cpu/2000", false),
        get("/sleep/10", false),
        get("/", true),
    ]
    .concat();
    let mut want = RESPONSE_KEEP_ALIVE.repeat(4);
    want.extend_from_slice(RESPONSE);
    for server in [
        start_with("epoll-offload", &["2"]),
        tokio_on_one_worker(&["spawn-blocking"]),
    ] {
        let whole = exchange(server.addr(), &[requests.as_bytes()], Duration::ZERO);
        assert_bytes(&whole, &want);
        // And cut anywhere, here in the middle of the second head.
        let (a, b) = requests.as_bytes().split_at(60);
        let split = exchange(server.addr(), &[a, b], Duration::from_millis(20));
        assert_bytes(&split, &want);
    }
}

/// Clients that leave while their job runs, by closing or by a reset,
/// leave nothing behind: no descriptor, no thread, and the pool serves on.
#[test]
fn clients_that_leave_while_their_job_runs() {
    let server = start_with("epoll-offload", &["2"]);
    let before = settled(&server);
    for reset in [false, true, false, true] {
        let mut client = connect(server.addr());
        client.write_all(SLEEP).expect("write");
        thread::sleep(Duration::from_millis(50));
        if reset {
            socket2::SockRef::from(&client)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(client);
    }
    back_to(&server, &before).unwrap();
    let got = exchange(server.addr(), &[PLAIN], Duration::ZERO);
    assert_bytes(&got, RESPONSE);
}

/// More jobs than the pool does within `wire::HEAD_TIMEOUT`: a request
/// waiting for a worker is not the client's delay, and is not cut off.
#[test]
fn a_queue_of_jobs_outlasts_the_head_deadline() {
    let server = start_with("epoll-offload", &["1"]);
    let mut clients: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut client = connect(server.addr());
            client.write_all(SLEEP).expect("write");
            client
        })
        .collect();
    for client in &mut clients {
        assert_bytes(&read_to_close(client).expect("read"), RESPONSE);
    }
}
