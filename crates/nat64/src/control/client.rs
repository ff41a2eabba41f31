//! The client side of the control socket: `nat64 show` and `nat64 binding`.
//! Tables by default (aligned columns), the daemon's JSON with `--json`.
//! Bindings and sessions are fetched a page at a time over one connection
//! and printed as each page arrives (`--limit N` stops after N rows).

use super::proto::{BindingRow, EamRow, PoolRow, Reply, Request, SessionRow, MAX_PAGE};
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

/// One connection to the daemon, for one or more requests.
struct Conn {
    path: PathBuf,
    s: UnixStream,
    r: BufReader<UnixStream>,
}

impl Conn {
    fn open(path: &Path) -> anyhow::Result<Conn> {
        let s = UnixStream::connect(path).with_context(|| {
            format!(
                "cannot connect to the control socket {}; is `nat64 run` running with this \
                 `control` path, and are you root (the socket is owner-only)? Use --socket PATH \
                 or --config FILE to pick another",
                path.display()
            )
        })?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        let r = BufReader::new(s.try_clone().context("cloning the control connection")?);
        Ok(Conn {
            path: path.to_path_buf(),
            s,
            r,
        })
    }

    /// Sends one request and reads its reply; a refusal is an error.
    fn request(&mut self, req: &Request) -> anyhow::Result<Reply> {
        let path = self.path.display();
        let mut line = serde_json::to_vec(req).context("encoding the request")?;
        line.push(b'\n');
        // A daemon that turns the connection away (busy, not allowed) says
        // why in a line and closes, maybe before the request is sent: the
        // reply is read even when sending failed.
        let sent = self.s.write_all(&line);
        let mut text = String::new();
        let read = std::io::Read::take(&mut self.r, MAX_REPLY).read_line(&mut text);
        if text.trim().is_empty() {
            sent.with_context(|| format!("sending the request to {path}"))?;
            read.with_context(|| format!("reading the reply from {path}"))?;
            bail!("the daemon closed the control connection without a reply ({path})");
        }
        let reply: Reply = serde_json::from_str(&text).with_context(|| {
            format!(
                "the reply from {path} is not a control-protocol reply; is this a nat64 control \
                 socket?"
            )
        })?;
        if !reply.ok {
            bail!(
                "the daemon refused the request: {}",
                reply.error.unwrap_or_else(|| "no reason given".into())
            );
        }
        Ok(reply)
    }
}

/// Sends one request and returns the daemon's `result`.
pub fn call(path: &Path, req: &Request) -> anyhow::Result<serde_json::Value> {
    let reply = Conn::open(path)?.request(req)?;
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
    /// The explicit address mappings in force (`napt = "none"`, `"clat"`):
    /// `[[map]]` and `map-file` as merged at the last start or SIGHUP.
    Eam,
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

/// `nat64 show`. `limit`: rows of bindings or sessions to show, 0 for all.
pub fn show(
    path: &Path,
    what: ShowWhat,
    json: bool,
    v6: Option<&str>,
    proto: Option<Proto>,
    limit: usize,
) -> anyhow::Result<()> {
    let (v6, proto) = (
        v6.map(str::to_string),
        proto.map(|p| p.as_str().to_string()),
    );
    let req = match what {
        ShowWhat::Bindings | ShowWhat::Sessions => {
            return show_rows(path, what, json, v6, proto, limit)
        }
        ShowWhat::Pool | ShowWhat::Stats | ShowWhat::Eam => {
            if v6.is_some() || proto.is_some() {
                bail!("--v6 and --proto filter `show bindings` and `show sessions` only");
            }
            if limit != 0 {
                bail!("--limit applies to `show bindings` and `show sessions` only");
            }
            match what {
                ShowWhat::Pool => Request::Pool,
                ShowWhat::Eam => Request::Eam,
                _ => Request::Stats,
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

/// Bindings or sessions, page by page over one connection, each page
/// printed as it arrives: a table whose columns are sized by the first
/// page, or one JSON array.
fn show_rows(
    path: &Path,
    what: ShowWhat,
    json: bool,
    v6: Option<String>,
    proto: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut conn = Conn::open(path)?;
    let mut out = Rows::new(what, json);
    let mut cursor = None;
    let mut shown = 0usize;
    loop {
        let want = if limit == 0 {
            MAX_PAGE
        } else {
            (limit - shown).min(MAX_PAGE)
        };
        let (v6, proto) = (v6.clone(), proto.clone());
        let req = match what {
            ShowWhat::Sessions => Request::Sessions {
                v6,
                proto,
                limit: Some(want),
                cursor,
            },
            _ => Request::Bindings {
                v6,
                proto,
                limit: Some(want),
                cursor,
            },
        };
        let reply = conn.request(&req)?;
        let page = reply.result.unwrap_or(serde_json::Value::Null);
        let n = out.page(page)?;
        shown += n;
        cursor = reply.next_cursor;
        if !out.open {
            // stdout closed (`| head`): stop asking.
            return Ok(());
        }
        if cursor.is_none() || n == 0 || (limit != 0 && shown >= limit) {
            break;
        }
    }
    out.finish(cursor.is_some() && limit != 0);
    Ok(())
}

/// `show bindings|sessions` output, written as pages arrive.
struct Rows {
    what: ShowWhat,
    json: bool,
    /// Column widths (from the first page; tables only).
    width: Vec<usize>,
    /// The table header or the JSON array's `[` is out.
    started: bool,
    count: usize,
    /// False once stdout is closed.
    open: bool,
}

impl Rows {
    fn new(what: ShowWhat, json: bool) -> Rows {
        Rows {
            what,
            json,
            width: Vec::new(),
            started: false,
            count: 0,
            open: true,
        }
    }

    fn emit(&mut self, text: &str) {
        if self.open && std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
            self.open = false;
        }
    }

    /// Prints one page; returns its number of rows.
    fn page(&mut self, v: serde_json::Value) -> anyhow::Result<usize> {
        let bad = |e: serde_json::Error| anyhow::anyhow!("unexpected reply from the daemon: {e}");
        let rows: Vec<serde_json::Value> = serde_json::from_value(v).map_err(bad)?;
        let n = rows.len();
        let mut text = String::new();
        if self.json {
            for r in rows {
                text.push_str(if self.started { ",\n  " } else { "[\n  " });
                text.push_str(&serde_json::to_string(&r).context("encoding JSON")?);
                self.started = true;
                self.count += 1;
            }
        } else {
            let mut t = Vec::new();
            if !self.started {
                t.push(header(self.what));
                self.started = true;
            }
            for r in rows {
                t.push(match self.what {
                    ShowWhat::Sessions => session_cells(&serde_json::from_value(r).map_err(bad)?),
                    _ => binding_cells(&serde_json::from_value(r).map_err(bad)?),
                });
                self.count += 1;
            }
            if self.width.is_empty() {
                self.width = widths(&t);
            }
            text = table_with(&t, &self.width);
        }
        self.emit(&text);
        Ok(n)
    }

    /// Closes the JSON array, or prints the table's count line; says on
    /// stderr when `--limit` cut the listing short.
    fn finish(&mut self, more: bool) {
        let noun = if self.what == ShowWhat::Sessions {
            "session(s)"
        } else {
            "binding(s)"
        };
        if self.json {
            let end = if self.started { "\n]\n" } else { "[]\n" };
            self.emit(end);
        } else {
            if !self.started {
                let t = vec![header(self.what)];
                let text = table_with(&t, &widths(&t));
                self.emit(&text);
            }
            let text = format!("{} {noun}\n", self.count);
            self.emit(&text);
        }
        if more {
            eprintln!(
                "nat64: first {} {noun} shown; more exist (--limit 0 shows all)",
                self.count
            );
        }
    }
}

fn header(what: ShowWhat) -> Vec<String> {
    let h: &[&str] = match what {
        ShowWhat::Sessions => &[
            "PROTO", "IPV6", "IPV4", "REMOTE", "STATE", "EXPIRES", "PATH",
        ],
        _ => &["PROTO", "IPV6", "IPV4", "STATIC", "SESSIONS"],
    };
    h.iter().map(|s| s.to_string()).collect()
}

fn binding_cells(r: &BindingRow) -> Vec<String> {
    let (a6, a4) = if r.proto == "any" {
        (r.v6.to_string(), r.v4.to_string())
    } else {
        (
            format!("[{}]:{}", r.v6, r.v6_port),
            format!("{}:{}", r.v4, r.v4_port),
        )
    };
    vec![
        r.proto.clone(),
        a6,
        a4,
        if r.is_static { "yes" } else { "no" }.into(),
        r.sessions.to_string(),
    ]
}

fn session_cells(r: &SessionRow) -> Vec<String> {
    vec![
        r.proto.clone(),
        format!("[{}]:{}", r.v6, r.v6_port),
        format!("{}:{}", r.v4, r.v4_port),
        format!("{}:{}", r.remote, r.remote_port),
        r.tcp_state.clone().unwrap_or_else(|| "-".into()),
        format!("{:.0}s", r.expires_in_secs),
        if r.fast_path { "fast-path" } else { "tun" }.into(),
    ]
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
        // Printed page by page (show_rows).
        ShowWhat::Bindings | ShowWhat::Sessions => bail!("internal: rows are printed by pages"),
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
        ShowWhat::Eam => {
            let rows: Vec<EamRow> = serde_json::from_value(v).map_err(bad)?;
            let mut t = vec![vec![
                "IPV4".to_string(),
                "IPV6".to_string(),
                "ADDRESSES".to_string(),
            ]];
            for r in &rows {
                t.push(vec![r.v4.clone(), r.v6.clone(), r.size.to_string()]);
            }
            format!("{}{} explicit mapping(s)\n", table(&t), rows.len())
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

/// The widest cell of each column.
fn widths(rows: &[Vec<String>]) -> Vec<usize> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    table_with(rows, &widths(rows))
}

/// [`table`] with given column widths (a wider cell pushes its line's
/// next columns right).
fn table_with(rows: &[Vec<String>], width: &[usize]) -> String {
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let w = width.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<w$}  "));
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
