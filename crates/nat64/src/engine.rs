//! The bridge between the daemon and the RFC 6146 engine of `nat64-core`:
//! builds the engine from [`Settings`], hands a [`Processor`] to each worker,
//! and applies reloads.
//!
//! TEMPORARY: until `nat64_core::state` lands this runs the stateless
//! RFC 6052 mapping so the data plane can be exercised.

use crate::config::Settings;
use crate::dataplane::worker::Processor;
use nat64_core::time::Timestamp;
use nat64_core::verdict::Verdict;
use nat64_core::xlat::{self, StatelessMapper};

#[derive(Clone)]
pub struct Engine {
    mapper: StatelessMapper,
    xlat: xlat::Config,
}

impl Engine {
    pub fn new(s: &Settings, xlat: xlat::Config) -> anyhow::Result<Engine> {
        Ok(Engine {
            mapper: StatelessMapper {
                prefix: s.prefix,
                wkp_strict: s.wkp_strict,
            },
            xlat,
        })
    }

    pub fn worker(&self) -> Worker {
        Worker {
            mapper: self.mapper,
            xlat: self.xlat,
        }
    }

    /// Expires sessions/bindings; returns a one-line summary for logs.
    pub fn sweep(&self, _now: Timestamp) -> String {
        String::new()
    }

    /// Table sizes for the stats dump.
    pub fn counts_line(&self) -> String {
        String::new()
    }

    /// Applies what can change at run time (timeouts, limits, static BIB).
    pub fn reload(&self, _s: &Settings) -> anyhow::Result<()> {
        Ok(())
    }

    /// Kernel mode: dynamic 1:1 leases to persist.
    pub fn kernel_leases(&self) -> Vec<(std::net::Ipv6Addr, std::net::Ipv4Addr)> {
        Vec::new()
    }
}

pub struct Worker {
    mapper: StatelessMapper,
    xlat: xlat::Config,
}

impl Processor for Worker {
    #[inline]
    fn process(&mut self, buf: &mut [u8], start: usize, len: usize, _now: Timestamp) -> Verdict {
        xlat::translate(buf, start, len, &self.xlat, &mut self.mapper)
    }
}
