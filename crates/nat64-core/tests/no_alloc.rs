//! ADR 0001 ("No heap allocation per packet") and `xlat` ("Nothing here
//! allocates"). A counting global allocator proves that translating a
//! packet each way allocates nothing.
//!
//! Only allocations made on the current thread while "armed" are counted, so
//! the test harness's own threads do not interfere.

mod common;

use common::*;
use nat64_core::xlat::{self, Config, StatelessMapper};
use nat64_core::Verdict;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialised thread-locals (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, COUNT.with(|c| c.get()))
}

fn translate_in_place(
    pkt: &[u8],
    f: fn(&mut [u8], usize, usize, &Config, &mut StatelessMapper) -> Verdict,
) -> (Verdict, usize) {
    let start = xlat::HEADROOM;
    let mut buf = vec![0u8; start + pkt.len() + TAILROOM];
    buf[start..start + pkt.len()].copy_from_slice(pkt);
    let cfg = Config::default();
    let mut m = stateless();
    allocations(|| f(&mut buf, start, pkt.len(), &cfg, &mut m))
}

fn six_to_four(b: &mut [u8], s: usize, l: usize, c: &Config, m: &mut StatelessMapper) -> Verdict {
    xlat::six_to_four(b, s, l, c, m)
}
fn four_to_six(b: &mut [u8], s: usize, l: usize, c: &Config, m: &mut StatelessMapper) -> Verdict {
    xlat::four_to_six(b, s, l, c, m)
}

#[test]
fn translating_tcp_each_way_allocates_nothing() {
    let p6 = tcp6_pkt(&V6::out(), 40000, 443, &payload(1000));
    let (v, n) = translate_in_place(&p6, six_to_four);
    assert!(matches!(v, Verdict::Forward { .. }), "6→4 verdict {v:?}");
    assert_eq!(n, 0, "IPv6 → IPv4 TCP allocated {n} times");

    let p4 = tcp4_pkt(&V4::inb(), 443, 40000, &payload(1000));
    let (v, n) = translate_in_place(&p4, four_to_six);
    assert!(matches!(v, Verdict::Forward { .. }), "4→6 verdict {v:?}");
    assert_eq!(n, 0, "IPv4 → IPv6 TCP allocated {n} times");
}

#[test]
fn translating_udp_echo_and_icmp_errors_allocates_nothing() {
    let inner6 = udp6_pkt(&V6::out().src(v6_server()).dst(v6_client()), 53, 4000, b"x");
    let inner4 = udp4_pkt(&V4::inb().src(V4_CLIENT).dst(V4_SERVER), 4000, 53, b"x");
    let six = [
        udp6_pkt(&V6::out(), 1, 2, &payload(100)),
        icmp6_pkt(&V6::out(), 128, 0, echo_rest(1, 1), &payload(56)),
        icmp6_pkt(&V6::out(), 1, 4, [0; 4], &inner6),
    ];
    for p in &six {
        let (v, n) = translate_in_place(p, six_to_four);
        assert!(matches!(v, Verdict::Forward { .. }), "6→4 verdict {v:?}");
        assert_eq!(n, 0, "IPv6 → IPv4 allocated {n} times");
    }
    let four = [
        udp4_pkt(&V4::inb(), 1, 2, &payload(100)),
        icmp4_pkt(&V4::inb(), 8, 0, echo_rest(1, 1), &payload(56)),
        icmp4_pkt(&V4::inb().src(V4_ROUTER), 11, 0, [0; 4], &inner4),
    ];
    for p in &four {
        let (v, n) = translate_in_place(p, four_to_six);
        assert!(matches!(v, Verdict::Forward { .. }), "4→6 verdict {v:?}");
        assert_eq!(n, 0, "IPv4 → IPv6 allocated {n} times");
    }
}
