//! RFC 7915 §5: IPv6 → IPv4.
use super::{Config, Mapper};
use crate::verdict::{DropReason, Verdict};

/// Translates the IPv6 packet at `buf[start..start + len]` to IPv4 in place.
pub fn six_to_four<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
) -> Verdict {
    let _ = (buf, start, len, cfg, m);
    Verdict::Drop(DropReason::Truncated)
}
