//! The TCP session state machine of RFC 6146 §3.5.2.2.
//!
//! The NAT64 does not track sequence numbers; it watches SYN, FIN and RST
//! in each direction to decide how long a session may live:
//!
//! ```text
//!  CLOSED --v6 SYN--> V6 INIT --v4 SYN--> ESTABLISHED
//!  CLOSED --v4 SYN--> V4 INIT --v6 SYN--> ESTABLISHED
//!  ESTABLISHED --v4 FIN--> V4 FIN RCV --v6 FIN--> V4 FIN + V6 FIN RCV
//!  ESTABLISHED --v6 FIN--> V6 FIN RCV --v4 FIN--> V4 FIN + V6 FIN RCV
//!  ESTABLISHED --RST--> TRANS --any non-RST--> ESTABLISHED
//! ```
//!
//! The transition function is pure: [`step`] takes the state, the direction
//! and the flags and says what the new state is and what happens to the
//! session's lifetime. The engine applies it with a compare-and-swap on the
//! session's state byte, so the fast path takes no lock.

/// TCP flag bits (the 13th byte of the TCP header).
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;

/// RFC 6146 §3.5.2 session states. `Closed` is never stored: a session in
/// CLOSED does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    Closed = 0,
    V4Init = 1,
    V6Init = 2,
    Established = 3,
    V4FinRcv = 4,
    V6FinRcv = 5,
    V4FinV6FinRcv = 6,
    Trans = 7,
}

impl TcpState {
    pub(crate) const fn from_u8(v: u8) -> TcpState {
        match v {
            1 => TcpState::V4Init,
            2 => TcpState::V6Init,
            3 => TcpState::Established,
            4 => TcpState::V4FinRcv,
            5 => TcpState::V6FinRcv,
            6 => TcpState::V4FinV6FinRcv,
            7 => TcpState::Trans,
            _ => TcpState::Closed,
        }
    }

    /// Name as RFC 6146 writes it (used by `nat64 show sessions`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::V4Init => "V4 INIT",
            TcpState::V6Init => "V6 INIT",
            TcpState::Established => "ESTABLISHED",
            TcpState::V4FinRcv => "V4 FIN RCV",
            TcpState::V6FinRcv => "V6 FIN RCV",
            TcpState::V4FinV6FinRcv => "V4 FIN + V6 FIN RCV",
            TcpState::Trans => "TRANS",
        }
    }
}

impl core::fmt::Display for TcpState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received on the IPv6 side (travelling IPv6 → IPv4).
    V6,
    /// Received on the IPv4 side (travelling IPv4 → IPv6).
    V4,
}

/// What a packet does to the session's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Leave the lifetime as it is.
    Keep,
    /// Set it to TCP_EST from now.
    Est,
    /// Set it to TCP_TRANS from now.
    Trans,
}

/// RFC 6146 §3.5.2.2: the state after a packet with `flags` from `dir`
/// arrives in `state`, and what happens to the lifetime. `None` means the
/// packet is not allowed to create a session (CLOSED and not a SYN).
pub fn step(state: TcpState, dir: Dir, flags: u8) -> Option<(TcpState, Lifetime)> {
    use Dir::*;
    use TcpState::*;
    let syn = flags & SYN != 0;
    let fin = flags & FIN != 0;
    let rst = flags & RST != 0;
    Some(match state {
        // §3.5.2.2 CLOSED: only a SYN creates a session; it starts with
        // the transitory lifetime.
        Closed => match (dir, syn) {
            (V6, true) => (V6Init, Lifetime::Trans),
            (V4, true) => (V4Init, Lifetime::Trans),
            _ => return None,
        },
        // V4 INIT: a v6 SYN completes the simultaneous open / the answer
        // to a v4 SYN; anything else is translated, nothing changes.
        V4Init => match (dir, syn) {
            (V6, true) => (Established, Lifetime::Est),
            _ => (V4Init, Lifetime::Keep),
        },
        // V6 INIT: the v4 SYN(+ACK) establishes; a retransmitted v6 SYN
        // refreshes the transitory lifetime.
        V6Init => match (dir, syn) {
            (V4, true) => (Established, Lifetime::Est),
            (V6, true) => (V6Init, Lifetime::Trans),
            _ => (V6Init, Lifetime::Keep),
        },
        // ESTABLISHED: FIN from one side, RST from either, else refresh.
        Established => {
            if rst {
                (Trans, Lifetime::Trans)
            } else if fin {
                match dir {
                    V4 => (V4FinRcv, Lifetime::Est),
                    V6 => (V6FinRcv, Lifetime::Est),
                }
            } else {
                (Established, Lifetime::Est)
            }
        }
        // V4 FIN RCV: the v6 FIN closes both halves.
        V4FinRcv => match (dir, fin) {
            (V6, true) => (V4FinV6FinRcv, Lifetime::Trans),
            _ => (V4FinRcv, Lifetime::Est),
        },
        // V6 FIN RCV: the v4 FIN closes both halves.
        V6FinRcv => match (dir, fin) {
            (V4, true) => (V4FinV6FinRcv, Lifetime::Trans),
            _ => (V6FinRcv, Lifetime::Est),
        },
        // V4 FIN + V6 FIN RCV: packets pass, the lifetime runs out.
        V4FinV6FinRcv => (V4FinV6FinRcv, Lifetime::Keep),
        // TRANS: a RST leaves it; anything else revives the session.
        Trans => {
            if rst {
                (Trans, Lifetime::Keep)
            } else {
                (Established, Lifetime::Est)
            }
        }
    })
}

/// RFC 6146 §3.5.2.2: what happens when a session's lifetime runs out in
/// `state`. In ESTABLISHED and the single-FIN states the NAT64 may probe the
/// IPv6 host; we do not probe but move to TRANS (lifetime TCP_TRANS), so an
/// idle but alive connection gets one more chance to show a packet. In the
/// other states the session is deleted (`None`).
pub fn on_expiry(state: TcpState) -> Option<TcpState> {
    match state {
        TcpState::Established | TcpState::V4FinRcv | TcpState::V6FinRcv => Some(TcpState::Trans),
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use Dir::*;
    use TcpState::*;

    #[test]
    fn rfc6146_3_5_2_2_closed_only_syn_creates() {
        assert_eq!(step(Closed, V6, SYN), Some((V6Init, Lifetime::Trans)));
        assert_eq!(step(Closed, V4, SYN), Some((V4Init, Lifetime::Trans)));
        assert_eq!(step(Closed, V6, 0x10), None);
        assert_eq!(step(Closed, V4, FIN), None);
    }

    #[test]
    fn rfc6146_3_5_2_2_v6_syn_v4_syn_moves_to_established() {
        assert_eq!(
            step(V6Init, V4, SYN | 0x10),
            Some((Established, Lifetime::Est))
        );
        assert_eq!(step(V4Init, V6, SYN), Some((Established, Lifetime::Est)));
        assert_eq!(step(V6Init, V6, SYN), Some((V6Init, Lifetime::Trans)));
        assert_eq!(step(V6Init, V6, 0x10), Some((V6Init, Lifetime::Keep)));
    }

    #[test]
    fn rfc6146_3_5_2_2_v6_fin_v4_fin_moves_to_both_fin() {
        let (s, _) = step(Established, V6, FIN | 0x10).unwrap();
        assert_eq!(s, V6FinRcv);
        assert_eq!(step(s, V6, 0x10), Some((V6FinRcv, Lifetime::Est)));
        assert_eq!(step(s, V4, FIN), Some((V4FinV6FinRcv, Lifetime::Trans)));
        let (s, _) = step(Established, V4, FIN).unwrap();
        assert_eq!(s, V4FinRcv);
        assert_eq!(step(s, V6, FIN), Some((V4FinV6FinRcv, Lifetime::Trans)));
        assert_eq!(
            step(V4FinV6FinRcv, V4, 0x10),
            Some((V4FinV6FinRcv, Lifetime::Keep))
        );
    }

    #[test]
    fn rfc6146_3_5_2_2_rst_moves_to_trans_and_back() {
        assert_eq!(step(Established, V4, RST), Some((Trans, Lifetime::Trans)));
        assert_eq!(step(Established, V6, RST), Some((Trans, Lifetime::Trans)));
        assert_eq!(step(Trans, V6, RST), Some((Trans, Lifetime::Keep)));
        assert_eq!(step(Trans, V4, 0x10), Some((Established, Lifetime::Est)));
    }

    #[test]
    fn rfc6146_3_5_2_2_expiry() {
        assert_eq!(on_expiry(Established), Some(Trans));
        assert_eq!(on_expiry(V6FinRcv), Some(Trans));
        assert_eq!(on_expiry(Trans), None);
        assert_eq!(on_expiry(V6Init), None);
        assert_eq!(on_expiry(V4FinV6FinRcv), None);
    }

    #[test]
    fn state_byte_round_trip() {
        for v in 0..8u8 {
            assert_eq!(TcpState::from_u8(v) as u8, v);
        }
    }
}
