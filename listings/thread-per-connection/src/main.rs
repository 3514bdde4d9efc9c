//! A thread per connection: the main thread accepts, and starts a new
//! thread for every connection it gets. Nobody waits for a free worker,
//! because there is no fixed number of workers; what it costs instead is a
//! thread's creation for every connection, and a stack for every open one.
//!
//! Run it with `cargo run --release -p thread-per-connection -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;
use std::thread;
use std::time::Duration;

// ANCHOR: constants
/// The stack each connection's thread gets. `wire::serve` needs its 8 KiB
/// buffer and a few frames; Rust's default for a new thread is 2 MiB.
const STACK: usize = 64 * 1024;

/// How long to wait after failing to start a thread.
const PAUSE: Duration = Duration::from_millis(10);
// ANCHOR_END: constants

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);

    loop {
        let stream = wire::accept(&listener);
        let started = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || wire::serve(stream));
        // Dropping the handle detaches the thread: it ends when its
        // client does, and nobody waits for it.
        if started.is_err() {
            // EAGAIN: no thread for this client, because this process or
            // user has too many, or there is no memory for one more
            // stack. `spawn` dropped the closure, so the connection is
            // closed. Pause, as `wire::accept` does on EMFILE, so that
            // some of the running threads can finish.
            thread::sleep(PAUSE);
        }
    }
}
// ANCHOR_END: main
