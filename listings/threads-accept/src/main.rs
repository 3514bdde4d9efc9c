//! Threads that each accept: N threads share one listening socket and each
//! takes its own connections from it, as pre-forked processes do. No queue,
//! no lock of ours: the kernel hands each connection to one waiting thread.
//!
//! Run it with `cargo run --release -p threads-accept -- [ADDR [N]]`: it listens on
//! ADDR (default `127.0.0.1:9527`) with N threads (default: one per core).

use std::io;
use std::sync::Arc;
use std::thread;

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let size = wire::workers(args.next())?;
    let listener = wire::listen(addr.as_deref())?;
    // One socket, one descriptor, shared by every thread.
    let listener = Arc::new(listener);

    let mut threads = Vec::with_capacity(size);
    for i in 0..size {
        let listener = Arc::clone(&listener);
        let thread = thread::Builder::new().name(format!("acceptor-{i}")).spawn(
            move || {
                loop {
                    let stream = wire::accept(&listener);
                    let _ = wire::serve(stream);
                }
            },
        )?;
        threads.push(thread);
    }
    println!("listening on http://{}", listener.local_addr()?);

    // The main thread has nothing left to do. The threads never return,
    // so this waits until the process is stopped.
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}
// ANCHOR_END: main
