//! `nat64 lookup`: RFC 7422 deterministic port blocks, both ways, from the
//! configuration alone (no running daemon, no log): which block a client
//! gets, and which client a public `address:port` belongs to ("who had
//! 198.51.100.64:3500?"). With a `[farm]`, the instance whose slice holds
//! the address is found by loading the configuration once per instance.

use crate::config::{self, Loaded};
use anyhow::{bail, Context as _};
use nat64_core::state::BlockMap;
use nat64_core::xlat::L4Proto;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

const PROTOS: [L4Proto; 3] = [L4Proto::Tcp, L4Proto::Udp, L4Proto::Icmp];

/// The block map of a loaded configuration, or why there is none.
fn block_map(l: &Loaded) -> anyhow::Result<BlockMap> {
    let s = &l.settings;
    let cfg = crate::engine::pool_config(s)
        .context("nat64 lookup needs napt = \"daemon\" with ports.deterministic = true")?;
    BlockMap::new(&cfg, Some(s.gateway_v4)).map_err(|e| {
        anyhow::anyhow!(
            "{e}: set ports.block-size and ports.deterministic = true (docs/operator.md §2.8)"
        )
    })
}

fn farm_label(l: &Loaded) -> String {
    l.settings
        .farm
        .as_ref()
        .map(|f| format!(" (farm instance {} of {})", f.instance, f.instances))
        .unwrap_or_default()
}

/// The answer for `query`: an IPv6 client, or an IPv4 `address[:port]`.
pub fn lookup(query: &str, config: &str, sets: &[String]) -> anyhow::Result<String> {
    let l = config::load(config, sets)?;
    let mut out = String::new();
    if let Ok(v6) = query.parse::<Ipv6Addr>() {
        let map = block_map(&l)?;
        let d = l.settings.deterministic.expect("block_map checked it");
        let how = match d.clients {
            Some((base, len)) if config::derive::in_range(v6, (base, len)) => {
                format!("numbered in {base}/{len}")
            }
            _ => "hashed".to_string(),
        };
        writeln!(
            out,
            "client {}/{} ({how}){}:",
            client_of(v6, d.client_prefix_len),
            d.client_prefix_len,
            farm_label(&l)
        )?;
        let lines = PROTOS.map(|p| {
            let (a, first, last) = map.block_of(p, v6);
            (p, format!("{a}:{first}-{last}"))
        });
        for (protos, text) in merged(&lines) {
            writeln!(out, "  {protos} {text}")?;
        }
        if let Some(f) = &l.settings.farm {
            writeln!(
                out,
                "  (the router picks the instance; another instance gives another block: \
                 --set farm.instance=0..{})",
                f.instances - 1
            )?;
        }
        return Ok(out);
    }
    let (v4, port) = match query.parse::<SocketAddrV4>() {
        Ok(sa) => (*sa.ip(), Some(sa.port())),
        Err(_) => match query.parse::<Ipv4Addr>() {
            Ok(a) => (a, None),
            Err(_) => bail!(
                "`{query}` is neither an IPv6 client address nor an IPv4 ADDRESS[:PORT]; \
                 e.g. nat64 lookup 198.51.100.64:3500"
            ),
        },
    };
    let l = owner_instance(l, v4, config, sets)?;
    let map = block_map(&l)?;
    let d = l.settings.deterministic.expect("block_map checked it");
    let Some(port) = port else {
        writeln!(
            out,
            "{v4} is in the pool{}; give a port (ADDRESS:PORT) to name its block",
            farm_label(&l)
        )?;
        return Ok(out);
    };
    let found: Vec<(L4Proto, String)> = PROTOS
        .into_iter()
        .filter_map(|p| {
            let o = map.owner_of(p, v4, port)?;
            let who = match o.numbered {
                Some(c) => format!("client {c}/{}", d.client_prefix_len),
                None => "no numbered client".to_string(),
            };
            let text = format!(
                "{v4}:{port} is in block {}-{} (slot {}){}: {who}",
                o.first,
                o.last,
                o.slot,
                farm_label(&l)
            );
            Some((p, text))
        })
        .collect();
    for (protos, text) in merged(&found) {
        writeln!(out, "{protos} {text}")?;
    }
    if found.is_empty() {
        writeln!(out, "{v4}:{port} lies in no port block of the pool")?;
    } else {
        let note = match d.clients {
            Some((base, len)) => format!(
                "clients outside {base}/{len} are hashed and may share any block: the mapping \
                 log's block lines name them"
            ),
            None => "clients are hashed (no ports.clients): the mapping log's block-allocated \
                     lines name the clients that held this block"
                .to_string(),
        };
        writeln!(out, "({note})")?;
    }
    Ok(out)
}

/// The configuration as the instance that owns `v4` loads it: this one,
/// or with a farm, the one whose slice holds `v4`.
fn owner_instance(
    l: Loaded,
    v4: Ipv4Addr,
    config: &str,
    sets: &[String],
) -> anyhow::Result<Loaded> {
    let in_slice = |l: &Loaded| l.settings.pool.iter().any(|n| n.contains(v4));
    if in_slice(&l) {
        return Ok(l);
    }
    if let Some(f) = &l.settings.farm {
        for i in 0..f.instances {
            let mut s = sets.to_vec();
            s.push(format!("farm.instance={i}"));
            let other = config::load(config, &s)?;
            if in_slice(&other) {
                return Ok(other);
            }
        }
    }
    bail!("{v4} is not in the pool of {config}")
}

/// Lines of equal text for several protocols as one (`tcp/udp/icmp ...`).
fn merged(lines: &[(L4Proto, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (p, text) in lines {
        match out.iter_mut().find(|(_, t)| t == text) {
            Some((protos, _)) => {
                protos.push('/');
                protos.push_str(p.as_str());
            }
            None => out.push((p.as_str().to_string(), text.clone())),
        }
    }
    out
}

fn client_of(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & m)
}

#[cfg(test)]
mod test {
    use super::*;

    /// A farm of 3 over 6 addresses, 1024-port blocks from 1024 (63 per
    /// address), clients 2001:db8:100::/122 numbered. Worked by hand:
    /// instance 1 owns .66-.67; client ::5 is slot 5 = address 5 mod 2 (.67),
    /// block 5 div 2 = 2 (3072-4095); .66:3500 is block 2 of address 0 =
    /// slot 4 = client ::4 (on instance 1); .69:1024 is slot 1 of instance 2.
    #[test]
    fn lookup_both_ways_in_a_farm() {
        let dir = std::env::temp_dir().join(format!("nat64-lookup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("farm.toml");
        std::fs::write(
            &f,
            "prefix = \"2001:db8:64::/96\"\npool = [\"198.51.100.64/30\", \"198.51.100.68/31\"]\n\
             gateway-v4 = \"192.0.2.1\"\n[ports]\nblock-size = 1024\ndeterministic = true\n\
             clients = \"2001:db8:100::/122\"\n[farm]\ninstance = 1\ninstances = 3\n",
        )
        .unwrap();
        let cfg = f.to_str().unwrap();
        let out = lookup("2001:db8:100::5", cfg, &[]).unwrap();
        assert!(
            out.contains("tcp/udp/icmp 198.51.100.67:3072-4095"),
            "{out}"
        );
        let out = lookup("198.51.100.66:3500", cfg, &[]).unwrap();
        assert!(
            out.contains("198.51.100.66:3500 is in block 3072-4095 (slot 4) (farm instance 1 of 3): client 2001:db8:100::4/128"),
            "{out}"
        );
        let out = lookup("198.51.100.69:1024", cfg, &[]).unwrap();
        assert!(
            out.contains("(slot 1) (farm instance 2 of 3): client 2001:db8:100::1/128"),
            "{out}"
        );
        assert!(lookup("198.51.100.64:80", cfg, &[])
            .unwrap()
            .contains("no port block"));
        assert!(lookup("192.0.2.77:80", cfg, &[]).is_err());
        assert!(lookup("nonsense", cfg, &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
