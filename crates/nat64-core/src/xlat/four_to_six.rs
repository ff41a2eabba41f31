//! RFC 7915 §4: IPv4 → IPv6.
use super::{Config, Mapper};
use crate::verdict::{DropReason, Verdict};

/// Translates the IPv4 packet at `buf[start..start + len]` to IPv6 in place;
/// `start` must be at least [`super::HEADROOM`].
pub fn four_to_six<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
) -> Verdict {
    let _ = (buf, start, len, cfg, m);
    Verdict::Drop(DropReason::Truncated)
}
