//! The bridge between the daemon and the RFC 6146 engine of `nat64-core`
//! ([`nat64_core::state`]): builds it from [`Settings`], hands a
//! [`Processor`] to each worker, and applies reloads.

use crate::config::{FilteringMode, NaptMode, Settings, StaticBib};
use crate::dataplane::worker::Processor;
use anyhow::Context as _;
use nat64_core::state::{
    self, EngineConfig, Filtering, KernelConfig, Limits, NaptConfig, PoolConfig, SiitConfig,
    StaticBinding, SweepStats, Timeouts,
};
use nat64_core::time::Timestamp;
use nat64_core::xlat;
use std::time::Duration;

fn timeouts(s: &Settings) -> Timeouts {
    let t = &s.timeouts;
    Timeouts {
        udp: Duration::from_secs(t.udp),
        tcp_est: Duration::from_secs(t.tcp_established),
        tcp_trans: Duration::from_secs(t.tcp_transitory),
        icmp: Duration::from_secs(t.icmp),
        frag: Duration::from_secs(t.fragment),
    }
}

fn limits(s: &Settings) -> Limits {
    Limits {
        max_sessions: s.limits.max_sessions as usize,
        max_sessions_per_client: s.limits.max_sessions_per_client as usize,
        client_prefix_len: s.limits.client_prefix_len,
        site_prefix_len: s.limits.site_prefix_len,
        max_sessions_per_site: s.limits.max_sessions_per_site as usize,
        max_leases_per_site: s.limits.max_leases_per_site as usize,
    }
}

fn static_binding(b: &StaticBib) -> StaticBinding {
    StaticBinding {
        proto: b.proto,
        v6: b.v6,
        v4: (*b.v4.ip(), b.v4.port()),
    }
}

/// The daemon-mode NAPT pool of these settings (None in the other modes).
pub fn pool_config(s: &Settings) -> Option<PoolConfig> {
    (s.napt == NaptMode::Daemon).then(|| PoolConfig {
        prefixes: s.pool.iter().map(|n| (n.addr, n.len)).collect(),
        tcp_ports: s.tcp_ports,
        udp_ports: s.udp_ports,
        icmp_ids: s.icmp_ids,
        port_block_size: s.port_block_size,
        deterministic: s.deterministic,
    })
}

/// The engine configuration for these settings.
pub fn engine_config(s: &Settings, xlat: xlat::Config) -> EngineConfig {
    let napt = match s.napt {
        NaptMode::Daemon => {
            NaptConfig::Daemon(pool_config(s).expect("daemon mode has a pool configuration"))
        }
        NaptMode::Kernel => {
            let ip = s.inner_pool.unwrap_or(crate::config::V4Net {
                addr: std::net::Ipv4Addr::new(100, 64, 0, 0),
                len: 16,
            });
            NaptConfig::Kernel(KernelConfig {
                inner_pool: (ip.addr, ip.len),
                maps: s.maps.clone(),
            })
        }
        NaptMode::None => NaptConfig::Siit(SiitConfig {
            eam: s.eam.clone(),
            dynamic_pool: s.inner_pool.map(|n| (n.addr, n.len)),
            own_v4: Some(s.gateway_v4),
            own_v6: Some(s.icmp_source_v6),
            rfc6791: s.rfc6791.clone(),
            clat: false,
        }),
        // RFC 6877: SIIT with one explicit mapping, clat-v4 = clat-v6, and
        // the PLAT's prefix for everything else.
        NaptMode::Clat => NaptConfig::Siit(SiitConfig {
            eam: s.eam.clone(),
            dynamic_pool: None,
            own_v4: None,
            own_v6: None,
            rfc6791: s.rfc6791.clone(),
            clat: true,
        }),
    };
    EngineConfig {
        prefix: s.prefix,
        wkp_strict: s.wkp_strict,
        napt,
        filtering: match s.filtering {
            FilteringMode::EndpointIndependent => Filtering::EndpointIndependent,
            FilteringMode::AddressDependent => Filtering::AddressDependent,
        },
        timeouts: timeouts(s),
        limits: limits(s),
        xlat,
        static_bib: s.static_bib.iter().map(static_binding).collect(),
        gateway_v4: Some(s.gateway_v4),
        // Sessions get owner queues when placement is on (ADR 0005).
        flow_queues: if s.tun.place_flows {
            crate::dataplane::tun::queue_count(&s.tun).min(usize::from(u8::MAX)) as u8
        } else {
            1
        },
    }
}

/// Static BIB entries by origin: the config file's `[[static]]` (SIGHUP
/// reconciles them with the file) and those added over the control socket
/// (`nat64 binding add`; they last until `binding del` or exit, SIGHUP
/// leaves them alone).
#[derive(Debug, Default)]
struct Statics {
    file: Vec<StaticBib>,
    runtime: Vec<StaticBib>,
}

#[derive(Clone)]
pub struct Engine {
    inner: state::Engine,
    statics: std::sync::Arc<std::sync::Mutex<Statics>>,
}

impl Engine {
    pub fn new(s: &Settings, xlat: xlat::Config) -> anyhow::Result<Engine> {
        let inner = state::Engine::new(engine_config(s, xlat))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("the configuration was refused by the NAT64 engine")?;
        Ok(Engine {
            inner,
            statics: std::sync::Arc::new(std::sync::Mutex::new(Statics {
                file: s.static_bib.clone(),
                runtime: Vec::new(),
            })),
        })
    }

    pub fn core(&self) -> &state::Engine {
        &self.inner
    }

    pub fn worker(&self) -> Worker {
        Worker {
            inner: self.inner.worker(),
        }
    }

    /// Expires sessions and bindings (the reaper).
    pub fn sweep(&self, now: Timestamp) -> SweepStats {
        self.inner.sweep(now)
    }

    /// Table sizes for the stats dump (`key=value` pairs).
    pub fn counts_line(&self) -> String {
        let c = self.inner.counts();
        format!(
            "bindings_tcp={} bindings_udp={} bindings_icmp={} static_bindings={} sessions_tcp={} \
             sessions_udp={} sessions_icmp={} kernel_leases={} kernel_leases_displaced={} \
             pool_ports_in_use={} \
             pool_exhausted={} session_limit_hits={} client_session_limit_hits={} \
             site_limit_hits={} fragments_cached={} held_syns={}",
            c.bindings.tcp,
            c.bindings.udp,
            c.bindings.icmp,
            c.static_bindings,
            c.sessions.tcp,
            c.sessions.udp,
            c.sessions.icmp,
            c.kernel_leases,
            c.kernel_leases_displaced,
            c.pool_ports_in_use,
            c.pool_exhausted,
            c.session_limit_hits,
            c.client_session_limit_hits,
            c.site_limit_hits,
            c.fragments_cached,
            c.held_syns
        )
    }

    /// Applies what can change at run time: timeouts, limits, static BIB
    /// entries (removed ones go, new ones come).
    pub fn reload(&self, s: &Settings) -> anyhow::Result<()> {
        self.inner.set_timeouts(timeouts(s));
        self.inner.set_limits(limits(s));
        if self.inner.is_stateless() {
            // `none` mode: the merged [[map]] + map-file table, swapped whole.
            self.inner.set_eam(s.eam.clone());
        }
        let mut all = self.statics.lock().unwrap_or_else(|p| p.into_inner());
        // An entry the file now lists that was added at run time becomes a
        // file entry (it is already in the engine).
        let adopted: Vec<StaticBib> = all
            .runtime
            .iter()
            .filter(|r| s.static_bib.contains(r))
            .copied()
            .collect();
        all.runtime.retain(|r| !s.static_bib.contains(r));
        for a in adopted {
            if !all.file.contains(&a) {
                all.file.push(a);
            }
        }
        let cur = &mut all.file;
        let mut errors = Vec::new();
        for old in cur.iter().filter(|o| !s.static_bib.contains(o)) {
            if let Err(e) = self
                .inner
                .remove_static(old.proto, (*old.v4.ip(), old.v4.port()))
            {
                errors.push(e.to_string());
            }
        }
        let mut kept: Vec<StaticBib> = cur
            .iter()
            .filter(|o| s.static_bib.contains(o))
            .copied()
            .collect();
        for new in s.static_bib.iter().filter(|n| !cur.contains(n)) {
            match self.inner.add_static(static_binding(new)) {
                Ok(()) => kept.push(*new),
                Err(e) => errors.push(e.to_string()),
            }
        }
        *cur = kept;
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("static entries: {}", errors.join("; "))
        }
    }

    /// `nat64 binding add`: a static BIB entry at run time.
    pub fn add_static_runtime(&self, b: StaticBib) -> anyhow::Result<()> {
        let mut all = self.statics.lock().unwrap_or_else(|p| p.into_inner());
        self.inner
            .add_static(static_binding(&b))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        all.runtime.push(b);
        Ok(())
    }

    /// `nat64 binding del`: removes a static BIB entry, added at run time or
    /// from the file (a file entry comes back at the next SIGHUP if the file
    /// still lists it: the file is the truth on reload).
    pub fn remove_static_runtime(
        &self,
        proto: nat64_core::xlat::L4Proto,
        v4: std::net::SocketAddrV4,
    ) -> anyhow::Result<()> {
        let mut all = self.statics.lock().unwrap_or_else(|p| p.into_inner());
        self.inner
            .remove_static(proto, (*v4.ip(), v4.port()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        all.runtime.retain(|b| !(b.proto == proto && b.v4 == v4));
        all.file.retain(|b| !(b.proto == proto && b.v4 == v4));
        Ok(())
    }

    /// Kernel mode: dynamic 1:1 leases to persist.
    pub fn kernel_leases(&self) -> Vec<(std::net::Ipv6Addr, std::net::Ipv4Addr)> {
        self.inner.kernel_leases()
    }

    pub fn restore_kernel_leases(&self, v: &[(std::net::Ipv6Addr, std::net::Ipv4Addr)]) -> usize {
        self.inner.restore_kernel_leases(v)
    }
}

pub struct Worker {
    inner: state::Worker,
}

impl Processor for Worker {
    #[inline]
    fn process(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        now: Timestamp,
        off: nat64_core::xlat::Offload,
    ) -> state::Processed {
        self.inner.process_offload(buf, start, len, now, off)
    }
}
