//! nginx's model: N pre-forked processes, each running the `epoll` server's
//! loop, all on the one listening socket the parent bound before forking,
//! which each worker's epoll watches with `EPOLLEXCLUSIVE`. The parent
//! supervises them as `prefork`'s does (it is the same code).
//!
//! Run it with `cargo run --release -p epoll-prefork -- [ADDR [N]]`: it
//! listens on ADDR (default `127.0.0.1:9527`) with N processes (default: one
//! per core). With `EPOLLEXCLUSIVE=0` in its environment, the workers watch
//! the socket without that flag, so that every one of them is woken for
//! every connection: the thundering herd, kept for measuring it.

use std::io;
use std::net::TcpListener;

use conn::Acceptor;
use nix::sys::epoll::EpollFlags;

// ANCHOR: main
fn main() -> io::Result<()> {
    prefork::run(serve)
}

/// What each worker does: the epoll server's loop, on its copy of the
/// shared socket.
fn serve(listener: &TcpListener) -> io::Result<()> {
    // The loop owns its socket: give it a descriptor of its own for the
    // one socket every worker shares.
    let acceptor = Acceptor::new(listener.try_clone()?)?;
    epoll::serve_from(acceptor, listening())
}

/// What each worker's epoll watches the socket for. With
/// `EPOLLEXCLUSIVE`, a new connection wakes one of the workers waiting in
/// `epoll_wait` (or a few), not all of them.
fn listening() -> EpollFlags {
    let herd = std::env::var_os("EPOLLEXCLUSIVE").is_some_and(|v| v == "0");
    if herd {
        EpollFlags::EPOLLIN
    } else {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE
    }
}
// ANCHOR_END: main
