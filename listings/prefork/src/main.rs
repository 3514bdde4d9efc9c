//! Pre-forked processes: the parent binds one listening socket, forks N
//! workers that each accept on it and serve one connection at a time, and
//! replaces any worker that dies. The parent's part is the `prefork`
//! library (`lib.rs`), which `epoll-prefork` shares.
//!
//! Run it with `cargo run --release -p prefork -- [ADDR [N]]`: it listens on
//! ADDR (default `127.0.0.1:9527`) with N processes (default: one per core).

use std::io;

// ANCHOR: main
fn main() -> io::Result<()> {
    // What each worker does: the linear server's loop, on the shared socket.
    prefork::run(|listener| {
        loop {
            let stream = wire::accept(listener);
            let _ = wire::serve(stream);
        }
    })
}
// ANCHOR_END: main
