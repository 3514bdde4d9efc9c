//! Step 2 of the chapter: each connection receives with one multishot
//! submission, into buffers the kernel picks from a ring of them.

use std::alloc::{self, Layout};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;
use std::{io, ptr};

use conn::Interest;
use io_uring::types::BufRingEntry;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use nix::errno::Errno;

use super::{Op, Server, Socket, on, user_data};

// ANCHOR: buf_ring
/// How many buffers the ring holds (a power of two), and their size.
const BUFS: u16 = 1024;
const BUF_SIZE: usize = 4096;

/// The most buffers a connection holds, their bytes not yet taken, before
/// its multishot receive is cancelled: a client that sends and does not
/// read what it is owed cannot take the whole ring.
const HELD_MAX: usize = 4;

/// (Step 2) The buffers a multishot receive takes from: the kernel picks
/// one for each completion and says which by its number, and it is ours
/// until we give it back by writing its address at the ring's tail. The
/// ring and the buffers are shared with the kernel, so they are reached
/// through raw pointers only, never through a Rust reference that the
/// kernel's writes would break.
pub(super) struct BufRing {
    ring: *mut BufRingEntry,
    bufs: *mut u8,
    /// The ring's tail: the next entry to write.
    tail: u16,
}

/// The ring of entries must start on a page of its own.
const RING: Layout =
    match Layout::from_size_align(BUFS as usize * size_of::<BufRingEntry>(), 4096) {
        Ok(layout) => layout,
        Err(_) => panic!("a valid layout"),
    };
const MEMORY: Layout = match Layout::from_size_align(BUFS as usize * BUF_SIZE, 64) {
    Ok(layout) => layout,
    Err(_) => panic!("a valid layout"),
};

impl BufRing {
    /// The buffer group our multishot receives name.
    const GROUP: u16 = 0;

    pub(super) fn register(ring: &IoUring) -> io::Result<BufRing> {
        // SAFETY: neither layout has a size of zero.
        let (entries, bufs) =
            unsafe { (alloc::alloc_zeroed(RING), alloc::alloc(MEMORY)) };
        if entries.is_null() || bufs.is_null() {
            alloc::handle_alloc_error(RING);
        }
        let mut this = BufRing {
            ring: entries.cast(),
            bufs,
            tail: 0,
        };
        // SAFETY: the ring is BUFS zeroed entries, freed only after the
        // io_uring is (see `Drop`).
        unsafe {
            let addr = this.ring as u64;
            ring.submitter().register_buf_ring_with_flags(
                addr,
                BUFS,
                Self::GROUP,
                0,
            )?;
        }
        for id in 0..BUFS {
            this.give(id);
        }
        Ok(this)
    }

    /// Bytes `start..end` of buffer `id`, which a completion gave us.
    fn bytes(&self, id: u16, start: usize, end: usize) -> &[u8] {
        assert!(id < BUFS && start <= end && end <= BUF_SIZE);
        // SAFETY: in bounds; the kernel does not write to a buffer it gave
        // us until we give it back, which needs `&mut self`.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.add(id as usize * BUF_SIZE + start),
                end - start,
            )
        }
    }

    /// Gives buffer `id` back to the kernel, to fill again.
    pub(super) fn give(&mut self, id: u16) {
        assert!(id < BUFS);
        // SAFETY: the entry at the tail is ours to write, until the tail
        // is moved past it, and the buffer is in bounds.
        unsafe {
            let entry = &mut *self.ring.add((self.tail & (BUFS - 1)) as usize);
            entry.set_addr(self.bufs.add(id as usize * BUF_SIZE) as u64);
            entry.set_len(BUF_SIZE as u32);
            entry.set_bid(id);
            self.tail = self.tail.wrapping_add(1);
            // The kernel reads the tail: the entry must be written first.
            let tail = BufRingEntry::tail(self.ring).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    /// Frees the buffers. `Server` declares its `ring` before its `bufs`,
    /// so the io_uring is closed, and the kernel done with them, first.
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts.
        unsafe {
            alloc::dealloc(self.ring.cast(), RING);
            alloc::dealloc(self.bufs, MEMORY);
        }
    }
}
// ANCHOR_END: buf_ring

// ANCHOR: multi
/// (Step 2) Where a connection's multishot receive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Multi {
    /// None has been armed yet. The first receive of a connection is a
    /// single one, from the ring too: with a new connection per request it
    /// is the only one, and a multishot receive would need cancelling.
    New,
    /// None is in flight.
    Off,
    /// One is in flight, and completes each time data comes.
    Armed,
    /// One is in flight, with a cancel on its way.
    Stopping,
    /// None is in flight: the ring had no free buffer. The next tick arms
    /// it again (arming it at once could fail at once, in a loop).
    Starved,
}
// ANCHOR_END: multi

impl Server {
    // ANCHOR: multishot
    /// (Step 2) Whether a receive of this connection completing now is its
    /// multishot one.
    pub(super) fn multishot_in_flight(&self, id: u64) -> bool {
        let multi = self.conns.get(&id).map(|entry| entry.multi);
        matches!(multi, Some(Multi::Armed | Multi::Stopping))
    }

    /// (Step 2) Arms the connection's multishot receive: one submission,
    /// and a completion each time data comes, in a buffer of the kernel's
    /// choosing from the ring. (Its first receive is a single one.)
    fn arm(&mut self, id: u64) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("a known connection");
        let first = entry.multi == Multi::New;
        entry.multi = Multi::Armed;
        let (group, len) = (BufRing::GROUP, BUF_SIZE as u32);
        let sqe = if first {
            on!(&entry.socket, |fd| opcode::Recv::new(
                fd,
                ptr::null_mut(),
                len
            )
            .buf_group(group)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT))
        } else {
            on!(&entry.socket, |fd| opcode::RecvMulti::new(fd, group)
                .build())
        };
        // SAFETY: no buffer of ours; the ring's live as long as the server.
        unsafe { self.push(&sqe.user_data(user_data(id, Op::Recv))) }
    }

    /// (Step 2) Cancels the connection's multishot receive; it ends with
    /// a completion that has no `more` flag.
    pub(super) fn stop(&mut self, id: u64) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("a known connection");
        entry.multi = Multi::Stopping;
        let cancel = opcode::AsyncCancel::new(user_data(id, Op::Recv)).build();
        // SAFETY: no buffer.
        unsafe { self.push(&cancel.user_data(user_data(id, Op::Cancel))) }
    }

    /// (Step 2) The connection's multishot receive completed: with `result`
    /// bytes in the buffer `flags` names, or with the client's end, or an
    /// error. The bytes are held until the connection takes them, which it
    /// does at once unless a send of it is in flight.
    pub(super) fn received(
        &mut self,
        id: u64,
        result: i32,
        flags: u32,
    ) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("checked by the caller");
        if !cqueue::more(flags) {
            entry.multi = Multi::Off; // it has ended
        }
        match (result, cqueue::buffer_select(flags)) {
            (n, Some(buf)) if n > 0 => entry.held.push_back((buf, 0, n as usize)),
            (0, _) => entry.ended = true,
            (e, _) => match Errno::from_raw(-e) {
                // No free buffer in the ring: it has ended.
                Errno::ENOBUFS if entry.multi == Multi::Off => {
                    entry.multi = Multi::Starved
                }
                Errno::ECANCELED => {} // by `stop`
                // Before Linux 6.0 the kernel refuses the multishot flag:
                // from now on, every connection receives into its buffer.
                Errno::EINVAL if entry.op == Op::Recv => {
                    if self.steps.multishot {
                        eprintln!(
                            "uring: no multishot receive (Linux 6.0); \
                             receiving into each connection's buffer"
                        );
                        self.steps.multishot = false;
                    }
                    return self.submit(id);
                }
                // ECONNRESET and the like: answer what came before, if the
                // client still takes it, then close.
                _ => entry.ended = true,
            },
        }
        if entry.op == Op::Cancel {
            // Given up: wait for the multishot receive to end, then close.
            return self.close(id);
        }
        if entry.held.len() > HELD_MAX && entry.multi == Multi::Armed {
            self.stop(id)?; // armed again once the connection takes them
        }
        self.feed(id)
    }

    /// (Step 2) Hands the connection the bytes held for it, if it waits
    /// for a request, and gives their buffers back to the ring; then, with
    /// nothing held, arms its multishot receive if none is.
    pub(super) fn feed(&mut self, id: u64) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("a known connection");
        let bufs = self.bufs.as_mut().expect("step 2 has its ring");
        while entry.op == Op::Recv {
            if Instant::now() >= entry.conn.deadline() {
                return self.close(id); // past its deadline: given up
            }
            let Some((buf, start, end)) = entry.held.front_mut() else {
                return match entry.multi {
                    _ if entry.ended => self.close(id),
                    Multi::New | Multi::Off => self.arm(id),
                    _ => Ok(()),
                };
            };
            // A copy into the connection's own buffer, as a `read` makes.
            let space = entry.conn.space();
            let n = space.len().min(*end - *start);
            space[..n].copy_from_slice(bufs.bytes(*buf, *start, *start + n));
            *start += n;
            if start == end {
                bufs.give(*buf);
                entry.held.pop_front();
            }
            match entry.conn.received(n) {
                Interest::Read => {}
                Interest::Write => {
                    entry.op = Op::Send;
                    return self.submit(id);
                }
                Interest::Close => return self.close(id),
            }
        }
        Ok(()) // a send of it is in flight: its completion feeds it again
    }
    // ANCHOR_END: multishot
}
