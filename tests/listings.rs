//! The shared rows: every server listing answers with exactly the right
//! bytes, copes with a request that arrives in pieces, survives a short load
//! with every byte checked, and stops cleanly on SIGTERM.
//!
//! Each listing is one line in the `rows!` call at the bottom; each check is
//! a test of its own (`linear::exact_bytes`, ...), so they run in parallel,
//! every one against its own server on its own port.

use std::time::Duration;

use support::{GET_AB, GET_CLOSE, WAIT, assert_bytes, exchange, listing, start};

fn exact_bytes(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    for request in [GET_CLOSE, GET_AB] {
        let got = exchange(server.addr(), &[request], Duration::ZERO);
        assert_bytes(&got, support::RESPONSE);
    }
}

fn split_request(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    // Cut inside the method, inside a header, and between "\r" and "\n" of
    // the blank line: the server must wait for the whole head.
    let parts: [&[u8]; 4] = [
        b"GE",
        b"T / HTTP/1.1\r\nHost: te",
        b"st\r\nConnection: close\r\n\r",
        b"\n",
    ];
    let got = exchange(server.addr(), &parts, Duration::from_millis(50));
    assert_bytes(&got, support::RESPONSE);
}

fn short_load(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    let mut config = loadgen::Config::new(server.addr());
    config.requests = 2_000;
    config.concurrency = 8;
    config.timeout = WAIT;
    let report = loadgen::run(&config).expect("run the load generator");
    assert_eq!(report.failures, loadgen::Failures::default(), "{report}");
    assert_eq!(report.completed, 2_000, "{report}");
    assert_eq!(report.body_bytes, 2_000 * 11, "{report}");
}

fn short_load_keep_alive(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    let mut config = loadgen::Config::new(server.addr());
    config.requests = 2_000;
    config.concurrency = 8;
    config.keep_alive = true;
    config.timeout = WAIT;
    let report = loadgen::run(&config).expect("run the load generator");
    assert_eq!(report.failures, loadgen::Failures::default(), "{report}");
    assert_eq!(report.completed, 2_000, "{report}");
    // A listing without keep-alive answers "Connection: close" every time,
    // which a keep-alive client must accept; one with it reuses connections.
    if listing(name).keep_alive {
        assert!(report.connections < 2_000, "{report}");
    } else {
        assert_eq!(report.connections, 2_000, "{report}");
    }
}

fn clean_stop(name: &str) {
    if support::skipped(name) {
        return;
    }
    let server = start(name);
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
    let pid = server.pid();
    let stopped = server.stop(WAIT).expect("stop the server");
    assert!(!stopped.killed, "{pid} ignored SIGTERM for {WAIT:?}");
    // The whole process group is gone: no worker, no orphan.
    let left = loadgen::server::group_members(pid);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

macro_rules! rows {
    ($($row:ident),* $(,)?) => {$(
        mod $row {
            fn name() -> String {
                stringify!($row).replace('_', "-")
            }
            #[test]
            fn exact_bytes() {
                super::exact_bytes(&name())
            }
            #[test]
            fn split_request() {
                super::split_request(&name())
            }
            #[test]
            fn short_load() {
                super::short_load(&name())
            }
            #[test]
            fn short_load_keep_alive() {
                super::short_load_keep_alive(&name())
            }
            #[test]
            fn clean_stop() {
                super::clean_stop(&name())
            }
        }
    )*
        #[test]
        fn every_listing_has_a_row() {
            let rows = [$(stringify!($row).replace('_', "-")),*];
            for l in support::LISTINGS {
                assert!(rows.contains(&l.name.to_string()), "{} has no row", l.name);
            }
        }
    };
}

rows!(
    linear,
    prefork,
    thread_pool,
    threads_accept,
    thread_per_connection,
    select,
    poll,
    epoll,
    epoll_edge,
    epoll_reuseport,
    uring,
    tokio_tasks,
);
