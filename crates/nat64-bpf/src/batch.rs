//! Reading a whole hash map in a few system calls: `BPF_MAP_LOOKUP_BATCH`
//! (Linux 5.6), which aya does not wrap. The fast-path thread reads every
//! flow's counters once a second; one lookup per entry would be two
//! system calls per flow per second (half a million a second at 262,144
//! flows), a batch is one per `CHUNK` entries.

use aya::Pod;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `BPF_MAP_LOOKUP_BATCH` (`enum bpf_cmd`).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Entries asked for per call (the kernel may return fewer).
const CHUNK: u32 = 4096;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Calls `each` with every entry of the hash map `map` (keys `K`, values
/// `V`, as the map was created with), a batch of `CHUNK` at a time: no
/// copy of the whole table is held. Entries added or removed meanwhile may
/// or may not show; none shows twice. `Err` with `EINVAL` or
/// `ENOTSUPP`/`EOPNOTSUPP`: the kernel has no batch operations (the caller
/// reads entry by entry instead); after another error `each` may have seen
/// part of the map.
pub(crate) fn lookup_all<K: Pod, V: Pod>(
    map: BorrowedFd<'_>,
    mut each: impl FnMut(&K, &V),
) -> io::Result<()> {
    let mut keys: Vec<K> = Vec::with_capacity(CHUNK as usize);
    let mut values: Vec<V> = Vec::with_capacity(CHUNK as usize);
    // The position token: a bucket index for hash maps (4 bytes); 8 for
    // room.
    let (mut token_in, mut token_out) = (0u64, 0u64);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &token_in as *const u64 as u64
            },
            out_batch: &mut token_out as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is the `batch` member of `bpf_attr`, whose size we
        // pass. The kernel writes at most `count` (CHUNK) keys and values
        // into `keys` and `values`, which have that capacity for `K` and
        // `V` (the map's key and value sizes: the caller's contract), a
        // token of at most 8 bytes into `token_out`, reads one from
        // `token_in`, and all of them outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>() as libc::c_uint,
            )
        };
        // ENOENT: the end of the map, with the last entries in this batch.
        let done = if rc == 0 {
            false
        } else {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            true
        };
        let n = (attr.count as usize).min(CHUNK as usize);
        // SAFETY: the kernel initialised the first `count` keys and values
        // (both `Pod`: any bytes are a valid value).
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        for (k, v) in keys.iter().zip(&values) {
            each(k, v);
        }
        keys.clear();
        values.clear();
        if done {
            return Ok(());
        }
        token_in = token_out;
        first = false;
    }
}

/// True for the errors of a kernel without batch operations on this map.
pub(crate) fn unsupported(e: &io::Error) -> bool {
    // ENOTSUPP (524) is the kernel-internal code some versions leak.
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(524)
    )
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn batch_attr_is_the_uapi_layout() {
        assert_eq!(size_of::<BatchAttr>(), 56);
        assert_eq!(core::mem::offset_of!(BatchAttr, count), 32);
        assert_eq!(core::mem::offset_of!(BatchAttr, map_fd), 36);
        assert_eq!(core::mem::offset_of!(BatchAttr, elem_flags), 40);
    }
}
