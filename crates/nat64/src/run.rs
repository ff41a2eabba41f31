//! `nat64 run`: bring the TUN up, plumb routes/nft, start workers and the
//! reaper, serve signals, and undo everything on exit.

use crate::config::{self, Loaded, NaptMode, Settings, TunMode};
use crate::control::{self, Telemetry};
use crate::dataplane::{tun, worker};
use crate::engine::Engine;
use crate::maplog::MapLog;
use crate::plumbing::{self, Installed};
use crate::stats::{ReaperStats, Stats, Totals};
use anyhow::Context as _;
use nat64_core::xlat;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// The xlat knobs from the settings and the TUN's MTU.
pub fn xlat_config(s: &Settings, tun_mtu: u16) -> xlat::Config {
    xlat::Config {
        ipv4_mtu: s.ipv4_mtu.unwrap_or(tun_mtu),
        ipv6_link_mtu: tun_mtu,
        lowest_ipv6_mtu: s.ipv6_mtu,
        udp_zero_checksum: s.udp_zero_checksum,
        copy_tos: true,
        decrement_ttl: true,
    }
}

fn stats_line(engine: &Engine, all: &[Arc<Stats>]) -> String {
    let t = Totals::sum(all);
    let c = engine.counts_line();
    if c.is_empty() {
        t.render()
    } else {
        format!("{} {c}", t.render())
    }
}

/// The fast path's counters for the stats line (" k=v ..."), if it runs.
fn fp_stats(c: &Option<Arc<crate::fastpath::Counters>>) -> String {
    c.as_ref()
        .map(|c| format!(" {}", c.render()))
        .unwrap_or_default()
}

/// Installs the routes (and nft table) the settings ask for.
fn plumb(s: &Settings, tun_name: &str, inst: &mut Installed) -> anyhow::Result<()> {
    let manage_routes = s.manage_routes.unwrap_or(s.tun.mode == TunMode::Create);
    if let (true, Some(c)) = (manage_routes, &s.clat) {
        // RFC 6877: IPv4 of local applications comes in by the default
        // route, answers to the CLAT's IPv6 address by a host route; the
        // PLAT's prefix stays on the uplink.
        inst.route("-6", &format!("{}/128", c.v6), tun_name)?;
        if s.tun.mode == TunMode::Create {
            inst.address(&format!("{}/32", c.v4), tun_name)?;
        }
        inst.default_v4_route(tun_name)?;
        if let Some(up) = &c.uplink {
            inst.proxy_ndp(&c.v6.to_string(), up)?;
        }
        return Ok(());
    }
    if manage_routes {
        inst.route("-6", &s.prefix.to_string(), tun_name)?;
        match s.napt {
            NaptMode::Daemon => {
                for p in &s.pool {
                    inst.route("-4", &p.to_string(), tun_name)?;
                }
            }
            NaptMode::Kernel => {
                if let Some(ip) = s.inner_pool {
                    inst.route("-4", &ip.to_string(), tun_name)?;
                    for (_, v4) in &s.maps {
                        if !ip.contains(*v4) {
                            inst.route("-4", &format!("{v4}/32"), tun_name)?;
                        }
                    }
                }
            }
            // Stateless: the dynamic pool and the translator's own IPv6
            // address come here; which side of each EAM lives behind the
            // TUN only the operator knows (ADR 0009), so those routes are
            // theirs, as with Tayga.
            NaptMode::None | NaptMode::Clat => {
                if let Some(ip) = s.inner_pool {
                    inst.route("-4", &ip.to_string(), tun_name)?;
                }
                if !s.prefix.contains(&s.icmp_source_v6) {
                    inst.route("-6", &format!("{}/128", s.icmp_source_v6), tun_name)?;
                }
            }
        }
    }
    if manage_routes && s.tun.mode == TunMode::Create && s.tun.assign_gateway_v4 {
        inst.address(&format!("{}/32", s.gateway_v4), tun_name)?;
    }
    if s.napt == NaptMode::Kernel && s.manage_nft {
        if let Some(ip) = s.inner_pool {
            let maps: Vec<_> = s.maps.iter().map(|(_, v4)| *v4).collect();
            inst.nft_kernel(&ip.to_string(), tun_name, &maps, s.egress_v4)?;
            if s.lease_recovery {
                inst.nft_track_ipv6(&s.prefix.to_string(), tun_name)?;
            }
        }
    }
    Ok(())
}

pub fn run(loaded: Loaded, config_arg: &str, sets: &[String]) -> anyhow::Result<()> {
    let s = &loaded.settings;
    for w in &s.warnings {
        warn!("{w}");
    }
    info!("prefix {} ({})", s.prefix, loaded.prefix_origin());
    if let Some(farm) = &s.farm {
        let list = |v: &[crate::config::V4Net]| {
            v.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        info!(
            "farm instance {} of {}: owns {} of pool {}; route (announce) only these here",
            farm.instance,
            farm.instances,
            list(&s.pool),
            list(&farm.whole_pool)
        );
    }
    if let Some(d) = &s.deterministic {
        info!(
            "deterministic port blocks (RFC 7422): {} ports per client (/{}){}",
            s.port_block_size.unwrap_or(0),
            d.client_prefix_len,
            d.clients
                .map(|(a, l)| format!(", clients of {a}/{l} numbered"))
                .unwrap_or_default()
        );
    }
    if s.napt == NaptMode::Kernel && s.manage_nft {
        plumbing::check_nft_owner(&s.tun.name)?;
    }
    plumbing::ensure_forwarding(s.manage_forwarding)?;

    // Signals first, so a TERM during setup still tears down cleanly.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).context("installing signal handlers")?;

    let tun = tun::open(&s.tun)?;
    info!(
        "TUN {} {} (mtu {}, {} queue{}, offload {})",
        tun.name,
        if tun.created { "created" } else { "attached" },
        tun.mtu,
        tun.queues.len(),
        if tun.queues.len() == 1 { "" } else { "s" },
        if tun.queues.first().is_some_and(|q| q.tcp_gso()) {
            "on"
        } else {
            "off"
        }
    );
    let xcfg = xlat_config(s, tun.mtu);
    let engine = Engine::new(s, xcfg).context("starting the NAT64 engine")?;

    let mut installed = Installed::default();
    plumb(s, &tun.name, &mut installed)?;
    // PREF64 advertisements need a raw socket: opened while still root.
    let pref64 = match &s.pref64 {
        Some((ifname, interval)) => Some((crate::pref64::Sender::open(ifname)?, *interval)),
        None => None,
    };

    let shared = Arc::new(worker::Shared::new(s, tun.mtu));
    // The BPF fast path: loaded and attached while still privileged.
    let fast_path = crate::fastpath::prepare(s, &tun.name, tun.mtu);

    // Kernel-mode leases: restored before the first packet, then every
    // change is journalled durably (issue 11 #2).
    let restored_leases = match (s.napt, &s.state_file) {
        (NaptMode::Kernel | NaptMode::None, Some(path)) => {
            let leases = crate::leases::load(path)?;
            if !leases.is_empty() {
                let n = engine.restore_kernel_leases(&leases);
                info!(
                    "restored {n} of {} leases from {}",
                    leases.len(),
                    path.display()
                );
            }
            Some(path)
        }
        _ => None,
    };

    // Least privilege from here on (issue 11): CAP_NET_ADMIN only, for the
    // teardown, as `user` if one is set. Before any thread starts: a uid
    // change reaches every thread, and each thread below then drops even
    // CAP_NET_ADMIN.
    if let Some(u) = &s.user {
        prepare_for_user(s, u)?;
    }
    match crate::privilege::reduce(s.user.as_ref()) {
        Ok(()) => {}
        // Asked to switch users: running on as root would be a surprise.
        Err(e) if s.user.is_some() => return Err(e.context("dropping privileges (`user`)")),
        Err(e) => warn!("could not drop capabilities, running on with them: {e:#}"),
    }

    // Kept CAP_NET_ADMIN (for `conntrack -L`), like the main thread: started
    // after `reduce`, before the workers that report to it.
    if s.lease_recovery {
        let e = engine.core().clone();
        let r = crate::recovery::LeaseRecovery::start(s.prefix, move |v6, v4| {
            e.restore_kernel_leases(&[(v6, v4)]) == 1
        })
        .context("starting the lease-recovery thread")?;
        info!("lease recovery from conntrack on (HA pair; docs/deployment.md §3)");
        let _ = shared.recovery.set(r);
    }

    let fast_path = match fast_path {
        Some(fp) => {
            let sh = shared.clone();
            Some(
                crate::fastpath::FastPathThread::start(fp, engine.core().clone(), s, move || {
                    sh.clock.now()
                })
                .context("starting the fast-path thread")?,
            )
        }
        None => None,
    };

    let fp_counters = fast_path.as_ref().map(|f| f.counters.clone());

    let lease_journal = match restored_leases {
        Some(path) => {
            let (e1, e2) = (engine.core().clone(), engine.core().clone());
            let restored = e1.kernel_leases();
            Some(crate::leases::Journal::start(
                path,
                &restored,
                move || e1.lease_generation(),
                move || e2.kernel_leases(),
            )?)
        }
        _ => None,
    };

    let queues: Vec<Arc<tun_rs::SyncDevice>> = tun.queues.into_iter().map(Arc::new).collect();
    let all_stats: Vec<Arc<Stats>> = queues.iter().map(|_| Arc::new(Stats::default())).collect();
    let tel = Arc::new(Telemetry {
        engine: engine.clone(),
        workers: all_stats.clone(),
        reaper: Arc::new(ReaperStats::default()),
        maplog: Default::default(),
        mapping_log_enabled: s.mapping_log.is_some(),
        started: std::time::Instant::now(),
        prefix: s.prefix.to_string(),
        prefix_origin: loaded.prefix_origin(),
        pool: s.pool.clone(),
        fast_path: fp_counters.clone(),
    });
    // The mapping log starts before the first packet so no binding is missed.
    let maplog = match &s.mapping_log {
        Some(path) => {
            let epoch = std::time::SystemTime::now()
                .checked_sub(Duration::from_millis(shared.clock.now().as_millis()))
                .unwrap_or_else(std::time::SystemTime::now);
            let m = MapLog::start(path, epoch, tel.maplog.clone())?;
            engine.core().set_event_hook(m.hook());
            info!("mapping log: {}", path.display());
            Some(m)
        }
        None => None,
    };
    let ops_stop = Arc::new(AtomicBool::new(false));
    let pref64_thread = pref64.map(|(sender, interval)| {
        let (stop, prefix) = (ops_stop.clone(), s.prefix);
        std::thread::Builder::new()
            .name("pref64".into())
            .spawn(move || {
                crate::privilege::drop_thread_caps();
                sender.run(prefix, interval, stop)
            })
    });
    let pref64_thread = pref64_thread
        .transpose()
        .context("starting the PREF64 thread")?;
    let control = match &s.control {
        Some(path) => {
            let c = control::socket::spawn(path, tel.clone(), ops_stop.clone())?;
            info!("control socket: {}", path.display());
            Some(c)
        }
        None => None,
    };
    let metrics = match s.metrics {
        Some(addr) => match control::metrics::spawn(addr, tel.clone(), ops_stop.clone()) {
            Ok(m) => {
                info!("metrics: http://{addr}/metrics");
                Some(m)
            }
            Err(e) => {
                ops_stop.store(true, Ordering::Relaxed);
                if let Some(h) = pref64_thread {
                    let _ = h.join();
                }
                if let Some(c) = control {
                    c.stop();
                }
                return Err(e);
            }
        },
        None => None,
    };
    let placement = if s.tun.place_flows {
        worker::Placement::new(queues.clone())
    } else {
        None
    };
    let mut handles = Vec::new();
    for (i, q) in queues.iter().cloned().enumerate() {
        let st = all_stats[i].clone();
        let w = engine.worker();
        let sh = shared.clone();
        let pin = s.tun.pin_workers;
        let opts = worker::Options {
            batch: usize::from(s.tun.batch),
            queue: i,
            placement: placement.clone(),
            coalesce_udp: s.tun.coalesce_udp,
            uring_read: s.tun.uring_read,
        };
        let h = std::thread::Builder::new()
            .name(format!("nat64-q{i}"))
            .spawn(move || {
                crate::privilege::drop_thread_caps();
                if pin {
                    pin_to_cpu(i);
                }
                worker::run(q, w, sh, st, opts)
            })
            .context("spawning a worker thread")?;
        handles.push(h);
    }

    // The reaper answers held SYNs through queue 0 and counts them there.
    let reaper = {
        let engine = engine.clone();
        let sh = shared.clone();
        let dev = queues[0].clone();
        let st = all_stats[0].clone();
        let rs = tel.reaper.clone();
        let interval = Arc::new(std::sync::atomic::AtomicU64::new(
            s.reap_interval.as_millis() as u64,
        ));
        std::thread::Builder::new()
            .name("nat64-reaper".into())
            .spawn(move || {
                crate::privilege::drop_thread_caps();
                reaper_loop(engine, sh, interval, dev, st, rs)
            })
            .context("spawning the reaper thread")?
    };

    // "running" means packets flow: every worker reads its queue.
    let t0 = std::time::Instant::now();
    while shared.ready.load(Ordering::Acquire) < queues.len()
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    info!(
        "nat64 running: prefix {} napt {} {} ; send SIGUSR1 for stats",
        s.prefix,
        s.napt,
        match s.napt {
            NaptMode::Daemon => format!(
                "pool {}",
                s.pool
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            NaptMode::Kernel => format!(
                "inner-pool {}",
                s.inner_pool.map(|p| p.to_string()).unwrap_or_default()
            ),
            NaptMode::Clat => format!(
                "(464XLAT customer side) {} as {}",
                s.clat
                    .as_ref()
                    .map(|c| c.v4.to_string())
                    .unwrap_or_default(),
                s.clat
                    .as_ref()
                    .map(|c| c.v6.to_string())
                    .unwrap_or_default()
            ),
            NaptMode::None => format!(
                "(stateless) {} explicit mapping{}{}",
                s.eam.len(),
                if s.eam.len() == 1 { "" } else { "s" },
                s.inner_pool
                    .map(|p| format!(", dynamic pool {p}"))
                    .unwrap_or_default()
            ),
        }
    );
    crate::notify::ready();

    for sig in signals.forever() {
        match sig {
            SIGTERM | SIGINT => {
                info!("signal {sig}: shutting down");
                break;
            }
            SIGHUP => match config::load(config_arg, sets) {
                Ok(new) => {
                    note_restart_only(s, &new.settings);
                    if let Some(m) = &maplog {
                        m.reopen();
                    }
                    for w in &new.settings.warnings {
                        warn!("SIGHUP: {w}");
                    }
                    match engine.reload(&new.settings) {
                        Ok(()) if s.napt == NaptMode::None => info!(
                            "SIGHUP: reloaded timeouts, limits and {} explicit mappings",
                            new.settings.eam.len()
                        ),
                        Ok(()) => info!("SIGHUP: reloaded timeouts, limits and static entries"),
                        Err(e) => error!("SIGHUP: reload failed, keeping the old settings: {e:#}"),
                    }
                }
                Err(e) => error!("SIGHUP: new configuration refused, keeping the old one: {e:#}"),
            },
            SIGUSR1 => info!(
                "stats: {}{fp_line}",
                stats_line(&engine, &all_stats),
                fp_line = fp_stats(&fp_counters)
            ),
            _ => {}
        }
    }

    shared.shutdown.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    if let Some(f) = fast_path {
        f.stop();
    }
    let _ = reaper.join();
    ops_stop.store(true, Ordering::Relaxed);
    if let Some(c) = control {
        c.stop();
    }
    if let Some(m) = metrics {
        m.stop();
    }
    engine.core().clear_event_hook();
    if let Some(m) = maplog {
        m.stop();
    }
    if let Some(j) = lease_journal {
        j.stop();
    }
    if let (NaptMode::Kernel | NaptMode::None, Some(path)) = (s.napt, &s.state_file) {
        if let Err(e) = crate::leases::write_snapshot(path, &engine.kernel_leases()) {
            warn!("could not save leases to {}: {e:#}", path.display());
        }
    }
    installed.teardown();
    info!(
        "final stats: {}{}",
        stats_line(&engine, &all_stats),
        fp_stats(&fp_counters)
    );
    info!("nat64 stopped");
    Ok(())
}

/// What the `user` must own before root is given up: the lease file (the
/// journal appends to it), and the control socket's directory when nat64
/// creates it (the socket is bound after the switch).
fn prepare_for_user(s: &Settings, u: &config::RunAs) -> anyhow::Result<()> {
    use std::os::unix::fs::chown;
    if let Some(path) = &s.state_file {
        chown(path, Some(u.uid), Some(u.gid))
            .with_context(|| format!("giving {} the lease file {}", u.name, path.display()))?;
    }
    if let Some(dir) = s.control.as_ref().and_then(|p| p.parent()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {} for the control socket", dir.display()))?;
            chown(dir, Some(u.uid), Some(u.gid))
                .with_context(|| format!("giving {} the directory {}", u.name, dir.display()))?;
        }
    }
    Ok(())
}

fn note_restart_only(old: &Settings, new: &Settings) {
    let mut changed = Vec::new();
    if old.prefix != new.prefix {
        changed.push("prefix");
    }
    if old.pool != new.pool {
        changed.push("pool");
    }
    if old.napt != new.napt {
        changed.push("napt");
    }
    if old.inner_pool != new.inner_pool {
        changed.push("inner-pool");
    }
    if old.deterministic != new.deterministic || old.port_block_size != new.port_block_size {
        changed.push("ports");
    }
    if old.farm != new.farm {
        changed.push("farm");
    }
    if old.lease_recovery != new.lease_recovery {
        changed.push("lease-recovery");
    }
    if old.egress_v4 != new.egress_v4 {
        changed.push("egress-v4");
    }
    if old.tun != new.tun {
        changed.push("tun");
    }
    if old.gateway_v4 != new.gateway_v4 {
        changed.push("gateway-v4");
    }
    if old.reap_interval != new.reap_interval {
        changed.push("reap-interval-secs");
    }
    if old.fast_path() != new.fast_path() || old.fast_path_interfaces != new.fast_path_interfaces {
        changed.push("fast-path, fast-path-interfaces");
    }
    if old.fast_path_max_flows != new.fast_path_max_flows {
        changed.push("fast-path-max-flows");
    }
    if !changed.is_empty() {
        warn!(
            "SIGHUP: {} changed but only take effect after a restart",
            changed.join(", ")
        );
    }
}

fn reaper_loop(
    engine: Engine,
    sh: Arc<worker::Shared>,
    interval_ms: Arc<std::sync::atomic::AtomicU64>,
    dev: Arc<tun_rs::SyncDevice>,
    stats: Arc<Stats>,
    rstats: Arc<ReaperStats>,
) {
    let mut next = sh.clock.now().as_millis() + interval_ms.load(Ordering::Relaxed);
    let mut out = vec![0u8; 2048];
    let mut forwarding = plumbing::ForwardingWatch::new();
    let mut freed_since_trim = 0usize;
    let mut next_forwarding_check = 0;
    while !sh.shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = sh.clock.now();
        if now.as_millis() >= next_forwarding_check {
            forwarding.check();
            next_forwarding_check = now.as_millis() + 2000;
        }
        if now.as_millis() < next {
            continue;
        }
        let t0 = std::time::Instant::now();
        // ICMP fragments whose message never completed.
        let expired = sh
            .reassembly
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expire(now);
        stats.count_drops(
            nat64_core::DropReason::ReassemblyTimeout,
            u64::from(expired),
        );
        let st = engine.sweep(now);
        rstats.record(&st, t0.elapsed());
        // After a large drain, hand the freed heap back to the kernel
        // (glibc keeps it otherwise; issue 11 #10): 1 M sessions take ~300
        // MiB, and after they expire RSS falls back to ~20 MiB.
        freed_since_trim += st.expired_sessions.tcp
            + st.expired_sessions.udp
            + st.expired_sessions.icmp
            + st.expired_leases;
        if st.complete && freed_since_trim >= 10_000 {
            freed_since_trim = 0;
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        tracing::debug!(
            "reaper: examined {} expired sessions tcp/udp/icmp {}/{}/{} bindings {}/{}/{} \
             leases {}",
            st.examined,
            st.expired_sessions.tcp,
            st.expired_sessions.udp,
            st.expired_sessions.icmp,
            st.expired_bindings.tcp,
            st.expired_bindings.udp,
            st.expired_bindings.icmp,
            st.expired_leases
        );
        // RFC 6146 §3.5.2.2: unanswered held SYNs get Port Unreachable.
        for a in &st.icmp_answers {
            if !sh.limiter.allow(now) {
                Stats::inc(&stats.icmp_rate_limited);
                continue;
            }
            let err = nat64_core::IcmpError::DestUnreachableV4 { code: 3 };
            match worker::build_icmp(&a.packet, err, &sh, &mut out) {
                Ok(n) => {
                    Stats::inc(&stats.icmp_sent);
                    worker::send(&dev, &out[..n], &stats);
                }
                Err(_) => Stats::inc(&stats.icmp_build_failed),
            }
        }
        let wait = if st.complete {
            interval_ms.load(Ordering::Relaxed)
        } else {
            100
        };
        next = now.as_millis() + wait;
    }
}

/// Pins the calling thread to CPU `i` modulo the CPUs it may run on
/// (`tun.pin-workers`, thread-per-core; ADR 0005). Failure is logged, not
/// fatal: the worker runs unpinned.
fn pin_to_cpu(i: usize) {
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity get a valid
    // pointer and its exact size.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            tracing::warn!("worker {i}: cannot read CPU affinity; running unpinned");
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &allowed))
            .collect();
        let Some(&cpu) = cpus.get(i % cpus.len().max(1)) else {
            return;
        };
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!("worker {i}: cannot pin to CPU {cpu}; running unpinned");
        } else {
            tracing::info!("worker {i} pinned to CPU {cpu}");
        }
    }
}
