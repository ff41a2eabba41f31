//! `BPF_PROG_TEST_RUN` on the loaded program: runs it once on a frame given
//! from user space and returns the verdict and the frame as the program left
//! it. aya does not wrap this command; the raw syscall is small.

use crate::FastPathError;
use std::os::fd::RawFd;

/// `enum bpf_cmd` value of `BPF_PROG_TEST_RUN`.
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `test` member of `union bpf_attr` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct __sk_buff` (include/uapi/linux/bpf.h), the context a test run
/// may preset. The kernel accepts only `mark`, `priority`,
/// `ingress_ifindex`, `ifindex`, `cb`, `tstamp`, `wire_len`, `gso_segs`,
/// `gso_size` and `hwtstamp` non-zero.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SkBuffCtx {
    pub len: u32,
    pub pkt_type: u32,
    pub mark: u32,
    pub queue_mapping: u32,
    pub protocol: u32,
    pub vlan_present: u32,
    pub vlan_tci: u32,
    pub vlan_proto: u32,
    pub priority: u32,
    pub ingress_ifindex: u32,
    pub ifindex: u32,
    pub tc_index: u32,
    pub cb: [u32; 5],
    pub hash: u32,
    pub tc_classid: u32,
    pub data: u32,
    pub data_end: u32,
    pub napi_id: u32,
    pub family: u32,
    pub remote_ip4: u32,
    pub local_ip4: u32,
    pub remote_ip6: [u32; 4],
    pub local_ip6: [u32; 4],
    pub remote_port: u32,
    pub local_port: u32,
    pub data_meta: u32,
    pub flow_keys: u64,
    pub tstamp: u64,
    pub wire_len: u32,
    pub gso_segs: u32,
    pub sk: u64,
    pub gso_size: u32,
    pub tstamp_type: u8,
    pub _pad: [u8; 3],
    pub hwtstamp: u64,
}

/// What one test run returned.
#[derive(Debug, Clone)]
pub struct TestRunOutput {
    /// The program's return value (`TC_ACT_OK` = 0, `TC_ACT_SHOT` = 2,
    /// `TC_ACT_REDIRECT` = 7).
    pub retval: u32,
    /// The frame after the program ran (from the Ethernet header).
    pub data: Vec<u8>,
}

/// Runs program `fd` once on `frame`, with `ctx` as its `__sk_buff` when
/// given.
pub(crate) fn run(
    fd: RawFd,
    frame: &[u8],
    ctx: Option<&SkBuffCtx>,
) -> Result<TestRunOutput, FastPathError> {
    // IPv4 -> IPv6 grows the frame by 20 bytes; leave plenty.
    let mut out = vec![0u8; frame.len() + 256];
    let mut ctx_in = ctx.copied();
    let mut attr = TestAttr {
        prog_fd: fd as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..TestAttr::default()
    };
    if let Some(c) = ctx_in.as_mut() {
        attr.ctx_size_in = size_of::<SkBuffCtx>() as u32;
        attr.ctx_in = c as *mut SkBuffCtx as u64;
    }
    // SAFETY: `attr` is a valid `bpf_attr` prefix for BPF_PROG_TEST_RUN,
    // whose size we pass; the kernel reads `data_size_in` bytes from
    // `frame`, writes at most `data_size_out` bytes into `out`, reads
    // `ctx_size_in` bytes of `ctx_in`, and all three outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestAttr,
            size_of::<TestAttr>() as libc::c_uint,
        )
    };
    if rc != 0 {
        return Err(FastPathError::TestRun(std::io::Error::last_os_error()));
    }
    out.truncate(attr.data_size_out as usize);
    Ok(TestRunOutput {
        retval: attr.retval,
        data: out,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn sk_buff_layout_is_the_uapi_one() {
        assert_eq!(offset_of!(SkBuffCtx, ifindex), 40);
        assert_eq!(offset_of!(SkBuffCtx, cb), 48);
        assert_eq!(offset_of!(SkBuffCtx, data_meta), 140);
        assert_eq!(offset_of!(SkBuffCtx, flow_keys), 144);
        assert_eq!(offset_of!(SkBuffCtx, tstamp), 152);
        assert_eq!(offset_of!(SkBuffCtx, wire_len), 160);
        assert_eq!(offset_of!(SkBuffCtx, gso_segs), 164);
        assert_eq!(offset_of!(SkBuffCtx, sk), 168);
        assert_eq!(offset_of!(SkBuffCtx, gso_size), 176);
        assert_eq!(offset_of!(SkBuffCtx, hwtstamp), 184);
        assert_eq!(size_of::<SkBuffCtx>(), 192);
        assert_eq!(size_of::<TestAttr>(), 80);
    }
}
