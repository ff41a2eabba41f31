//! Batched TUN writes through io_uring (ADR 0006).
//!
//! A TUN takes one packet per `write(2)`, and every write runs the kernel's
//! forwarding of that packet and wakes whoever receives it; at return to
//! user space the worker is then often preempted by the task it woke. A
//! `WriteBatch` queues the writes of up to `capacity` translated packets
//! and hands them to the kernel in one `io_uring_enter`: one system call,
//! one return to user space and (usually) one wake-up of each receiver per
//! batch instead of per packet.
//!
//! TUN writes never block (the TUN has no transmit backpressure towards the
//! writer), so io_uring completes each of them inline, in submission order.

use crate::stats::Stats;
use io_uring::{opcode, types, IoUring};
use std::io;
use std::os::fd::RawFd;

/// Queued writes of one worker. The frames stay in the caller's buffers:
/// see [`WriteBatch::push`] for the rule that keeps that sound.
pub struct WriteBatch {
    ring: IoUring,
    /// Packet length (without the virtio-net header) of each queued write,
    /// for the byte counters; indexed by the SQE's user data.
    lens: Vec<u32>,
    capacity: usize,
}

impl WriteBatch {
    /// A ring for up to `capacity` queued writes. Fails where io_uring is
    /// unavailable (old kernel, `kernel.io_uring_disabled`, a seccomp
    /// filter); the caller then writes one packet per call.
    pub fn new(capacity: usize) -> io::Result<WriteBatch> {
        let entries = capacity.next_power_of_two().max(2) as u32;
        // The ring has one user (this worker): say so, and let completions
        // run at our next io_uring_enter rather than by interrupting us.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        Ok(WriteBatch {
            ring,
            lens: Vec::with_capacity(capacity),
            capacity,
        })
    }

    pub fn is_full(&self) -> bool {
        self.lens.len() >= self.capacity
    }

    /// Queues the write of `frame` (virtio-net header included where the
    /// TUN has one) to `fd`, a TUN queue; `pkt_len` is what the byte
    /// counter gets.
    ///
    /// # Safety
    /// `frame` must stay valid and unmodified until the next
    /// [`WriteBatch::flush`] returns: the kernel reads it then.
    pub unsafe fn push(&mut self, fd: RawFd, frame: &[u8], pkt_len: usize) {
        debug_assert!(!self.is_full());
        let sqe = opcode::Write::new(types::Fd(fd), frame.as_ptr(), frame.len() as u32)
            // -1: the file position, as write(2); a TUN ignores it.
            .offset(u64::MAX)
            .build()
            .user_data(self.lens.len() as u64);
        // SAFETY: the caller keeps `frame` alive until flush; the queue has
        // room (entries >= capacity and flush empties it).
        if unsafe { self.ring.submission().push(&sqe) }.is_err() {
            unreachable!("io_uring submission queue sized for the batch");
        }
        self.lens.push(pkt_len as u32);
    }

    /// Submits the queued writes, waits for all of them and counts them.
    pub fn flush(&mut self, stats: &Stats) {
        let mut left = self.lens.len();
        while left > 0 {
            match self.ring.submit_and_wait(left) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The ring itself failed (not one write): nothing more
                    // will complete; count what is outstanding as failed.
                    tracing::warn!("io_uring submit failed: {e}");
                    Stats::add(&stats.tun_write_errors, left as u64);
                    break;
                }
            }
            for cqe in self.ring.completion() {
                left = left.saturating_sub(1);
                let len = self.lens.get(cqe.user_data() as usize).copied();
                if cqe.result() < 0 {
                    Stats::inc(&stats.tun_write_errors);
                    tracing::debug!(
                        "TUN write error: {}",
                        io::Error::from_raw_os_error(-cqe.result())
                    );
                } else if let Some(len) = len {
                    Stats::inc(&stats.tx_packets);
                    Stats::add(&stats.tx_bytes, u64::from(len));
                }
            }
        }
        self.lens.clear();
    }
}
