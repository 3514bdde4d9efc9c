//! The epoll server: one thread, one event loop, every connection.
//!
//! Run it with `cargo run --release -p epoll -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);
    // Returns only if epoll itself fails.
    epoll::serve(listener)
}
// ANCHOR_END: main
