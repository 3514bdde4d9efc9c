//! What the tests and the benchmark share, and the book never shows: which
//! listings there are, how to build and start one (or nginx) and learn
//! where it listens, and what `/proc` says about it while it runs.
//!
//! - [`LISTINGS`]: the registry. A new model is one entry there, its crate
//!   under `listings/`, and its chapter; the test tables and the benchmark
//!   take every listing from it.
//! - [`Server`]: a listing run as a child process on a free port, in a
//!   process group of its own, never left behind.
//! - [`nginx`]: nginx run the same way, as the benchmark's reference.
//! - [`procfs`]: CPU time, threads, descriptors and memory of a process
//!   group.
//! - [`netstat`]: the kernel's TCP counters (listen overflows, SYN
//!   retries, TIME_WAIT) around a run.
//! - [`release_build`]: the listings' release binaries, built once.
//! - [`wait_for`]: polling, bounded, for what a server does in its own time.

mod build;
mod group;
pub mod netstat;
pub mod nginx;
pub mod procfs;
mod registry;
pub mod server;

pub use build::{release_build, workspace};
pub use group::{Group, Stopped};
pub use procfs::Holdings;
pub use registry::{Family, LISTINGS, Listing, Model, SHARED, listing};
pub use server::Server;

/// Calls `ready` until it gives something, for at most `patience`: at
/// once, then after 1 ms, 2, 4 and so on up to every 10 ms. The error
/// names `what` was waited for.
pub fn wait_for<T>(
    what: &str,
    patience: std::time::Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = std::time::Instant::now() + patience;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        if let Some(t) = ready() {
            return Ok(t);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("waited {patience:?} for {what}"));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}
