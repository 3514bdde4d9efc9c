//! One loop per core: N threads, each running the `epoll` server's loop on
//! a listening socket of its own, all bound to the same port with
//! `SO_REUSEPORT`. The kernel spreads new connections across the sockets.
//!
//! Run it with `cargo run --release -p epoll-reuseport -- [ADDR [N]]`: it listens on
//! ADDR (default `127.0.0.1:9527`) with N loops (default: one per core).

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;

use socket2::{Domain, Socket, Type};

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let loops = wire::workers(args.next())?;
    let addr = resolve(addr.as_deref().unwrap_or(wire::DEFAULT_ADDR))?;

    // Bind the first socket, to learn the port if we asked for port 0,
    // then the others to that same port.
    let first = bind_reuseport(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..loops {
        listeners.push(bind_reuseport(addr)?);
    }
    println!("listening on http://{addr}");

    // A loop runs until epoll fails, which it does not. If one did, the
    // whole server would stop, with its error, rather than go on with one
    // loop fewer.
    let (ended, end) = mpsc::channel();
    for (i, listener) in listeners.into_iter().enumerate() {
        let ended = ended.clone();
        thread::Builder::new()
            .name(format!("loop-{i}"))
            .spawn(move || ended.send(epoll::serve(listener)))?;
    }
    drop(ended);
    end.recv()
        .map_err(|_| io::Error::other("every loop has panicked"))?
}
// ANCHOR_END: main

// ANCHOR: bind
/// A listening socket that shares its port with the others. `SO_REUSEPORT`
/// must be set on every one of them before `bind`; the kernel then lets
/// them all bind the same address (for the same user), and hashes each new
/// connection to one of them.
fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // What `TcpListener::bind` does too: a restarted server can bind again
    // while old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    // The queue length every listing asks for (see `wire::listen`).
    socket.listen(wire::BACKLOG)?;
    Ok(socket.into())
}
// ANCHOR_END: bind

/// The first address `text` names, as `TcpListener::bind` would try it.
fn resolve(text: &str) -> io::Result<SocketAddr> {
    text.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{text:?} names no address"),
        )
    })
}
