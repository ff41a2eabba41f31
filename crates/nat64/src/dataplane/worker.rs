//! One worker: read, translate in place, write (ADR 0005).

use super::udp_gso::Train;
use super::uring::{Buffers, ReadDone, Uring};
use super::Clock;
use crate::ratelimit::TokenBucket;
use crate::stats::{Class, Stats};
use nat64_core::state::Processed;
use nat64_core::time::Timestamp;
use nat64_core::verdict::{DropReason, IcmpError, Verdict};
use nat64_core::xlat::reassemble::{self, Limits, Push, Reassembler};
use nat64_core::xlat::{self, Offload, HEADROOM, MAX_PACKET};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tun_rs::{
    SyncDevice, VirtioNetHdr, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_LEN,
};

// linux/virtio_net.h values tun-rs does not export.
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

// The virtio-net header sits in the headroom in front of the packet, so a
// translated packet and its header go out in one write (ADR 0004).
const _: () = assert!(VIRTIO_NET_HDR_LEN <= HEADROOM - 48);

/// What turns one packet into a verdict: the RFC 6146 engine's worker in
/// the daemon. In-place: the translated packet is where the verdict says.
/// The answer carries everything the data plane needs: the verdict and the
/// queue that owns the packet's flow (None: no flow, or no placement).
pub trait Processor: Send {
    fn process(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        now: Timestamp,
        off: Offload,
    ) -> Processed;
}

/// Flow placement over the TUN queues (ADR 0005).
///
/// The engine gives every session an owner queue, round-robin. The kernel
/// steers a flow's packets to the queue through which the last packet of
/// that flow (either direction: the hash is symmetric) was written. So a
/// worker that reads a packet of a flow owned by another queue writes its
/// translation through the owner's descriptor; within a round trip both
/// directions arrive on the owner and stay there. Hashing alone puts 4
/// flows on one of 2 queues one time in eight.
pub struct Placement {
    queues: Vec<Arc<SyncDevice>>,
}

impl Placement {
    /// None for a single queue (nothing to place).
    pub fn new(queues: Vec<Arc<SyncDevice>>) -> Option<Arc<Placement>> {
        (queues.len() > 1).then(|| Arc::new(Placement { queues }))
    }
}

/// How a worker runs (from `[tun]`).
pub struct Options {
    /// Packets per io_uring write batch (1: one write(2) per packet).
    pub batch: usize,
    /// This worker's queue index.
    pub queue: usize,
    /// Flow placement over all queues (None: one queue, or turned off).
    pub placement: Option<Arc<Placement>>,
    /// Write runs of same-flow UDP datagrams as UDP GSO super-packets.
    pub coalesce_udp: bool,
    /// Read through a multishot io_uring read where the kernel has one
    /// (needs `batch` > 1).
    pub uring_read: bool,
}

/// State all workers share (read-mostly).
pub struct Shared {
    pub shutdown: AtomicBool,
    pub clock: Clock,
    pub limiter: TokenBucket,
    /// Source of translator-originated ICMPv6 errors (prefix||gateway-v4 or
    /// icmp-source-v6).
    pub icmp_src_v6: Ipv6Addr,
    /// Source of translator-originated ICMPv4 errors (gateway-v4).
    pub icmp_src_v4: Ipv4Addr,
    /// MTU of the TUN (limits the size of generated errors).
    pub tun_mtu: u16,
    /// Workers that have set up their reads: `nat64 run` reports "running"
    /// only when all have, so that what it says holds.
    pub ready: std::sync::atomic::AtomicUsize,
    /// ICMP messages being reassembled from fragments. Shared by the
    /// workers (the fragments of one message may arrive on different
    /// queues); taken only for ICMP fragments, never on the path of
    /// established TCP/UDP flows.
    pub reassembly: Mutex<Reassembler>,
    /// `lease-recovery = "conntrack"`: where IPv4 packets without a lease
    /// are reported ([`crate::recovery`]).
    pub recovery: std::sync::OnceLock<crate::recovery::LeaseRecovery>,
}

/// Bounds of ICMP reassembly: `timeouts.fragment`, 64 messages, 1 MiB.
pub fn reassembly_limits(s: &crate::config::Settings) -> Limits {
    Limits {
        timeout_ms: s.timeouts.fragment.saturating_mul(1000),
        ..Limits::default()
    }
}

impl Shared {
    /// What the workers of a translator with settings `s` on a TUN of MTU
    /// `tun_mtu` share.
    pub fn new(s: &crate::config::Settings, tun_mtu: u16) -> Shared {
        Shared {
            shutdown: Default::default(),
            clock: Clock::new(),
            limiter: TokenBucket::new(s.icmp_rate, s.icmp_burst),
            icmp_src_v6: s.icmp_source_v6,
            icmp_src_v4: s.gateway_v4,
            tun_mtu,
            ready: Default::default(),
            reassembly: Mutex::new(Reassembler::new(reassembly_limits(s))),
            recovery: std::sync::OnceLock::new(),
        }
    }
}

/// Bytes of queued frames that end a batch early (four 64 KiB GSO
/// super-packets): what the batch saves is per-packet cost, which large
/// packets have little of, while every extra buffer in use is 64 KiB more
/// for the cache to hold.
const BATCH_BYTES: usize = 256 * 1024;

/// Poll timeout: how soon an idle worker notices shutdown.
const IDLE_POLL_MS: i32 = 200;

/// Bytes from one packet buffer to the next (cache-line aligned).
const STRIDE: usize = (HEADROOM + MAX_PACKET + 63) & !63;

/// A worker's packet buffers, in one allocation: buffer `id` is the
/// `STRIDE` bytes at `id * STRIDE`, a packet in it starts at `HEADROOM`
/// (its virtio-net header, if any, just before).
struct Slab {
    mem: Vec<u8>,
}

impl Slab {
    fn new(count: usize) -> Slab {
        Slab {
            mem: vec![0u8; count * STRIDE],
        }
    }

    fn buf(&mut self, id: usize) -> &mut [u8] {
        &mut self.mem[id * STRIDE..(id + 1) * STRIDE]
    }

    /// Buffer `a` to write and buffer `b` to read (`a != b`).
    fn pair(&mut self, a: usize, b: usize) -> (&mut [u8], &[u8]) {
        debug_assert_ne!(a, b);
        if a < b {
            let (lo, hi) = self.mem.split_at_mut(b * STRIDE);
            (&mut lo[a * STRIDE..(a + 1) * STRIDE], &hi[..STRIDE])
        } else {
            let (lo, hi) = self.mem.split_at_mut(a * STRIDE);
            (&mut hi[..STRIDE], &lo[b * STRIDE..(b + 1) * STRIDE])
        }
    }
}

/// The UDP train being built in the batch: its first datagram's buffer and
/// where the datagram starts in it (its virtio-net header just before).
struct OpenTrain {
    id: usize,
    start: usize,
    train: Train,
    /// The TUN queue it goes out through.
    fd: RawFd,
}

/// Queues the open train, if any: as it came when nothing joined it, as
/// one UDP GSO super-packet otherwise.
fn close_train(ring: &mut Uring, slab: &mut Slab, open: &mut Option<OpenTrain>) {
    let Some(o) = open.take() else {
        return;
    };
    let b = slab.buf(o.id);
    let at = o.start - VIRTIO_NET_HDR_LEN;
    if o.train.segs > 1 {
        let h = o.train.finish(&mut b[o.start..]);
        // Cannot fail: ten bytes of headroom, checked when it was opened.
        let _ = h.encode(&mut b[at..o.start]);
    }
    // SAFETY: the train's buffer is not touched before the flush that
    // follows every close.
    unsafe {
        ring.push(
            o.fd,
            &b[at..o.start + o.train.len],
            o.train.len,
            Some(o.id as u16),
        )
    };
}

/// A worker's write batch (ADR 0006): frames queued in the io_uring ring,
/// and the UDP train still growing. The frames stay in their buffers until
/// the flush.
struct Batch {
    ring: Uring,
    open: Option<OpenTrain>,
    /// Buffers the batch holds (queued frames and the open train); with
    /// read(2) the next packet is read into buffer `held`.
    held: usize,
    /// Bytes of the queued frames.
    bytes: usize,
    /// Buffers (= packets) per batch.
    cap: usize,
    /// Whether UDP datagrams may form trains.
    coalesce: bool,
}

impl Batch {
    /// Queues the translated packet in buffer `id` (the frame is
    /// `at..start + len`, its virtio-net header in place) for `fd`: it
    /// joins the open UDP train if it can, else closes it and is queued (or
    /// opens a train of its own). A full batch is written at once. Returns
    /// whether the batch holds the buffer (false: the packet was copied
    /// into the train, and its buffer is free again).
    #[allow(clippy::too_many_arguments)]
    fn queue(
        &mut self,
        slab: &mut Slab,
        id: usize,
        at: usize,
        start: usize,
        len: usize,
        fd: RawFd,
        partial: bool,
        stats: &Stats,
    ) -> bool {
        if let Some(o) = self.open.as_mut().filter(|o| o.fd == fd) {
            let (frame, pkt) = slab.pair(o.id, id);
            if o.train
                .append(&mut frame[o.start..], &pkt[start..start + len], partial)
            {
                Stats::inc(&stats.udp_coalesced);
                return false;
            }
        }
        close_train(&mut self.ring, slab, &mut self.open);
        let pkt = &slab.buf(id)[..start + len];
        match self
            .coalesce
            .then(|| Train::start(&pkt[start..], partial))
            .flatten()
        {
            Some(train) => {
                self.open = Some(OpenTrain {
                    id,
                    start,
                    train,
                    fd,
                })
            }
            // SAFETY: the buffer is not touched again before the flush: it
            // is held until its write completes.
            None => unsafe { self.ring.push(fd, &pkt[at..], len, Some(id as u16)) },
        }
        self.held += 1;
        self.bytes += len;
        // A few GSO super-packets are worth a flush: the buffers touched
        // (and their cache lines) stay few.
        if self.held == self.cap || self.bytes >= BATCH_BYTES {
            self.flush(slab, stats);
        }
        true
    }

    /// Writes what is queued (one system call) and starts over.
    fn flush(&mut self, slab: &mut Slab, stats: &Stats) {
        if self.held == 0 {
            return;
        }
        close_train(&mut self.ring, slab, &mut self.open);
        self.ring.flush(stats);
        self.held = 0;
        self.bytes = 0;
    }
}

/// What one read from the TUN gave.
enum Read {
    /// A packet of this many bytes at `HEADROOM` (its virtio-net header, if
    /// any, just before).
    Packet(usize),
    /// Nothing to read now.
    Empty,
    /// Nothing usable (error counted, or interrupted); read again.
    Again,
}

fn read_one(
    dev: &SyncDevice,
    buf: &mut [u8],
    hdr_len: usize,
    stats: &Stats,
    errors_logged: &mut u32,
) -> Read {
    match dev.recv(&mut buf[HEADROOM - hdr_len..]) {
        Ok(n) if n >= hdr_len => Read::Packet(n - hdr_len),
        Ok(_) => {
            stats.count_drop(DropReason::Truncated);
            Read::Again
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Read::Empty,
        Err(e) if e.kind() == ErrorKind::Interrupted => Read::Again,
        Err(e) => {
            read_error(&e, stats, errors_logged);
            Read::Again
        }
    }
}

/// Counts (and logs the first few of) TUN read errors, and backs off.
fn read_error(e: &std::io::Error, stats: &Stats, errors_logged: &mut u32) {
    Stats::inc(&stats.tun_read_errors);
    if *errors_logged < 10 {
        *errors_logged += 1;
        tracing::warn!("TUN read error: {e}");
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
}

/// One worker's state: its queue, its translator, its write batch.
struct Worker<P> {
    dev: Arc<SyncDevice>,
    proc: P,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    opts: Options,
    batch: Option<Batch>,
    /// Where translator-built packets (ICMP errors, fragments) are made.
    out: Vec<u8>,
    /// Where a reassembled ICMP message is translated (HEADROOM + 64 KiB).
    whole: Vec<u8>,
    /// The TUN has the virtio-net header (offloads).
    vnet: bool,
    hdr_len: usize,
    read_errors_logged: u32,
}

/// Runs until `shared.shutdown` is set. With `batch` > 1 translated packets
/// are written `batch` at a time through io_uring (ADR 0006), and packets
/// are read by a multishot io_uring read where the kernel has one (ADR
/// 0007); otherwise reads go on with read(2) until the TUN is empty or the
/// batch is full, then the batch is written.
pub fn run<P: Processor>(
    dev: Arc<SyncDevice>,
    proc: P,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    opts: Options,
) {
    let vnet = dev.tcp_gso();
    // With offloads the kernel puts a virtio-net header before each packet.
    let hdr_len = if vnet { VIRTIO_NET_HDR_LEN } else { 0 };
    // UDP trains need a TUN that takes UDP GSO (ADR 0006).
    let coalesce = opts.coalesce_udp && vnet && dev.udp_gso();
    let cap = opts.batch;
    let batch_of = |ring: Uring| Batch {
        ring,
        open: None,
        held: 0,
        bytes: 0,
        cap,
        coalesce,
    };
    let mut w = Worker {
        dev: dev.clone(),
        proc,
        shared,
        stats,
        batch: None,
        out: vec![0u8; MAX_PACKET],
        whole: vec![0u8; HEADROOM + MAX_PACKET + 128],
        vnet,
        hdr_len,
        read_errors_logged: 0,
        opts,
    };
    if w.opts.batch > 1 && w.opts.uring_read {
        // Buffers for a batch in flight and reads that arrive meanwhile.
        let count = (w.opts.batch * 4).next_power_of_two().clamp(64, 1024);
        let mut slab = Slab::new(count);
        let bufs = Buffers {
            base: slab.mem.as_mut_ptr(),
            count: count as u16,
            stride: STRIDE,
            offset: HEADROOM - hdr_len,
            len: (MAX_PACKET + hdr_len) as u32,
        };
        // SAFETY: the slab outlives the ring (dropped after the worker,
        // below); the worker touches a buffer only between a read that
        // returns it and the recycle or write completion that gives it back.
        match unsafe { Uring::with_reader(w.opts.batch, dev.as_raw_fd(), bufs) } {
            Ok(ring) => {
                tracing::info!(
                    "queue {}: multishot io_uring reads into {count} buffers, writes in batches \
                     of {cap}",
                    w.opts.queue
                );
                w.batch = Some(batch_of(ring));
                w.shared.ready.fetch_add(1, Ordering::Release);
                w.run_multishot(&mut slab);
                drop(w);
                drop(slab);
                return;
            }
            Err(e) => tracing::info!(
                "multishot io_uring read not available ({e}): reading with read(2) \
                 (set tun.uring-read = false to say so)"
            ),
        }
    }
    if w.opts.batch > 1 {
        match Uring::new(w.opts.batch) {
            Ok(ring) => {
                tracing::info!(
                    "queue {}: read(2) reads, writes in batches of {cap}",
                    w.opts.queue
                );
                w.batch = Some(batch_of(ring))
            }
            Err(e) => {
                tracing::warn!(
                    "io_uring is not available ({e}): writing one packet per system call \
                     (set tun.batch = 1 to say so and silence this warning)"
                );
            }
        }
    }
    // One buffer per packet that may wait in the batch.
    let mut slab = Slab::new(w.batch.as_ref().map_or(1, |b| b.cap));
    w.shared.ready.fetch_add(1, Ordering::Release);
    w.run_read(&mut slab);
}

impl<P: Processor> Worker<P> {
    /// Reads with read(2) until the TUN is empty or the batch is full.
    fn run_read(&mut self, slab: &mut Slab) {
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let mut got_any = false;
            loop {
                // Buffers 0..held wait in the batch.
                let id = self.batch.as_ref().map_or(0, |b| b.held);
                let n = match read_one(
                    &self.dev,
                    slab.buf(id),
                    self.hdr_len,
                    &self.stats,
                    &mut self.read_errors_logged,
                ) {
                    Read::Packet(n) => n,
                    Read::Again => continue,
                    Read::Empty => break,
                };
                got_any = true;
                self.packet(slab, id, n);
            }
            if let Some(b) = self.batch.as_mut() {
                b.flush(slab, &self.stats);
            }
            if !got_any {
                if let Err(e) = super::tun::wait_readable(&self.dev, IDLE_POLL_MS) {
                    tracing::error!("poll on the TUN failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }

    /// Takes the packets the multishot read delivers (ADR 0007); each
    /// wait for them also writes what is queued.
    fn run_multishot(&mut self, slab: &mut Slab) {
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let Some(b) = self.batch.as_mut() else {
                return;
            };
            b.ring.wait_reads(IDLE_POLL_MS as u32, &self.stats);
            while let Some(done) = self.batch.as_mut().and_then(|b| b.ring.next_read()) {
                let (id, len) = match done {
                    ReadDone::Packet { id, len } => (id, len),
                    // Every buffer in use: the read is re-armed when some
                    // come back, at the next wait.
                    ReadDone::Error(libc::ENOBUFS) => continue,
                    ReadDone::Error(e) => {
                        let e = std::io::Error::from_raw_os_error(e);
                        read_error(&e, &self.stats, &mut self.read_errors_logged);
                        continue;
                    }
                };
                let held = match len.checked_sub(self.hdr_len) {
                    Some(n) => self.packet(slab, usize::from(id), n),
                    None => {
                        self.stats.count_drop(DropReason::Truncated);
                        false
                    }
                };
                if !held {
                    if let Some(b) = self.batch.as_mut() {
                        b.ring.recycle(id);
                    }
                }
            }
            if let Some(b) = self.batch.as_mut() {
                b.flush(slab, &self.stats);
            }
        }
    }

    /// Translates the packet of `n` bytes at `HEADROOM` in buffer `id` and
    /// queues its translation in the batch or sends what the verdict says.
    /// Returns whether the batch holds the buffer.
    fn packet(&mut self, slab: &mut Slab, id: usize, n: usize) -> bool {
        let stats = &*self.stats;
        let buf = slab.buf(id);
        let class = stats.count_rx(&buf[HEADROOM..HEADROOM + n]);
        let now = self.shared.clock.now();
        if reassemble::is_icmp_fragment(&buf[HEADROOM..HEADROOM + n]) {
            self.icmp_fragment(slab, id, n, now);
            return false;
        }
        let (off, vhdr) = if self.vnet {
            match VirtioNetHdr::decode(&buf[HEADROOM - self.hdr_len..HEADROOM]) {
                Ok(h) => (offload_of(&h), Some(h)),
                Err(_) => (Offload::NONE, None),
            }
        } else {
            (Offload::NONE, None)
        };
        if off.gso_size != 0 {
            Stats::inc(&stats.rx_gso);
        }
        let Processed { verdict, owner } = self.proc.process(buf, HEADROOM, n, now, off);
        // A flow owned by another queue goes out through that queue.
        let via = match (&self.opts.placement, verdict) {
            (Some(p), Verdict::Forward { .. }) => owner
                .map(usize::from)
                .filter(|&q| q != self.opts.queue)
                .and_then(|q| p.queues.get(q))
                .map(|d| &**d),
            _ => None,
        };
        if via.is_some() {
            Stats::inc(&stats.steered);
        }
        let dev = via.unwrap_or(&self.dev);
        match (&mut self.batch, verdict) {
            (
                Some(b),
                Verdict::Forward {
                    start,
                    len,
                    fragment_mtu: None,
                },
            ) => {
                let Some(out) = buf.get(start..start.saturating_add(len)) else {
                    stats.count_drop(DropReason::NoBufferRoom);
                    return false;
                };
                stats.count_forwarded(class, out);
                let at = if self.vnet {
                    let h = vhdr.unwrap_or_default();
                    match put_vnet_hdr(buf, start, len, n, &h) {
                        Some(at) => at,
                        None => {
                            stats.count_drop(DropReason::NoBufferRoom);
                            return false;
                        }
                    }
                } else {
                    start
                };
                let fd = dev.as_raw_fd();
                b.queue(slab, id, at, start, len, fd, off.csum_partial, stats)
            }
            (batch, verdict) => {
                // What the translator builds itself (ICMP errors,
                // fragments) goes out after what was queued before it.
                // This packet's buffer stays as it is: the batch does not
                // hold it.
                if let Some(b) = batch
                    .as_mut()
                    .filter(|_| !matches!(verdict, Verdict::Drop(_)))
                {
                    b.flush(slab, stats);
                }
                handle(
                    dev,
                    slab.buf(id),
                    &mut self.out,
                    n,
                    class,
                    verdict,
                    vhdr,
                    now,
                    &self.shared,
                    stats,
                );
                false
            }
        }
    }
}

impl<P: Processor> Worker<P> {
    /// An ICMP fragment (buffer `id`, `n` bytes): an ICMP checksum covers
    /// the whole message (ICMPv6's also its length), so fragments cannot be
    /// translated one by one (RFC 7915 §1.2). They are held until the
    /// message is whole, which is then translated as one packet and
    /// fragmented again for the next hop where it is too large.
    fn icmp_fragment(&mut self, slab: &mut Slab, id: usize, n: usize, now: Timestamp) {
        let stats = &*self.stats;
        let pushed = {
            let mut r = self
                .shared
                .reassembly
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            r.push(
                &slab.buf(id)[HEADROOM..HEADROOM + n],
                now,
                &mut self.whole[HEADROOM..],
            )
        };
        for (reason, count) in pushed.drops() {
            stats.count_drops(reason, u64::from(count));
        }
        let len = match pushed.push {
            Push::Held => {
                Stats::inc(&stats.fragments_held);
                return;
            }
            Push::Complete { len } => len,
            // Counted by `drops` above.
            Push::Dropped { .. } => return,
            Push::NotIcmpFragment => {
                stats.count_drop(DropReason::IcmpFragmented);
                return;
            }
        };
        Stats::inc(&stats.fragments_held);
        Stats::inc(&stats.reassembled);
        let class = Class::of(&self.whole[HEADROOM..HEADROOM + len]);
        let verdict = self
            .proc
            .process(&mut self.whole, HEADROOM, len, now, Offload::NONE)
            .verdict;
        // Whatever the batch holds goes out first.
        if let Some(b) = self
            .batch
            .as_mut()
            .filter(|_| !matches!(verdict, Verdict::Drop(_)))
        {
            b.flush(slab, stats);
        }
        handle(
            &self.dev,
            &mut self.whole,
            &mut self.out,
            len,
            class,
            verdict,
            None,
            now,
            &self.shared,
            stats,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    dev: &SyncDevice,
    buf: &mut [u8],
    out: &mut [u8],
    in_len: usize,
    class: Class,
    verdict: Verdict,
    vhdr: Option<VirtioNetHdr>,
    now: Timestamp,
    shared: &Shared,
    stats: &Stats,
) {
    match verdict {
        Verdict::Forward {
            start,
            len,
            fragment_mtu,
        } => {
            let Some(pkt) = buf.get(start..start.saturating_add(len)) else {
                stats.count_drop(DropReason::NoBufferRoom);
                return;
            };
            stats.count_forwarded(class, pkt);
            match (fragment_mtu, vhdr) {
                (None, Some(h)) => send_with_vnet(dev, buf, start, len, in_len, &h, stats),
                (None, None) => send(dev, &buf[start..start + len], stats),
                (Some(mtu), _) => fragment(dev, &buf[start..start + len], mtu, out, stats),
            }
        }
        Verdict::Icmp { error, reason } => {
            stats.count_drop(reason);
            if !shared.limiter.allow(now) {
                Stats::inc(&stats.icmp_rate_limited);
                return;
            }
            let orig = &buf[HEADROOM..HEADROOM + in_len];
            match build_icmp(orig, error, shared, out) {
                Ok(n) => {
                    Stats::inc(&stats.icmp_sent);
                    send(dev, &out[..n], stats);
                }
                Err(r) => {
                    Stats::inc(&stats.icmp_build_failed);
                    tracing::trace!("no ICMP error sent: {r}");
                }
            }
        }
        Verdict::Drop(r) => {
            if r == DropReason::NoBinding {
                if let Some(rec) = shared.recovery.get() {
                    if let Some(orig) = buf.get(HEADROOM..HEADROOM + in_len) {
                        rec.report(orig);
                    }
                }
            }
            stats.count_drop(r)
        }
    }
}

/// What the translator must know of a virtio-net header.
fn offload_of(h: &VirtioNetHdr) -> Offload {
    let gso = h.gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE;
    Offload {
        gso_size: if gso { h.gso_size } else { 0 },
        csum_partial: h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0,
    }
}

/// Writes a translated packet with its virtio-net header (see
/// [`put_vnet_hdr`]).
fn send_with_vnet(
    dev: &SyncDevice,
    buf: &mut [u8],
    start: usize,
    len: usize,
    in_len: usize,
    h: &VirtioNetHdr,
    stats: &Stats,
) {
    match put_vnet_hdr(buf, start, len, in_len, h) {
        Some(at) => write_counted(dev, &buf[at..start + len], len, stats),
        None => stats.count_drop(DropReason::NoBufferRoom),
    }
}

/// Puts the virtio-net header of the packet read (`h`, `in_len` bytes)
/// in front of its translation at `start..start + len`, rewritten for the
/// new family: TCPv4 ↔ TCPv6 GSO type, header length and checksum start
/// moved by the size change of the IP header (the transport header and the
/// payload did not move). Returns where the frame now starts.
fn put_vnet_hdr(
    buf: &mut [u8],
    start: usize,
    len: usize,
    in_len: usize,
    h: &VirtioNetHdr,
) -> Option<usize> {
    let mut h = *h;
    let delta = len as isize - in_len as isize;
    let shift = |v: u16| (v as isize + delta).clamp(0, u16::MAX as isize) as u16;
    let ecn = h.gso_type & VIRTIO_NET_HDR_GSO_ECN;
    let v6_out = buf.get(start).map(|b| b >> 4) == Some(6);
    match h.gso_type & !VIRTIO_NET_HDR_GSO_ECN {
        VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6 => {
            h.gso_type = ecn
                | if v6_out {
                    VIRTIO_NET_HDR_GSO_TCPV6
                } else {
                    VIRTIO_NET_HDR_GSO_TCPV4
                };
        }
        _ => {}
    }
    if h.gso_type != VIRTIO_NET_HDR_GSO_NONE && h.hdr_len != 0 {
        h.hdr_len = shift(h.hdr_len);
    }
    if h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        h.csum_start = shift(h.csum_start);
    }
    let at = start.checked_sub(VIRTIO_NET_HDR_LEN)?;
    h.encode(buf.get_mut(at..start)?).ok()?;
    Some(at)
}

/// Sends a packet the translator built itself (ICMP error, fragment): on an
/// offload TUN it needs an empty virtio-net header in front.
pub fn send(dev: &SyncDevice, pkt: &[u8], stats: &Stats) {
    if !dev.tcp_gso() {
        return write_counted(dev, pkt, pkt.len(), stats);
    }
    let hdr = [0u8; VIRTIO_NET_HDR_LEN];
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: pkt.as_ptr() as *mut libc::c_void,
            iov_len: pkt.len(),
        },
    ];
    // SAFETY: two iovecs over live, initialised buffers; the kernel only
    // reads them during the call.
    let r = unsafe { libc::writev(dev.as_raw_fd(), iov.as_ptr(), 2) };
    if r < 0 {
        Stats::inc(&stats.tun_write_errors);
        tracing::debug!("TUN write error: {}", std::io::Error::last_os_error());
    } else {
        Stats::inc(&stats.tx_packets);
        Stats::add(&stats.tx_bytes, pkt.len() as u64);
    }
}

fn write_counted(dev: &SyncDevice, frame: &[u8], pkt_len: usize, stats: &Stats) {
    match dev.send(frame) {
        Ok(_) => {
            Stats::inc(&stats.tx_packets);
            Stats::add(&stats.tx_bytes, pkt_len as u64);
        }
        Err(e) => {
            Stats::inc(&stats.tun_write_errors);
            tracing::debug!("TUN write error: {e}");
        }
    }
}

/// Emits the fragments of an oversized translated packet (xlat::frag).
fn fragment(dev: &SyncDevice, pkt: &[u8], mtu: u16, out: &mut [u8], stats: &Stats) {
    let mut emit = |f: &[u8]| {
        Stats::inc(&stats.fragments_out);
        send(dev, f, stats);
    };
    let r = match pkt.first().map(|b| b >> 4) {
        Some(6) => xlat::frag::fragment_v6(pkt, mtu, out, &mut emit),
        Some(4) => xlat::frag::fragment_v4(pkt, mtu, out, &mut emit),
        _ => Err(DropReason::BadVersion),
    };
    if let Err(r) = r {
        stats.count_drop(r);
    }
}

/// Builds a translator-originated ICMP error quoting `orig` into `out`
/// (xlat::icmp_gen): ICMPv6 from `prefix || gateway-v4` (or
/// icmp-source-v6), ICMPv4 from gateway-v4.
pub fn build_icmp(
    orig: &[u8],
    error: IcmpError,
    shared: &Shared,
    out: &mut [u8],
) -> Result<usize, DropReason> {
    let cap = usize::from(shared.tun_mtu).min(out.len());
    let out = &mut out[..cap];
    match orig.first().map(|b| b >> 4) {
        Some(6) => xlat::icmp_gen::icmpv6_error(orig, error, shared.icmp_src_v6, out),
        Some(4) => xlat::icmp_gen::icmpv4_error(orig, error, shared.icmp_src_v4, out),
        _ => Err(DropReason::BadVersion),
    }
}
