//! TUN I/O through io_uring: batched writes (ADR 0006) and multishot reads
//! into provided buffers (ADR 0007).
//!
//! A TUN takes one packet per `write(2)`, and every write runs the kernel's
//! forwarding of that packet and wakes whoever receives it; at return to
//! user space the worker is then often preempted by the task it woke. A
//! [`Uring`] queues the writes of up to `capacity` translated packets and
//! hands them to the kernel in one `io_uring_enter`: one system call, one
//! return to user space and (usually) one wake-up of each receiver per
//! batch instead of per packet.
//!
//! TUN writes never block (the TUN has no transmit backpressure towards the
//! writer), so io_uring completes each of them inline, in submission order.
//!
//! With a reader ([`Uring::with_reader`], kernel 6.7+), one multishot read
//! stays armed on the TUN queue: the kernel reads packets into buffers the
//! worker provides (a buffer ring over the worker's own buffers) and posts a
//! completion per packet. With `DEFER_TASKRUN` those reads run only inside
//! this worker's `io_uring_enter`, so one system call both writes a batch
//! and reads the next one, and the buffers are never written while the
//! worker looks at them. A buffer goes back to the kernel when the worker
//! is done with its packet: at once for a dropped packet, when its write
//! completes for a forwarded one.

use crate::stats::Stats;
use io_uring::{cqueue, opcode, types, IoUring};
use std::alloc::{self, Layout};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// user_data of the multishot read.
const READ: u64 = 1 << 63;
/// Buffer id of a write whose frame is not in a provided buffer.
const NO_BUF: u16 = u16::MAX;
/// The one buffer group a worker's ring has.
const GROUP: u16 = 0;

/// A packet the multishot read delivered, or why it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDone {
    /// `len` bytes (virtio-net header included, where the TUN has one) in
    /// buffer `id`.
    Packet { id: u16, len: usize },
    /// The read failed with this errno (`ENOBUFS`: every buffer was in use;
    /// it is re-armed when some come back).
    Error(i32),
}

/// Where the reader's buffers are: buffer `id` starts at `base + id *
/// stride`; the kernel writes a packet at `offset` into it, at most `len`
/// bytes.
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    pub base: *mut u8,
    pub count: u16,
    pub stride: usize,
    pub offset: usize,
    pub len: u32,
}

/// The provided-buffer ring of a multishot reader.
struct Reader {
    fd: RawFd,
    bufs: Buffers,
    /// The ring shared with the kernel: `entries` `io_uring_buf`s; the tail
    /// overlays the reserved field of the first.
    mem: NonNull<types::BufRingEntry>,
    layout: Layout,
    entries: u16,
    tail: u16,
    armed: bool,
}

impl Reader {
    fn tail_ptr(&self) -> &AtomicU16 {
        // SAFETY: the ring memory lives as long as self; the tail is a
        // naturally aligned u16 the kernel only reads.
        unsafe { AtomicU16::from_ptr(types::BufRingEntry::tail(self.mem.as_ptr()) as *mut u16) }
    }

    /// Hands buffer `id` (back) to the kernel.
    fn provide(&mut self, id: u16) {
        debug_assert!(id < self.bufs.count);
        let slot = usize::from(self.tail & (self.entries - 1));
        // SAFETY: slot < entries; the kernel reads entries only up to the
        // tail published below, so this one is ours until then.
        let e = unsafe { &mut *self.mem.as_ptr().add(slot) };
        let addr =
            self.bufs.base as u64 + (usize::from(id) * self.bufs.stride + self.bufs.offset) as u64;
        e.set_addr(addr);
        e.set_len(self.bufs.len);
        e.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        self.tail_ptr().store(self.tail, Ordering::Release);
    }
}

/// One worker's io_uring: queued writes, and optionally the multishot read.
/// The frames stay in the caller's buffers: see [`Uring::push`] for the
/// rule that keeps that sound.
pub struct Uring {
    ring: IoUring,
    /// Writes queued or submitted whose completion has not been seen.
    writes: usize,
    reader: Option<Reader>,
    /// Read completions the worker has not taken yet.
    reads: VecDeque<ReadDone>,
}

impl Uring {
    /// A ring for up to `capacity` queued writes. Fails where io_uring is
    /// unavailable (old kernel, `kernel.io_uring_disabled`, a seccomp
    /// filter); the caller then writes one packet per call.
    pub fn new(capacity: usize) -> io::Result<Uring> {
        let entries = capacity.next_power_of_two().max(2) as u32;
        // The ring has one user (this worker): say so, and let completions
        // run at our next io_uring_enter rather than by interrupting us.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        Ok(Uring {
            ring,
            writes: 0,
            reader: None,
            reads: VecDeque::new(),
        })
    }

    /// A ring for `capacity` queued writes that also reads TUN queue `fd`
    /// with a multishot read into `bufs`, all of which it hands to the
    /// kernel now. Fails where the kernel lacks any part of that (multishot
    /// read is 6.7+); the caller then reads with read(2).
    ///
    /// # Safety
    /// The memory `bufs` describes must stay allocated until the `Uring` is
    /// dropped, and the caller must not touch a buffer between handing it
    /// to the kernel (here, or [`Uring::recycle`]) and getting it back in a
    /// [`ReadDone::Packet`].
    pub unsafe fn with_reader(capacity: usize, fd: RawFd, bufs: Buffers) -> io::Result<Uring> {
        let entries = u16::try_from(usize::from(bufs.count).next_power_of_two())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Room in the completion queue for a completion per buffer and per
        // write, so the multishot read never stops on a full queue.
        let sq = capacity.next_power_of_two().max(2) as u32;
        let cq = (u32::from(entries) + sq).next_power_of_two() * 2;
        // DEFER_TASKRUN: reads run only when this thread waits for
        // completions (which also means they never run while it looks at a
        // buffer).
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(cq)
            .build(sq)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::ReadMulti::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no multishot read (Linux 6.7+)",
            ));
        }
        let layout = Layout::from_size_align(
            usize::from(entries) * std::mem::size_of::<types::BufRingEntry>(),
            4096,
        )
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: non-zero size.
        let mem = NonNull::new(unsafe { alloc::alloc_zeroed(layout) } as *mut types::BufRingEntry)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut reader = Reader {
            fd,
            bufs,
            mem,
            layout,
            entries,
            tail: 0,
            armed: false,
        };
        // SAFETY: the ring memory is freed only after it is unregistered
        // (Drop), or right below if registering failed.
        let reg = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem.as_ptr() as u64, entries, GROUP, 0)
        };
        if let Err(e) = reg {
            // SAFETY: allocated above with this layout, not registered.
            unsafe { alloc::dealloc(mem.as_ptr() as *mut u8, layout) };
            return Err(e);
        }
        for id in 0..bufs.count {
            reader.provide(id);
        }
        Ok(Uring {
            ring,
            writes: 0,
            reader: Some(reader),
            // Room for a completion per buffer plus the error that ends
            // an armed read, so the queue does not grow on the packet path.
            reads: VecDeque::with_capacity(usize::from(entries) + 2),
        })
    }

    /// Queues the write of `frame` (virtio-net header included where the
    /// TUN has one) to `fd`, a TUN queue; `pkt_len` is what the byte
    /// counter gets. `buf` is the provided buffer the frame is in: it goes
    /// back to the kernel when the write completes.
    ///
    /// # Safety
    /// `frame` must stay valid and unmodified until the next
    /// [`Uring::flush`] returns: the kernel reads it then.
    pub unsafe fn push(&mut self, fd: RawFd, frame: &[u8], pkt_len: usize, buf: Option<u16>) {
        let data = (pkt_len as u64) << 16 | u64::from(buf.unwrap_or(NO_BUF));
        let sqe = opcode::Write::new(types::Fd(fd), frame.as_ptr(), frame.len() as u32)
            // -1: the file position, as write(2); a TUN ignores it.
            .offset(u64::MAX)
            .build()
            .user_data(data);
        self.push_sqe(&sqe);
        self.writes += 1;
    }

    fn push_sqe(&mut self, sqe: &io_uring::squeue::Entry) {
        // SAFETY: the caller keeps what the entry points at alive until it
        // completes.
        if unsafe { self.ring.submission().push(sqe) }.is_err() {
            // Full: submit what is there to make room (the writes complete
            // inline, the read re-arm is cheap).
            let _ = self.ring.submit();
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(sqe) }.is_err() {
                unreachable!("io_uring submission queue sized for the batch");
            }
        }
    }

    /// Submits the queued writes and waits for all of them, counting them.
    /// Packets read meanwhile wait in [`Uring::next_read`].
    pub fn flush(&mut self, stats: &Stats) {
        while self.writes > 0 {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The ring itself failed (not one write): nothing more
                    // will complete; count what is outstanding as failed.
                    tracing::warn!("io_uring submit failed: {e}");
                    Stats::add(&stats.tun_write_errors, self.writes as u64);
                    self.writes = 0;
                    break;
                }
            }
            self.reap(stats);
        }
    }

    /// With a reader: arms the read if it is not, then waits up to
    /// `timeout_ms` for packets (returns at once when some are waiting).
    pub fn wait_reads(&mut self, timeout_ms: u32, stats: &Stats) {
        let Some(r) = self.reader.as_mut() else {
            return;
        };
        if !r.armed {
            r.armed = true;
            let sqe = opcode::ReadMulti::new(types::Fd(r.fd), 0, GROUP)
                .build()
                .user_data(READ);
            self.push_sqe(&sqe);
        }
        if self.reads.is_empty() {
            let ts = types::Timespec::new()
                .sec(u64::from(timeout_ms / 1000))
                .nsec((timeout_ms % 1000) * 1_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if e.raw_os_error() == Some(libc::ETIME)
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("io_uring wait failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
        self.reap(stats);
    }

    /// The next packet the multishot read delivered.
    pub fn next_read(&mut self) -> Option<ReadDone> {
        self.reads.pop_front()
    }

    /// Hands provided buffer `id` back to the kernel (no-op without a
    /// reader): the caller does not touch it again until a read returns it.
    pub fn recycle(&mut self, id: u16) {
        if let Some(r) = self.reader.as_mut() {
            r.provide(id);
        }
    }

    /// Takes the completions: writes are counted (and their buffers go back
    /// to the kernel), reads are queued for [`Uring::next_read`].
    fn reap(&mut self, stats: &Stats) {
        for cqe in self.ring.completion() {
            let data = cqe.user_data();
            let res = cqe.result();
            if data == READ {
                let Some(r) = self.reader.as_mut() else {
                    continue;
                };
                if !cqueue::more(cqe.flags()) {
                    r.armed = false;
                }
                let done = match (res, cqueue::buffer_select(cqe.flags())) {
                    (n, Some(id)) if n >= 0 => ReadDone::Packet {
                        id,
                        len: n as usize,
                    },
                    (n, id) => {
                        // A failed read that took a buffer gives it back.
                        if let Some(id) = id {
                            r.provide(id);
                        }
                        ReadDone::Error(-n.min(0))
                    }
                };
                self.reads.push_back(done);
                continue;
            }
            self.writes = self.writes.saturating_sub(1);
            let buf = (data & 0xffff) as u16;
            if let Some(r) = self.reader.as_mut().filter(|_| buf != NO_BUF) {
                r.provide(buf);
            }
            if res < 0 {
                Stats::inc(&stats.tun_write_errors);
                tracing::debug!("TUN write error: {}", io::Error::from_raw_os_error(-res));
            } else {
                Stats::inc(&stats.tx_packets);
                Stats::add(&stats.tx_bytes, data >> 16);
            }
        }
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            // The kernel stops using the ring memory when it is unregistered
            // (or when the ring goes, if that fails; then it is leaked).
            if self.ring.submitter().unregister_buf_ring(GROUP).is_ok() {
                // SAFETY: allocated in with_reader with this layout; the
                // kernel no longer knows it.
                unsafe { alloc::dealloc(r.mem.as_ptr() as *mut u8, r.layout) };
            }
        }
    }
}
