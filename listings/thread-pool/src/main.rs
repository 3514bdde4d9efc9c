//! Threads fed from a queue, the post's threaded model: the main thread
//! accepts connections and puts them in a queue; N worker threads take them
//! out and serve them, for as long as each client keeps its connection.
//!
//! Run it with `cargo run --release -p thread-pool -- [ADDR [N]]`: it listens on
//! ADDR (default `127.0.0.1:9527`) with N threads (default: one per core).

use std::io;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let size = wire::workers(args.next())?;
    let listener = wire::listen(addr.as_deref())?;
    // As many places in the queue as there are workers: see `Pool::new`.
    let pool = Pool::new(size, size)?;
    println!("listening on http://{}", listener.local_addr()?);

    loop {
        let stream = wire::accept(&listener);
        if pool.submit(stream).is_err() {
            // Only if every worker has gone, which none does: see `work`.
            return Err(io::Error::other("no worker left to serve"));
        }
    }
    // Leaving `main` drops `pool`, which closes the queue and joins the
    // workers: see `impl Drop for Pool`.
}
// ANCHOR_END: main

// ANCHOR: pool
/// N worker threads and the queue that feeds them.
struct Pool {
    /// The sending end of the queue; `None` once `drop` has closed it.
    queue: Option<SyncSender<TcpStream>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` workers behind a queue with room for `capacity`
    /// connections. When it is full, `submit` waits for room, the main
    /// thread stops accepting, and new connections wait in the kernel's
    /// backlog instead, at no cost to this process.
    fn new(size: usize, capacity: usize) -> io::Result<Pool> {
        let (queue, jobs) = mpsc::sync_channel(capacity);
        // A `Receiver` has one owner; the workers share it behind a lock.
        let jobs = Arc::new(Mutex::new(jobs));
        let mut workers = Vec::with_capacity(size);
        for i in 0..size {
            let jobs = Arc::clone(&jobs);
            let worker = thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || work(&jobs))?;
            workers.push(worker);
        }
        Ok(Pool {
            queue: Some(queue),
            workers,
        })
    }

    /// Queues one connection, waiting while the queue is full. Fails only
    /// when no worker is left to take it; the connection is then dropped.
    fn submit(&self, stream: TcpStream) -> Result<(), TcpStream> {
        match &self.queue {
            Some(queue) => queue.send(stream).map_err(|e| e.0),
            None => Err(stream),
        }
    }
}
// ANCHOR_END: pool

// ANCHOR: work
/// What each worker thread does until the queue is closed and empty.
fn work(jobs: &Mutex<Receiver<TcpStream>>) {
    loop {
        // The lock is held while this worker waits for a connection (the
        // others wait for the lock), and released at the end of this
        // statement, before serving: never while a client is being served.
        // No thread can panic while holding it, so a poisoned lock is
        // harmless; take it anyway rather than panic.
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            // Keep-alive: the connection is served for as long as the
            // client keeps it, one request after another.
            Ok(stream) => {
                let _ = wire::serve_keep_alive(stream);
            }
            // Every sender is gone and the queue is empty: time to stop.
            Err(mpsc::RecvError) => return,
        }
    }
}
// ANCHOR_END: work

// ANCHOR: drop
impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping the only sender closes the queue. Each worker finishes
        // the connection it has, takes what is left in the queue, then
        // finds it closed and returns.
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
// ANCHOR_END: drop
