//! An executor by hand: the server written as `async` code, a task per
//! connection, and an executor that runs the tasks over an epoll loop. A
//! socket's read or write is a future; when the socket is not ready, the
//! future leaves its task's waker with the reactor, which wakes the task
//! when epoll says the socket is ready, or when its deadline has passed.
//! Everything runs on one thread.
//!
//! Run it with `cargo run --release -p executor -- [ADDR]`: it listens on
//! ADDR (default `127.0.0.1:9527`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use conn::{ACCEPT_BATCH, Acceptor};
use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use wire::{HEAD_LIMIT, HEAD_TIMEOUT, LINGER, LINGER_BYTES, Requests};

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);
    // Returns only if epoll itself fails.
    Executor::new(listener)?.run()
}
// ANCHOR_END: main

// ANCHOR: serve
/// One connection's task: `wire::serve_keep_alive`, with `.await` where
/// the blocking server would block. Each request, head and body, must be
/// in within [`HEAD_TIMEOUT`] of the accept or of the last response.
async fn serve(mut socket: Socket) -> io::Result<()> {
    let mut buf = vec![0u8; HEAD_LIMIT];
    let mut filled = 0;
    let mut requests = Requests::default();
    let mut out = Vec::new();
    loop {
        socket.deadline = Instant::now() + HEAD_TIMEOUT;
        let close = loop {
            let answered = requests.answer(&buf[..filled], &mut out);
            buf.copy_within(answered.used..filled, 0);
            filled -= answered.used;
            if !out.is_empty() {
                break answered.close;
            }
            match socket.read(&mut buf[filled..]).await? {
                0 => return Ok(()), // the client left
                n => filled += n,
            }
        };
        // A client that does not read gets as long as one that does not send.
        socket.deadline = Instant::now() + HEAD_TIMEOUT;
        let mut written = 0;
        while written < out.len() {
            match socket.write(&out[written..]).await? {
                0 => return Err(ErrorKind::WriteZero.into()),
                n => written += n,
            }
        }
        out.clear();
        if close {
            if filled > 0 {
                linger(&mut socket).await; // the client may still be sending
            }
            return Ok(()); // dropping the socket closes it
        }
    }
}

/// Our FIN, then what the client still sends is read and thrown away until
/// it closes too, for [`LINGER`] and [`LINGER_BYTES`] at most.
async fn linger(socket: &mut Socket) {
    if socket.stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    socket.deadline = Instant::now() + LINGER;
    let (mut sink, mut left) = ([0u8; 4096], LINGER_BYTES);
    while let Ok(n @ 1..) = socket.read(&mut sink).await {
        left = left.saturating_sub(n);
        if left == 0 {
            return;
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: socket
/// A connection's socket: non-blocking, registered with the reactor, with
/// the time by which what the task waits for must happen.
struct Socket {
    stream: TcpStream,
    reactor: Rc<Reactor>,
    deadline: Instant,
    /// Bytes moved since the task last let others run: see `Io::poll`.
    turn: Cell<usize>,
}

/// How many bytes a task may read and write before it lets the others run,
/// as `conn`'s `TURN_BYTES` does for the event loops.
const TURN_BYTES: usize = 64 * 1024;

impl Socket {
    fn read<'a>(&'a self, buf: &'a mut [u8]) -> Io<'a> {
        Io(self, Op::Read(buf))
    }

    fn write<'a>(&'a self, buf: &'a [u8]) -> Io<'a> {
        Io(self, Op::Write(buf))
    }
}

impl Drop for Socket {
    /// The reactor forgets the task's waker. (Closing the socket, just
    /// after, takes it out of epoll's interest list.)
    fn drop(&mut self) {
        let fd = self.stream.as_raw_fd();
        self.reactor.waiting.borrow_mut().remove(&fd);
    }
}

/// One read or one write: a future that is ready when the socket allows
/// it, or fails with `TimedOut` once the socket's deadline has passed.
struct Io<'a>(&'a Socket, Op<'a>);

enum Op<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Future for Io<'_> {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Io(socket, op) = &mut *self;
        // A client that is always ready would keep the thread to itself:
        // after its turn, the task goes to the back of the run queue.
        if socket.turn.get() >= TURN_BYTES {
            socket.turn.set(0);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            let result = match op {
                Op::Read(buf) => (&socket.stream).read(buf),
                Op::Write(buf) => (&socket.stream).write(buf),
            };
            match result {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Ok(n) => socket.turn.set(socket.turn.get() + n),
                Err(_) => {}
            }
            return Poll::Ready(result);
        }
        // Not ready: wait, unless it is too late to.
        if Instant::now() >= socket.deadline {
            return Poll::Ready(Err(ErrorKind::TimedOut.into()));
        }
        let fd = socket.stream.as_raw_fd();
        let waiter = (cx.waker().clone(), socket.deadline);
        socket.reactor.waiting.borrow_mut().insert(fd, waiter);
        Poll::Pending
    }
}
// ANCHOR_END: socket

// ANCHOR: waker
/// A task: a connection's future, boxed, with the waker that puts it back
/// on the run queue.
struct Task {
    future: Pin<Box<dyn Future<Output = io::Result<()>>>>,
    waker: Waker,
}

/// The numbers of the tasks that may make progress. A `Waker` may be
/// sent to another thread, so the queue it holds is behind a lock, which
/// no other thread ever takes here.
type RunQueue = Arc<Mutex<VecDeque<u64>>>;

struct TaskWaker {
    task: u64,
    queue: RunQueue,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        // Only a panic while the lock is held could poison it: none can.
        self.queue.lock().unwrap().push_back(self.task);
    }
}
// ANCHOR_END: waker

// ANCHOR: reactor
/// The token of the listening socket's events; a connection's is its
/// descriptor.
const LISTENER: u64 = u64::MAX;
const EVENTS: usize = 1024;
/// How often the reactor wakes the tasks whose deadline has passed.
const SWEEP: Duration = Duration::from_millis(250);

/// epoll, and for each socket a task waits on, its waker and deadline.
struct Reactor {
    epoll: Epoll,
    waiting: RefCell<HashMap<RawFd, (Waker, Instant)>>,
}

impl Reactor {
    /// Waits for events, no longer than `timeout`, and wakes the tasks
    /// whose sockets they are for. Returns whether the listener is ready.
    fn turn(&self, events: &mut [EpollEvent], t: EpollTimeout) -> io::Result<bool> {
        let n = match self.epoll.wait(events, t) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        let mut listener = false;
        let mut waiting = self.waiting.borrow_mut();
        for event in &events[..n] {
            match event.data() {
                LISTENER => listener = true,
                fd => {
                    if let Some((waker, _)) = waiting.remove(&(fd as RawFd)) {
                        waker.wake();
                    }
                }
            }
        }
        Ok(listener)
    }

    /// Wakes every task whose deadline has passed: its read or write is
    /// tried once more, and fails with `TimedOut`.
    fn sweep(&self, now: Instant) {
        self.waiting.borrow_mut().retain(|_, (waker, deadline)| {
            let due = *deadline <= now;
            if due {
                waker.wake_by_ref();
            }
            !due
        });
    }
}
// ANCHOR_END: reactor

// ANCHOR: executor
struct Executor {
    reactor: Rc<Reactor>,
    acceptor: Acceptor,
    /// Every task not finished, by its number.
    tasks: HashMap<u64, Task>,
    /// The number of the next task spawned: none is ever used twice.
    next: u64,
    queue: RunQueue,
}

impl Executor {
    fn new(listener: TcpListener) -> io::Result<Executor> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let acceptor = Acceptor::new(listener)?;
        let listening = EpollEvent::new(EpollFlags::EPOLLIN, LISTENER);
        epoll.add(acceptor.listener(), listening)?;
        Ok(Executor {
            reactor: Rc::new(Reactor {
                epoll,
                waiting: RefCell::default(),
            }),
            acceptor,
            tasks: HashMap::new(),
            next: 0,
            queue: RunQueue::default(),
        })
    }

    /// Runs the tasks that were woken, then waits for the reactor to wake
    /// more, and so on for ever.
    fn run(mut self) -> io::Result<()> {
        let mut events = vec![EpollEvent::empty(); EVENTS];
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            // Only those queued now: a task that wakes itself runs again
            // after the reactor's next turn, not before.
            let woken = std::mem::take(&mut *self.queue.lock().unwrap());
            for n in woken {
                // A task woken twice may have finished at the first poll.
                let Some(task) = self.tasks.get_mut(&n) else {
                    continue;
                };
                let mut cx = Context::from_waker(&task.waker);
                if task.future.as_mut().poll(&mut cx).is_ready() {
                    self.tasks.remove(&n); // and with it, its socket
                }
            }
            let timeout = if !self.queue.lock().unwrap().is_empty() {
                EpollTimeout::ZERO // tasks are ready: only look
            } else if self.reactor.waiting.borrow().is_empty() {
                EpollTimeout::NONE // nothing can expire: sleep until a client comes
            } else {
                conn::epoll_timeout(next_sweep)
            };
            if self.reactor.turn(&mut events, timeout)? {
                self.accept();
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.reactor.sweep(now);
                next_sweep = now + SWEEP;
            }
        }
    }

    /// Takes the connections waiting, a batch at most, a task for each.
    /// Each socket is registered once, for reading and writing,
    /// edge-triggered: epoll reports each change, and a task always tries
    /// its read or write before it waits.
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let Some(stream) = self.acceptor.accept() else {
                return;
            };
            let fd = stream.as_raw_fd() as u64;
            let flags =
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLET;
            if self
                .reactor
                .epoll
                .add(&stream, EpollEvent::new(flags, fd))
                .is_err()
            {
                continue; // no kernel memory to watch it: this client loses
            }
            let reactor = self.reactor.clone();
            let (deadline, turn) = (Instant::now(), Cell::new(0));
            self.spawn(serve(Socket {
                stream,
                reactor,
                deadline,
                turn,
            }));
        }
    }

    /// Makes `future` a task, and queues it for its first poll.
    fn spawn(&mut self, future: impl Future<Output = io::Result<()>> + 'static) {
        let (task, queue) = (self.next, self.queue.clone());
        self.next += 1;
        let waker = Waker::from(Arc::new(TaskWaker { task, queue }));
        waker.wake_by_ref();
        let future = Box::pin(future);
        self.tasks.insert(task, Task { future, waker });
    }
}
// ANCHOR_END: executor
