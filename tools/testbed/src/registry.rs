//! The registry: every server listing of the book, in the order the book
//! introduces them, and what the tests and the benchmark need to know to
//! run it. The test tables (`tests/`) and the benchmark's list of servers
//! (`tools/bench`) are derived from [`LISTINGS`]; a crate under `listings/`
//! that is neither here nor in [`SHARED`] fails a test.

/// One server listing: a crate under `listings/` whose binary has the same
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    pub name: &'static str,
    /// How it serves its clients, which tells what a misbehaving client can
    /// do to it (the columns of `tests/misbehaving.rs`).
    pub model: Model,
    /// Whether it keeps a connection open for a client that asks.
    pub keep_alive: bool,
    /// Whether it takes a number of workers (processes, threads or loops)
    /// as its second argument. Tests give it [`Listing::TEST_WORKERS`]; the
    /// benchmark leaves it at its default, one per core, unless a scenario
    /// says otherwise.
    pub takes_workers: bool,
    /// The threads it runs, once started by a test and idle; `None` where
    /// it does not decide (a runtime does, or it starts one per client).
    pub threads: Option<usize>,
    /// Whether the kernel may refuse what it is built on (io_uring): it then
    /// prints one line saying why and exits, and its tests are skipped.
    pub kernel_may_refuse: bool,
    /// Whether the benchmark measures it against nginx with one worker.
    pub against_nginx: bool,
    /// Not a server to use but a measuring stick (`floor`): the least a
    /// loop can do per request, with no deadlines and no care for clients
    /// that misbehave. The correctness tests skip it (one test checks that
    /// it answers), and the benchmark runs it only where a scenario asks.
    pub measuring_stick: bool,
    /// The part of the book it belongs to, by what it waits with: the
    /// benchmark's charts draw a panel for each.
    pub family: Family,
}

/// What a server waits with: a blocking call per connection, readiness
/// over many, the kernel's completions, or a runtime's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Blocking,
    Readiness,
    Completion,
    Runtime,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Blocking,
        Family::Readiness,
        Family::Completion,
        Family::Runtime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Blocking => "blocking",
            Family::Readiness => "readiness",
            Family::Completion => "completion",
            Family::Runtime => "runtime",
        }
    }
}

/// How a listing serves its clients, as far as a client can tell from
/// outside: the four kinds of server the fault matrix knows what to expect
/// of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One connection at a time, served with blocking calls.
    Linear,
    /// A fixed number of blocking workers (processes or threads).
    Workers,
    /// A new blocking thread for every connection.
    ThreadPerConnection,
    /// Non-blocking connections that one thread, or one per core, watches
    /// for readiness (or completion) and drives, each closed when its
    /// deadline passes.
    EventLoop,
}

/// The workspace crates under `listings/` that are not servers: what the
/// servers share.
pub const SHARED: &[&str] = &["wire", "conn"];

/// Every server listing, in the book's order.
pub const LISTINGS: &[Listing] = &[
    Listing::new("linear", Model::Linear).against_nginx(),
    Listing::new("prefork", Model::Workers).takes_workers(),
    Listing::new("thread-pool", Model::Workers)
        .takes_workers()
        .keep_alive(),
    Listing::new("threads-accept", Model::Workers).takes_workers(),
    Listing::new("thread-per-connection", Model::ThreadPerConnection),
    Listing::new("select", Model::EventLoop)
        .keep_alive()
        .threads(1),
    Listing::new("poll", Model::EventLoop)
        .keep_alive()
        .threads(1),
    Listing::new("epoll", Model::EventLoop)
        .keep_alive()
        .threads(1)
        .against_nginx(),
    Listing::new("epoll-edge", Model::EventLoop)
        .keep_alive()
        .threads(1),
    // A loop per worker, and the main thread that waits for them.
    Listing::new("epoll-reuseport", Model::EventLoop)
        .keep_alive()
        .takes_workers()
        .threads(Listing::TEST_WORKERS + 1),
    // nginx's model: processes, each a loop, on one shared listener; the
    // parent (one thread) forks and supervises them.
    Listing::new("epoll-prefork", Model::EventLoop)
        .keep_alive()
        .takes_workers()
        .threads(1),
    // memcached's: a thread that accepts, a loop per worker, and the main
    // thread that waits for them.
    Listing::new("epoll-acceptor", Model::EventLoop)
        .keep_alive()
        .takes_workers()
        .threads(Listing::TEST_WORKERS + 2),
    // The loop, and the pool that does the work it hands off.
    Listing::new("epoll-offload", Model::EventLoop)
        .keep_alive()
        .takes_workers()
        .threads(Listing::TEST_WORKERS + 1),
    Listing::new("uring", Model::EventLoop)
        .keep_alive()
        .threads(1)
        .kernel_may_refuse()
        .family(Family::Completion),
    // A runtime by hand: tasks, wakers and a reactor, on one thread.
    Listing::new("executor", Model::EventLoop)
        .keep_alive()
        .threads(1)
        .family(Family::Runtime),
    Listing::new("tokio-tasks", Model::EventLoop)
        .keep_alive()
        .family(Family::Runtime),
    Listing::new("floor", Model::EventLoop)
        .keep_alive()
        .threads(1)
        .measuring_stick(),
];

/// The listing called `name`; panics if there is none, naming it.
pub fn listing(name: &str) -> &'static Listing {
    LISTINGS
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listing named {name} in testbed::LISTINGS"))
}

impl Model {
    /// Every model, in the order of the fault matrix's columns.
    pub const ALL: [Model; 4] = [
        Model::Linear,
        Model::Workers,
        Model::ThreadPerConnection,
        Model::EventLoop,
    ];
}

impl Listing {
    /// How many workers the tests give a listing that takes a number.
    pub const TEST_WORKERS: usize = 2;

    /// A listing that closes every connection after one response, takes
    /// no number of workers, and leaves its threads to others to count.
    const fn new(name: &'static str, model: Model) -> Listing {
        Listing {
            name,
            model,
            keep_alive: false,
            takes_workers: false,
            threads: None,
            kernel_may_refuse: false,
            against_nginx: false,
            measuring_stick: false,
            family: match model {
                Model::EventLoop => Family::Readiness,
                _ => Family::Blocking,
            },
        }
    }

    const fn measuring_stick(self) -> Listing {
        Listing {
            measuring_stick: true,
            ..self
        }
    }

    const fn family(self, family: Family) -> Listing {
        Listing { family, ..self }
    }

    const fn keep_alive(self) -> Listing {
        Listing {
            keep_alive: true,
            ..self
        }
    }

    const fn takes_workers(self) -> Listing {
        Listing {
            takes_workers: true,
            ..self
        }
    }

    const fn threads(self, threads: usize) -> Listing {
        Listing {
            threads: Some(threads),
            ..self
        }
    }

    const fn kernel_may_refuse(self) -> Listing {
        Listing {
            kernel_may_refuse: true,
            ..self
        }
    }

    const fn against_nginx(self) -> Listing {
        Listing {
            against_nginx: true,
            ..self
        }
    }

    /// The arguments after the address that a test starts it with.
    pub fn test_args(&self) -> Vec<String> {
        if self.takes_workers {
            vec![Listing::TEST_WORKERS.to_string()]
        } else {
            Vec::new()
        }
    }

    /// How many clients it serves at once when a test starts it; `None`:
    /// as many as connect.
    pub fn serves_at_once(&self) -> Option<usize> {
        match self.model {
            Model::Linear => Some(1),
            Model::Workers => Some(Listing::TEST_WORKERS),
            Model::ThreadPerConnection | Model::EventLoop => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn names_are_unique() {
        for (i, l) in LISTINGS.iter().enumerate() {
            assert!(
                !LISTINGS[..i].iter().any(|other| other.name == l.name),
                "{} is listed twice",
                l.name
            );
            assert_eq!(listing(l.name), l);
            assert!(
                !SHARED.contains(&l.name),
                "{} is shared and a listing",
                l.name
            );
        }
    }

    /// Every crate under `listings/` is a listing or a shared crate, and
    /// every listing is a crate there.
    #[test]
    fn the_registry_is_the_listings_folder() {
        let dir = crate::workspace().join("listings");
        let mut crates: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.join("Cargo.toml").is_file())
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        crates.sort();
        for name in &crates {
            assert!(
                SHARED.contains(&name.as_str()) || LISTINGS.iter().any(|l| l.name == name),
                "listings/{name} has no entry in testbed::LISTINGS (tools/testbed/src/registry.rs)"
            );
        }
        for name in LISTINGS
            .iter()
            .map(|l| l.name)
            .chain(SHARED.iter().copied())
        {
            assert!(
                crates.iter().any(|c| c == name),
                "{name} is registered but listings/{name} is not a crate"
            );
        }
    }

    #[test]
    fn workers_and_threads() {
        assert_eq!(listing("prefork").test_args(), ["2"]);
        assert!(listing("linear").test_args().is_empty());
        assert_eq!(listing("epoll-reuseport").threads, Some(3));
        assert_eq!(listing("linear").serves_at_once(), Some(1));
        assert_eq!(listing("epoll").serves_at_once(), None);
    }
}
