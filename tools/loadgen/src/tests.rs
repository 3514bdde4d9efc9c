//! Runs against throwaway servers on loopback, each a few lines of blocking
//! std code behaving well or badly in one particular way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::*;

/// Serves every connection on a thread of its own with `handle`, until the
/// test process ends.
fn serve(handle: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || handle(stream));
        }
    });
    addr
}

/// Reads one request head; false if the client left first.
fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

fn config(addr: SocketAddr, requests: u64, concurrency: usize) -> Config {
    Config {
        requests,
        concurrency,
        timeout: Duration::from_secs(2),
        ..Config::new(addr)
    }
}

#[track_caller]
fn assert_failures(report: &Report, expected: Failures) {
    assert_eq!(report.failures, expected, "{report}");
    assert_eq!(
        report.completed + report.failures.total(),
        report.requests,
        "{report}"
    );
}

#[test]
fn a_correct_server() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(wire::RESPONSE);
        }
    });
    let report = run(&config(addr, 200, 4)).unwrap();
    assert_failures(&report, Failures::default());
    assert_eq!(report.completed, 200);
    assert_eq!(report.connections, 200);
    assert_eq!(report.bytes, 200 * wire::RESPONSE.len() as u64);
    assert_eq!(report.body_bytes, 200 * 11);
    let l = report.latency;
    assert!(Duration::ZERO < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max);
    assert!(report.requests_per_sec() > 0.0);

    // The same server in keep-alive mode: it always says close, which is fine.
    let report = run(&Config {
        keep_alive: true,
        ..config(addr, 50, 2)
    })
    .unwrap();
    assert_failures(&report, Failures::default());
    assert_eq!(report.connections, 50);
}

#[test]
fn a_server_that_never_answers() {
    // Takes the request, then waits for the client to leave.
    let addr = serve(|mut stream| {
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let report = run(&Config {
        timeout,
        ..config(addr, 4, 4)
    })
    .unwrap();
    let took = start.elapsed();
    assert_failures(
        &report,
        Failures {
            timeout: 4,
            ..Failures::default()
        },
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(1),
        "{took:?}"
    );
}

#[test]
fn a_server_that_resets() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            // Linger zero: close with a reset instead of a FIN.
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    });
    let report = run(&config(addr, 20, 2)).unwrap();
    assert_failures(
        &report,
        Failures {
            read: 20,
            ..Failures::default()
        },
    );
}

#[test]
fn a_server_that_closes_mid_response() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(&wire::RESPONSE[..60]);
        }
    });
    let report = run(&Config {
        expect: Expect::Any,
        ..config(addr, 10, 2)
    })
    .unwrap();
    assert_failures(
        &report,
        Failures {
            length: 10,
            ..Failures::default()
        },
    );
}

#[test]
fn a_server_with_the_wrong_body() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            let other =
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello World";
            let _ = stream.write_all(other);
        }
    });
    let report = run(&config(addr, 20, 2)).unwrap();
    assert_failures(
        &report,
        Failures {
            mismatch: 20,
            ..Failures::default()
        },
    );
    // Well-formed, so fine for --any.
    let report = run(&Config {
        expect: Expect::Any,
        ..config(addr, 20, 2)
    })
    .unwrap();
    assert_failures(&report, Failures::default());
}

#[test]
fn a_server_that_says_404() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let report = run(&config(addr, 10, 2)).unwrap();
    assert_failures(
        &report,
        Failures {
            status: 10,
            ..Failures::default()
        },
    );
}

#[test]
fn a_keep_alive_server() {
    let addr = serve(|mut stream| {
        while read_head(&mut stream) {
            if stream.write_all(wire::RESPONSE_KEEP_ALIVE).is_err() {
                return;
            }
        }
    });
    let report = run(&Config {
        keep_alive: true,
        ..config(addr, 500, 4)
    })
    .unwrap();
    assert_failures(&report, Failures::default());
    assert_eq!(report.connections, 4);
    assert_eq!(report.body_bytes, 500 * 11);
    // In close mode its keep-alive answer is wrong.
    let report = run(&config(addr, 4, 2)).unwrap();
    assert_failures(
        &report,
        Failures {
            mismatch: 4,
            ..Failures::default()
        },
    );
}

#[test]
fn nobody_listening() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = run(&config(addr, 10, 2)).unwrap();
    assert_failures(
        &report,
        Failures {
            connect: 10,
            ..Failures::default()
        },
    );
    assert_eq!(report.connections, 0);
}

#[test]
fn exactly_the_requests_asked_for() {
    let addr = serve(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(wire::RESPONSE);
        }
    });
    // More connections and threads than requests, and no requests at all.
    for (requests, concurrency, threads) in [(3, 10, 4), (7, 3, 2), (0, 8, 0)] {
        let report = run(&Config {
            threads,
            ..config(addr, requests, concurrency)
        })
        .unwrap();
        assert_failures(&report, Failures::default());
        assert_eq!(report.completed, requests);
        assert_eq!(report.connections, requests);
    }
}

#[test]
fn urls() {
    let config = Config::from_url("http://127.0.0.1:8080/a/b?c=d").unwrap();
    assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        (config.host.as_str(), config.path.as_str()),
        ("127.0.0.1:8080", "/a/b?c=d")
    );
    let config = Config::from_url("http://[::1]:81").unwrap();
    assert_eq!(config.addr, "[::1]:81".parse().unwrap());
    assert_eq!(config.path, "/");
    assert_eq!(
        Config::from_url("http://127.0.0.1").unwrap().addr.port(),
        80
    );
    for bad in [
        "https://127.0.0.1/",
        "127.0.0.1:80",
        "http:///",
        "http://127.0.0.1:x/",
    ] {
        assert!(Config::from_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn requests_on_the_wire() {
    let mut config = Config::new("127.0.0.1:80".parse().unwrap());
    let close = "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nConnection: close\r\n\r\n";
    assert_eq!(config.request().unwrap(), close.as_bytes());
    config.keep_alive = true;
    config.path = "/x".to_string();
    let keep = "GET /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n";
    assert_eq!(config.request().unwrap(), keep.as_bytes());
    config.path = "/a b".to_string();
    assert!(run(&config).is_err());
}

#[test]
fn reports() {
    let report = Report {
        requests: 10,
        completed: 8,
        failures: Failures {
            read: 1,
            timeout: 1,
            ..Failures::default()
        },
        connections: 10,
        elapsed: Duration::from_millis(500),
        bytes: 552,
        body_bytes: 88,
        latency: Latency::of((1..=8).map(Duration::from_millis).collect()),
        cpu: Duration::from_millis(1),
        concurrency: 2,
        threads: 1,
        keep_alive: false,
    };
    assert_eq!(report.requests_per_sec(), 16.0);
    assert_eq!(report.cpu_per_request(), Duration::from_micros(100));
    assert_eq!(report.latency.p50, Duration::from_millis(4));
    assert_eq!(report.latency.p90, Duration::from_millis(8));
    assert_eq!(report.latency.max, Duration::from_millis(8));
    let text = report.to_string();
    assert!(
        text.contains("Failed:               2 (read 1, timeout 1)"),
        "{text}"
    );
    assert!(text.contains("p50 4.000"), "{text}");
    let json = report.to_json();
    assert!(!json.contains('\n'));
    assert!(
        json.starts_with("{\"requests\":10,\"completed\":8,\"failures\":{\"connect\":0,"),
        "{json}"
    );
    assert!(json.contains("\"elapsed\":0.5,"), "{json}");
    assert!(json.contains("\"keep_alive\":false"), "{json}");
}
