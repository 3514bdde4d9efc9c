//! The linear server: one connection at a time, start to finish.
//! Deliberately naive: while it waits on one client, every other waits too.
//!
//! Run it with `cargo run --release -p linear -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);

    loop {
        let stream = wire::accept(&listener);
        // Whatever this client does, it costs only its own connection.
        let _ = wire::serve(stream);
    }
}
// ANCHOR_END: main
