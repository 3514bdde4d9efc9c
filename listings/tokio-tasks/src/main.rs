//! What a runtime gives you: the server written as straight-line code, a
//! task per connection, on tokio's multi-threaded runtime. Each `.await`
//! on a socket that is not ready parks the task; tokio's reactor (epoll,
//! through the mio crate) wakes it when the socket is, and its scheduler
//! runs it on whichever worker thread is free.
//!
//! Run it with `cargo run --release -p tokio-tasks -- [ADDR [spawn-blocking]]`:
//! it listens on ADDR (default `127.0.0.1:9527`). The work a request asks
//! for (`/cpu/N`, `/sleep/N`) is done in its task, on a worker thread,
//! unless `spawn-blocking` is given: then on tokio's blocking pool.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};
use wire::{HEAD_LIMIT, HEAD_TIMEOUT, LINGER, LINGER_BYTES, Requests};

/// How long to wait after an accept that failed for want of descriptors.
const PAUSE: Duration = Duration::from_millis(10);

// ANCHOR: main
#[tokio::main]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let blocking_pool = match args.next().as_deref() {
        None => false,
        Some("spawn-blocking") => true,
        Some(other) => {
            let what =
                format!("the second argument may be spawn-blocking, not {other:?}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        }
    };
    // Bound as every listing binds, then handed to tokio, which wants it
    // non-blocking.
    let listener = wire::listen(addr.as_deref())?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    println!("listening on http://{}", listener.local_addr()?);

    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // A task per connection: a few hundred bytes and a place
                // in a queue, not a thread. Its errors concern its client
                // only.
                tokio::spawn(async move {
                    let _ = serve(stream, blocking_pool).await;
                });
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            // EMFILE and friends: pause, or this loop would spin.
            Err(_) => sleep(PAUSE).await,
        }
    }
}
// ANCHOR_END: main

// ANCHOR: serve
/// Serves one connection: answers requests in order for as long as the
/// client keeps it open, each request (head and body) within
/// [`HEAD_TIMEOUT`] of the accept or of the last response.
async fn serve(mut stream: TcpStream, blocking_pool: bool) -> io::Result<()> {
    let mut buf = vec![0u8; HEAD_LIMIT];
    let mut filled = 0;
    let mut requests = if blocking_pool {
        Requests::handing_off()
    } else {
        Requests::default()
    };
    let mut out = Vec::new();
    loop {
        // ANCHOR: timeout
        let reading = read_requests(
            &mut stream,
            &mut buf,
            &mut filled,
            &mut requests,
            &mut out,
        );
        let Ok(read) = timeout(HEAD_TIMEOUT, reading).await else {
            return Ok(()); // too slow: dropping the stream closes it
        };
        // ANCHOR_END: timeout
        let Some(close) = read? else {
            return Ok(()); // the client left
        };
        // A client that does not read its responses gets as long as one
        // that does not send its requests.
        timeout(HEAD_TIMEOUT, stream.write_all(&out)).await??;
        out.clear();
        if close {
            // Bytes left unanswered (a refused head, requests after a
            // `close`): the client may still be sending.
            if filled > 0 {
                close_gently(stream).await;
            }
            return Ok(());
        }
    }
}

/// Reads until there is something to send: in `out`, a response to every
/// complete request in `buf` (several, if they came together), or a
/// `100 Continue`. Returns whether the last response ends the connection;
/// `None` if the client closes first. What `requests` has taken, heads and
/// bodies, leaves the buffer; the rest moves to its front.
async fn read_requests(
    stream: &mut TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    requests: &mut Requests,
    out: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    loop {
        let answered = requests.answer(&buf[..*filled], out);
        buf.copy_within(answered.used..*filled, 0);
        *filled -= answered.used;
        // ANCHOR: spawn_blocking
        if let Some(work) = requests.handed_out() {
            // On a thread of the blocking pool; this task is parked
            // meanwhile, and its worker runs other tasks.
            tokio::task::spawn_blocking(move || work.run()).await?;
            // Its response is sent before the requests after it are
            // answered, at the next call.
            return Ok(Some(requests.done(out)));
        }
        // ANCHOR_END: spawn_blocking
        if !out.is_empty() {
            return Ok(Some(answered.close));
        }
        match stream.read(&mut buf[*filled..]).await? {
            0 => return Ok(None),
            n => *filled += n,
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: close_gently
/// Closes a connection whose client may still be sending, as `wire` does
/// for the blocking servers: our FIN first, then read and discard until the
/// client closes too, for [`LINGER`] and [`LINGER_BYTES`] at most.
async fn close_gently(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER, drain).await;
}
// ANCHOR_END: close_gently
