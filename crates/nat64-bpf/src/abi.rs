//! The program's map layouts, mirrored from `bpf/nat64_xlat.h`
//! (`#[repr(C)]`; the layout tests below pin sizes and offsets). Fields are
//! in network byte order, as on the wire: [`Flow6Key::new`] and friends
//! convert from host types.

use core::net::{Ipv4Addr, Ipv6Addr};

pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;

/// `struct nat64_flow6`: an IPv6 5-tuple.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flow6Key {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Network byte order (as stored in the packet).
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub proto: u8,
    pub pad: [u8; 3],
}

/// `struct nat64_flow4`: an IPv4 5-tuple.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flow4Key {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub proto: u8,
    pub pad: [u8; 3],
}

/// `struct nat64_counters`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawCounters {
    pub last_seen_ns: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// `struct nat64_route`: the program's cache of a flow's route (written
/// by the program only; installed as zeroes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawRoute {
    pub at_ns: u64,
    pub nh: [u8; 16],
    pub ifindex: u32,
    pub fits: u16,
    pub tos: u8,
    pub family: u8,
}

/// `struct nat64_to4`: value of `flows_6to4`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct To4Value {
    pub out: Flow4Key,
    pub flags: u32,
    pub pad: u32,
    pub c: RawCounters,
    pub route: RawRoute,
}

/// `struct nat64_to6`: value of `flows_4to6`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct To6Value {
    pub out: Flow6Key,
    pub flags: u32,
    pub pad: u32,
    pub c: RawCounters,
    pub route: RawRoute,
}

/// `struct nat64_config`: the `config` array's one entry.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawConfig {
    pub flags: u32,
    pub fib_ifindex: u32,
    pub lowest_ipv6_mtu: u16,
    pub mtu4: u16,
    pub mtu6: u16,
    pub pad: u16,
    pub stack_ifindex: u32,
}

pub(crate) const CFG_STACK_FORWARD: u32 = 0x1;
pub(crate) const CFG_NO_COPY_TOS: u32 = 0x2;
pub(crate) const CFG_NO_DECREMENT_TTL: u32 = 0x4;
pub(crate) const CFG_DISABLED: u32 = 0x8;

// SAFETY: plain `#[repr(C)]` structs of integers and byte arrays, with every
// padding byte an explicit field (no implicit padding: the layout tests
// check the sizes add up), so any bit pattern is valid and all bytes are
// initialised.
unsafe impl aya::Pod for Flow6Key {}
// SAFETY: as above.
unsafe impl aya::Pod for Flow4Key {}
// SAFETY: as above.
unsafe impl aya::Pod for RawRoute {}
// SAFETY: as above.
unsafe impl aya::Pod for To4Value {}
// SAFETY: as above.
unsafe impl aya::Pod for To6Value {}
// SAFETY: as above.
unsafe impl aya::Pod for RawConfig {}

/// A map key or value as the kernel stores it: its bytes in memory order.
pub(crate) fn bytes_of<T: aya::Pod>(v: &T) -> &[u8] {
    // SAFETY: `Pod` types here are `#[repr(C)]` with every padding byte an
    // explicit field (see above), so all `size_of::<T>()` bytes behind `v`
    // are initialised; the slice borrows `v`.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
}

impl Flow6Key {
    pub fn new(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, proto: u8) -> Self {
        Flow6Key {
            src: src.octets(),
            dst: dst.octets(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            proto,
            pad: [0; 3],
        }
    }
}

impl Flow4Key {
    pub fn new(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, proto: u8) -> Self {
        Flow4Key {
            src: src.octets(),
            dst: dst.octets(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            proto,
            pad: [0; 3],
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Sizes and offsets as clang lays out `bpf/nat64_xlat.h` (no implicit
    /// padding anywhere: each size is the sum of its fields).
    #[test]
    fn layouts_match_the_c_header() {
        assert_eq!(size_of::<Flow6Key>(), 40);
        assert_eq!(offset_of!(Flow6Key, dst), 16);
        assert_eq!(offset_of!(Flow6Key, sport), 32);
        assert_eq!(offset_of!(Flow6Key, dport), 34);
        assert_eq!(offset_of!(Flow6Key, proto), 36);

        assert_eq!(size_of::<Flow4Key>(), 16);
        assert_eq!(offset_of!(Flow4Key, dst), 4);
        assert_eq!(offset_of!(Flow4Key, sport), 8);
        assert_eq!(offset_of!(Flow4Key, dport), 10);
        assert_eq!(offset_of!(Flow4Key, proto), 12);

        assert_eq!(size_of::<RawCounters>(), 24);

        assert_eq!(size_of::<RawRoute>(), 32);
        assert_eq!(offset_of!(RawRoute, nh), 8);
        assert_eq!(offset_of!(RawRoute, ifindex), 24);
        assert_eq!(offset_of!(RawRoute, fits), 28);
        assert_eq!(offset_of!(RawRoute, tos), 30);
        assert_eq!(offset_of!(RawRoute, family), 31);

        assert_eq!(size_of::<To4Value>(), 80);
        assert_eq!(offset_of!(To4Value, flags), 16);
        assert_eq!(offset_of!(To4Value, c), 24);
        assert_eq!(offset_of!(To4Value, route), 48);
        assert_eq!(core::mem::align_of::<To4Value>(), 8);

        assert_eq!(size_of::<To6Value>(), 104);
        assert_eq!(offset_of!(To6Value, flags), 40);
        assert_eq!(offset_of!(To6Value, c), 48);
        assert_eq!(offset_of!(To6Value, route), 72);

        assert_eq!(size_of::<RawConfig>(), 20);
        assert_eq!(offset_of!(RawConfig, stack_ifindex), 16);
        assert_eq!(offset_of!(RawConfig, fib_ifindex), 4);
        assert_eq!(offset_of!(RawConfig, lowest_ipv6_mtu), 8);
        assert_eq!(offset_of!(RawConfig, mtu4), 10);
        assert_eq!(offset_of!(RawConfig, mtu6), 12);
    }

    #[test]
    fn keys_are_in_network_byte_order() {
        let k = Flow4Key::new(
            Ipv4Addr::new(203, 0, 113, 5),
            2000,
            Ipv4Addr::new(198, 51, 100, 2),
            80,
            IPPROTO_TCP,
        );
        assert_eq!(k.src, [203, 0, 113, 5]);
        assert_eq!(k.sport, [0x07, 0xd0]);
        assert_eq!(k.dport, [0, 80]);
    }
}
