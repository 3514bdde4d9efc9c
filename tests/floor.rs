//! The floor (`listings/floor`) is a measuring stick, not a server: the
//! correctness tests skip it (`support::unavailable`). This checks the one
//! thing the benchmark needs of it: that it answers keep-alive requests,
//! one at a time and pipelined, with the book's exact keep-alive bytes, on
//! one connection, and lets the connection go when the client does.

use std::io::{Read, Write};

use support::{RESPONSE_KEEP_ALIVE, assert_bytes, connect, start, wait_until};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn the_floor_answers_keep_alive_requests_exactly() {
    let server = start("floor");
    let fds = server.open_fds().expect("count the server's descriptors");
    let mut stream = connect(server.addr());
    for burst in [1, 3] {
        stream.write_all(&GET.repeat(burst)).expect("write");
        let mut got = vec![0; RESPONSE_KEEP_ALIVE.len() * burst];
        stream.read_exact(&mut got).expect("read the responses");
        assert_bytes(&got, &RESPONSE_KEEP_ALIVE.repeat(burst));
    }
    drop(stream);
    wait_until("the floor to close the connection", || {
        server.open_fds().is_ok_and(|n| n == fds)
    });
}
