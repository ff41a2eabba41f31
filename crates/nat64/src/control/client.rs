//! The client side of the control socket: `nat64 show` and `nat64 binding`.
//! Tables by default (aligned columns), the daemon's JSON with `--json`.

use super::proto::{BindingRow, PoolRow, Reply, Request, SessionRow};
use crate::config;
use anyhow::{bail, Context as _};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default config file `nat64 show` reads the socket path from.
pub const DEFAULT_CONFIG: &str = "/etc/nat64/nat64.toml";
/// Largest reply accepted (bytes).
const MAX_REPLY: u64 = 1 << 30;

/// Where to reach the daemon: `--socket`, else the `control` key of
/// `--config` (or of /etc/nat64/nat64.toml when it exists), else the
/// default path.
pub fn socket_path(socket: Option<&Path>, config_arg: Option<&str>) -> anyhow::Result<PathBuf> {
    if let Some(p) = socket {
        return Ok(p.to_path_buf());
    }
    let arg = match config_arg {
        Some(a) => a,
        None if Path::new(DEFAULT_CONFIG).exists() => DEFAULT_CONFIG,
        None => return Ok(PathBuf::from(config::DEFAULT_CONTROL)),
    };
    // Only the `control` key matters here: no prefix to derive, nothing
    // else to validate.
    let (source, file, _) = config::load_layers(arg, &[])?;
    if file.control.is_empty() {
        anyhow::bail!(
            "the control socket is disabled in {source} (control = \"\"); set `control` to a path \
             and restart nat64, or give --socket PATH"
        );
    }
    Ok(PathBuf::from(file.control))
}

/// Sends one request and returns the daemon's `result`.
pub fn call(path: &Path, req: &Request) -> anyhow::Result<serde_json::Value> {
    let mut s = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot connect to the control socket {}; is `nat64 run` running with this \
             `control` path, and are you root (the socket is owner-only)? Use --socket PATH or \
             --config FILE to pick another",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_vec(req).context("encoding the request")?;
    line.push(b'\n');
    s.write_all(&line)
        .with_context(|| format!("sending the request to {}", path.display()))?;
    let mut r = BufReader::new(std::io::Read::take(&s, MAX_REPLY));
    let mut text = String::new();
    r.read_line(&mut text)
        .with_context(|| format!("reading the reply from {}", path.display()))?;
    if text.trim().is_empty() {
        bail!(
            "the daemon closed the control connection without a reply ({})",
            path.display()
        );
    }
    let reply: Reply = serde_json::from_str(&text).with_context(|| {
        format!(
            "the reply from {} is not a control-protocol reply; is this a nat64 control socket?",
            path.display()
        )
    })?;
    if !reply.ok {
        bail!(
            "the daemon refused the request: {}",
            reply.error.unwrap_or_else(|| "no reason given".into())
        );
    }
    Ok(reply.result.unwrap_or(serde_json::Value::Null))
}

/// What `nat64 show` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowWhat {
    /// BIB entries (kernel mode: 1:1 leases).
    Bindings,
    /// Sessions with their remote endpoint, TCP state and expiry.
    Sessions,
    /// Pool ports (identifiers) in use per address and protocol.
    Pool,
    /// Counters: traffic, drops by reason, tables, reaper, mapping log.
    Stats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

/// `nat64 show`.
pub fn show(
    path: &Path,
    what: ShowWhat,
    json: bool,
    v6: Option<&str>,
    proto: Option<Proto>,
) -> anyhow::Result<()> {
    let (v6, proto) = (
        v6.map(str::to_string),
        proto.map(|p| p.as_str().to_string()),
    );
    let req = match what {
        ShowWhat::Bindings => Request::Bindings { v6, proto },
        ShowWhat::Sessions => Request::Sessions { v6, proto },
        ShowWhat::Pool | ShowWhat::Stats => {
            if v6.is_some() || proto.is_some() {
                bail!("--v6 and --proto filter `show bindings` and `show sessions` only");
            }
            if what == ShowWhat::Pool {
                Request::Pool
            } else {
                Request::Stats
            }
        }
    };
    let v = call(path, &req)?;
    let out = if json {
        let mut s = serde_json::to_string_pretty(&v).context("encoding JSON")?;
        s.push('\n');
        s
    } else {
        render(what, v)?
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}

/// `nat64 binding add|del`.
pub fn binding(path: &Path, req: Request) -> anyhow::Result<()> {
    let what = match &req {
        Request::BindingAdd { proto, v6, v4 } => format!("added {proto} {v6} <-> {v4}"),
        Request::BindingDel { proto, v4 } => format!("removed {proto} {v4}"),
        _ => String::new(),
    };
    call(path, &req)?;
    eprintln!("nat64: static binding {what}");
    Ok(())
}

fn render(what: ShowWhat, v: serde_json::Value) -> anyhow::Result<String> {
    let bad = |e: serde_json::Error| anyhow::anyhow!("unexpected reply from the daemon: {e}");
    Ok(match what {
        ShowWhat::Bindings => {
            let rows: Vec<BindingRow> = serde_json::from_value(v).map_err(bad)?;
            let mut t = vec![vec!["PROTO", "IPV6", "IPV4", "STATIC", "SESSIONS"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()];
            for r in &rows {
                let (a6, a4) = if r.proto == "any" {
                    (r.v6.to_string(), r.v4.to_string())
                } else {
                    (
                        format!("[{}]:{}", r.v6, r.v6_port),
                        format!("{}:{}", r.v4, r.v4_port),
                    )
                };
                t.push(vec![
                    r.proto.clone(),
                    a6,
                    a4,
                    if r.is_static { "yes" } else { "no" }.into(),
                    r.sessions.to_string(),
                ]);
            }
            format!("{}{} binding(s)\n", table(&t), rows.len())
        }
        ShowWhat::Sessions => {
            let rows: Vec<SessionRow> = serde_json::from_value(v).map_err(bad)?;
            let mut t = vec![vec!["PROTO", "IPV6", "IPV4", "REMOTE", "STATE", "EXPIRES"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()];
            for r in &rows {
                t.push(vec![
                    r.proto.clone(),
                    format!("[{}]:{}", r.v6, r.v6_port),
                    format!("{}:{}", r.v4, r.v4_port),
                    format!("{}:{}", r.remote, r.remote_port),
                    r.tcp_state.clone().unwrap_or_else(|| "-".into()),
                    format!("{:.0}s", r.expires_in_secs),
                ]);
            }
            format!("{}{} session(s)\n", table(&t), rows.len())
        }
        ShowWhat::Pool => {
            let rows: Vec<PoolRow> = serde_json::from_value(v).map_err(bad)?;
            let mut t = vec![vec!["ADDRESS", "TCP", "UDP", "ICMP"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()];
            for r in &rows {
                t.push(vec![
                    r.address.to_string(),
                    format!("{}/{}", r.tcp_in_use, r.tcp_capacity),
                    format!("{}/{}", r.udp_in_use, r.udp_capacity),
                    format!("{}/{}", r.icmp_in_use, r.icmp_capacity),
                ]);
            }
            format!("{}(in use / capacity)\n", table(&t))
        }
        ShowWhat::Stats => {
            let mut flat = Vec::new();
            flatten("", &v, &mut flat);
            let mut t = vec![vec!["COUNTER".to_string(), "VALUE".to_string()]];
            t.extend(flat.into_iter().map(|(k, v)| vec![k, v]));
            table(&t)
        }
    })
}

/// `{"a":{"b":1}}` → `a.b 1`, in the reply's order.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["xxx".into(), "y".into(), "z".into()],
        ]);
        assert_eq!(t, "A    BB  C\nxxx  y   z\n");
    }

    #[test]
    fn stats_flatten_dotted() {
        let v = serde_json::json!({"a": {"b": 1, "c": "x"}, "d": true});
        let mut f = Vec::new();
        flatten("", &v, &mut f);
        assert_eq!(
            f,
            vec![
                ("a.b".to_string(), "1".to_string()),
                ("a.c".into(), "x".into()),
                ("d".into(), "true".into())
            ]
        );
    }
}
