//! The servers the benchmark runs: every server listing of the book, from
//! the registry (`testbed::LISTINGS`) in the order the book introduces
//! them, and nginx and the post's Python servers as references.

use std::path::PathBuf;
use std::sync::LazyLock;

/// How a server is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// A listing: a workspace crate whose release binary has its name, and
    /// which prints `listening on http://ADDR` once it is ready.
    Listing,
    /// nginx with this many worker processes; `None` is `auto`, one per core.
    Nginx { workers: Option<usize> },
    /// A Python reference server: a script of `tools/bench/python/`,
    /// run by `python3` (its `#!` line), with the listings' contract.
    Python { script: &'static str },
}

/// One server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub name: &'static str,
    /// Whether it keeps connections open for clients that ask. A server that
    /// does not answers them with `Connection: close`, which the load
    /// generator accepts; keep-alive tables mark it.
    pub keep_alive: bool,
    /// Measured against nginx's single worker for the book's goals
    /// (`bench nginx`).
    pub against_nginx: bool,
    pub launch: Launch,
}

impl Spec {
    /// A listing, as the registry describes it.
    fn listing(listing: &testbed::Listing) -> Spec {
        Spec {
            name: listing.name,
            keep_alive: listing.keep_alive,
            against_nginx: listing.against_nginx,
            launch: Launch::Listing,
        }
    }

    const fn python(name: &'static str, script: &'static str) -> Spec {
        Spec {
            name,
            keep_alive: false,
            against_nginx: false,
            launch: Launch::Python { script },
        }
    }

    pub fn is_listing(&self) -> bool {
        self.launch == Launch::Listing
    }

    /// How tables name it.
    pub fn label(&self) -> String {
        label(self.name)
    }
}

/// Every server listing, in the book's order.
pub static LISTINGS: LazyLock<Vec<Spec>> =
    LazyLock::new(|| testbed::LISTINGS.iter().map(Spec::listing).collect());

/// nginx with one worker process: the reference for single-threaded models.
pub const NGINX_ONE: Spec = Spec {
    name: "nginx-1",
    keep_alive: true,
    against_nginx: false,
    launch: Launch::Nginx { workers: Some(1) },
};

/// nginx with a worker per core: the reference for the multi-core models.
pub const NGINX_AUTO: Spec = Spec {
    name: "nginx-auto",
    keep_alive: true,
    against_nginx: false,
    launch: Launch::Nginx { workers: None },
};

/// The post's models in the post's language, for the `gil` scenario only:
/// references, not listings of the book.
pub const PYTHON: &[Spec] = &[
    Spec::python("py-linear", "linear.py"),
    Spec::python("py-prefork", "prefork.py"),
    Spec::python("py-thread-pool", "thread_pool.py"),
    Spec::python("py-threads-accept", "threads_accept.py"),
];

/// Every server the benchmark knows: the listings, then the references.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    LISTINGS
        .iter()
        .chain([&NGINX_ONE, &NGINX_AUTO])
        .chain(PYTHON)
}

pub fn find(name: &str) -> Option<&'static Spec> {
    all().find(|s| s.name == name)
}

/// How tables name a server.
pub fn label(name: &str) -> String {
    match name {
        "nginx-1" => "nginx, 1 worker".into(),
        "nginx-auto" => "nginx, a worker per core".into(),
        other => match other.strip_prefix("py-") {
            Some(model) => format!("{model} (Python)"),
            None => other.into(),
        },
    }
}

/// The family a server's chart panel is: a listing's from the registry;
/// nginx's event loop beside the readiness listings; the Python servers
/// block.
pub fn family(name: &str) -> testbed::Family {
    // A row such as `uring batch` is of its listing's family.
    let listing = name.split(' ').next().unwrap_or(name);
    match testbed::LISTINGS.iter().find(|l| l.name == listing) {
        Some(listing) => listing.family,
        None if name.starts_with("nginx") => testbed::Family::Readiness,
        None => testbed::Family::Blocking,
    }
}

/// Where the Python reference servers are.
pub fn python_dir() -> PathBuf {
    testbed::workspace().join("tools/bench/python")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let names: Vec<&str> = all().map(|s| s.name).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[..i].contains(name), "{name} twice");
            assert_eq!(find(name).unwrap().name, *name);
        }
        assert_eq!(LISTINGS.len(), testbed::LISTINGS.len());
        assert!(find("epoll").unwrap().against_nginx);
        assert_eq!(label("nginx-1"), "nginx, 1 worker");
        assert_eq!(label("py-thread-pool"), "thread-pool (Python)");
        for py in PYTHON {
            let Launch::Python { script } = py.launch else {
                panic!("{} is not Python", py.name)
            };
            assert!(python_dir().join(script).is_file(), "{script}");
        }
    }
}
