//! The control protocol: one JSON object per line each way.
//!
//! Requests (`cmd` names the operation):
//!
//! ```text
//! {"cmd":"bindings","v6":"2001:db8::/64","proto":"tcp"}   filters optional
//! {"cmd":"sessions","v6":"2001:db8::1","limit":1000,"cursor":"..."}
//! {"cmd":"pool"}
//! {"cmd":"stats"}
//! {"cmd":"binding-add","proto":"tcp","v6":"[2001:db8::1]:80","v4":"192.0.2.1:8080"}
//! {"cmd":"binding-del","proto":"tcp","v4":"192.0.2.1:8080"}
//! ```
//!
//! Replies: `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
//! `result` is an array of rows for bindings, sessions and pool, an object
//! for stats, and null for binding-add/del.
//!
//! Bindings and sessions come a page at a time (issue 11 #11: one reply
//! with a million sessions took seconds under the engine's lock and
//! hundreds of MB): at most `limit` rows ([`DEFAULT_PAGE`] when absent or
//! 0, never more than [`MAX_PAGE`]) in key order (protocol, IPv6 endpoint,
//! remote), and when more rows exist the reply carries
//! `"next_cursor":"..."`, to pass as `cursor` in the next request (same
//! filters) for the rows after it. Each row present for the whole listing
//! comes exactly once.

use super::Telemetry;
use nat64_core::state::{BindingKey, SessionKey};
use nat64_core::xlat::L4Proto;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// Longest request line the daemon reads (bytes, newline included).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Rows per page of bindings or sessions when the request names no limit.
pub const DEFAULT_PAGE: usize = 10_000;
/// Most rows one reply carries (a larger `limit` gets this many and a
/// `next_cursor`): bounds the daemon's memory per request.
pub const MAX_PAGE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Bindings {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proto: Option<String>,
        /// Rows per page (see the module notes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        /// The previous reply's `next_cursor`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    Sessions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proto: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    Pool,
    Stats,
    /// The explicit address mapping table (`none` and `clat` modes).
    Eam,
    BindingAdd {
        proto: String,
        v6: String,
        v4: String,
    },
    BindingDel {
        proto: String,
        v4: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bindings and sessions: more rows follow; pass this as `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Reply {
    pub fn ok(v: serde_json::Value) -> Reply {
        Reply {
            ok: true,
            result: Some(v),
            error: None,
            next_cursor: None,
        }
    }
    pub fn err(e: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            result: None,
            error: Some(e.into()),
            next_cursor: None,
        }
    }
}

/// A BIB entry (daemon mode) or 1:1 lease (kernel mode: proto `any`,
/// ports 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    pub proto: String,
    pub v6: Ipv6Addr,
    pub v6_port: u16,
    pub v4: std::net::Ipv4Addr,
    pub v4_port: u16,
    #[serde(rename = "static")]
    pub is_static: bool,
    pub sessions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub proto: String,
    pub v6: Ipv6Addr,
    pub v6_port: u16,
    pub v4: std::net::Ipv4Addr,
    pub v4_port: u16,
    pub remote: std::net::Ipv4Addr,
    pub remote_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_state: Option<String>,
    pub expires_in_secs: f64,
    /// On the fast path: its packets cross in the kernel (issue 13).
    #[serde(default)]
    pub fast_path: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRow {
    pub address: std::net::Ipv4Addr,
    pub tcp_in_use: u32,
    pub tcp_capacity: u32,
    pub udp_in_use: u32,
    pub udp_capacity: u32,
    pub icmp_in_use: u32,
    pub icmp_capacity: u32,
}

/// One explicit address mapping (RFC 7757), as `show eam` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EamRow {
    pub v4: String,
    pub v6: String,
    /// Addresses on the IPv4 side.
    pub size: u64,
}

/// `--proto` / `"proto"`: tcp, udp or icmp.
pub fn parse_proto(s: &str) -> Result<L4Proto, String> {
    match s {
        "tcp" => Ok(L4Proto::Tcp),
        "udp" => Ok(L4Proto::Udp),
        "icmp" => Ok(L4Proto::Icmp),
        _ => Err(format!("unknown protocol `{s}`; use tcp, udp or icmp")),
    }
}

/// An IPv6 address or prefix (`ADDR` or `ADDR/LEN`) to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V6Filter {
    addr: u128,
    len: u8,
}

impl V6Filter {
    pub fn parse(s: &str) -> Result<V6Filter, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (
                a,
                l.parse::<u8>()
                    .ok()
                    .filter(|l| *l <= 128)
                    .ok_or_else(|| format!("`{s}`: prefix length must be 0..=128"))?,
            ),
            None => (s, 128),
        };
        let a = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{s}` is not an IPv6 address or ADDR/LEN prefix"))?;
        Ok(V6Filter {
            addr: u128::from(a),
            len,
        })
    }
    pub fn matches(&self, a: &Ipv6Addr) -> bool {
        let mask = if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.len))
        };
        (u128::from(*a) & mask) == (self.addr & mask)
    }
}

struct Filter {
    v6: Option<V6Filter>,
    proto: Option<L4Proto>,
}

impl Filter {
    fn new(v6: &Option<String>, proto: &Option<String>) -> Result<Filter, String> {
        Ok(Filter {
            v6: v6.as_deref().map(V6Filter::parse).transpose()?,
            proto: proto.as_deref().map(parse_proto).transpose()?,
        })
    }
    fn keep(&self, v6: &Ipv6Addr, proto: Option<L4Proto>) -> bool {
        self.v6.is_none_or(|f| f.matches(v6))
            && match (self.proto, proto) {
                (None, _) => true,
                // Kernel-mode leases carry every protocol.
                (Some(_), None) => true,
                (Some(a), Some(b)) => a == b,
            }
    }
}

/// Rows per page for a request's `limit`.
pub fn page_size(limit: Option<usize>) -> usize {
    match limit {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => n.min(MAX_PAGE),
    }
}

fn bad_cursor(c: &str) -> String {
    format!(
        "invalid cursor `{c}`; pass the `next_cursor` of the previous reply unchanged (with the \
         same command), or no cursor to start over"
    )
}

fn proto_name(p: Option<L4Proto>) -> &'static str {
    p.map_or("any", |p| p.as_str())
}

fn cursor_proto(s: &str) -> Option<Option<L4Proto>> {
    match s {
        "any" => Some(None),
        p => parse_proto(p).ok().map(Some),
    }
}

/// `s/PROTO/V6/PORT/REMOTE/PORT`: the last session of a page.
pub fn session_cursor(k: &SessionKey) -> String {
    format!(
        "s/{}/{}/{}/{}/{}",
        k.proto.as_str(),
        k.v6.0,
        k.v6.1,
        k.remote.0,
        k.remote.1
    )
}

pub fn parse_session_cursor(c: &str) -> Result<SessionKey, String> {
    let f: Vec<&str> = c.split('/').collect();
    let [tag, p, a6, p6, a4, p4] = f[..] else {
        return Err(bad_cursor(c));
    };
    let ok = || -> Option<SessionKey> {
        (tag == "s").then_some(())?;
        Some(SessionKey {
            proto: cursor_proto(p)??,
            v6: (a6.parse::<Ipv6Addr>().ok()?, p6.parse().ok()?),
            remote: (a4.parse::<Ipv4Addr>().ok()?, p4.parse().ok()?),
        })
    };
    ok().ok_or_else(|| bad_cursor(c))
}

/// `b/PROTO/V6/PORT` (`any` and port 0 for kernel-mode leases): the last
/// binding of a page.
pub fn binding_cursor(k: &BindingKey) -> String {
    format!("b/{}/{}/{}", proto_name(k.proto), k.v6.0, k.v6.1)
}

pub fn parse_binding_cursor(c: &str) -> Result<BindingKey, String> {
    let f: Vec<&str> = c.split('/').collect();
    let [tag, p, a6, p6] = f[..] else {
        return Err(bad_cursor(c));
    };
    let ok = || -> Option<BindingKey> {
        (tag == "b").then_some(())?;
        Some(BindingKey {
            proto: cursor_proto(p)?,
            v6: (a6.parse::<Ipv6Addr>().ok()?, p6.parse().ok()?),
        })
    };
    ok().ok_or_else(|| bad_cursor(c))
}

/// A successful answer: the JSON text of `result`, and the cursor of the
/// next page if any.
struct Answer {
    result: Vec<u8>,
    next_cursor: Option<String>,
}

fn encoded<T: Serialize>(v: &T) -> Result<Answer, String> {
    Ok(Answer {
        result: serde_json::to_vec(v)
            .map_err(|e| format!("internal error encoding the reply: {e}"))?,
        next_cursor: None,
    })
}

fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice::<Request>(line).map_err(|e| {
        format!(
            "cannot parse the request ({e}); send one JSON object per line, e.g. \
             {{\"cmd\":\"stats\"}} (commands: bindings, sessions, pool, stats, binding-add, \
             binding-del)"
        )
    })
}

/// Parses and answers one request line: the reply's JSON text (no
/// newline), written straight from the rows (no intermediate JSON tree).
/// Never panics on what a client sends: every problem is an error reply.
pub fn answer_line(line: &[u8], tel: &Telemetry) -> Vec<u8> {
    match parse_request(line).and_then(|r| execute(r, tel)) {
        Ok(a) => {
            let mut out = Vec::with_capacity(a.result.len() + 64);
            out.extend_from_slice(br#"{"ok":true,"result":"#);
            out.extend_from_slice(&a.result);
            if let Some(c) = &a.next_cursor {
                out.extend_from_slice(br#","next_cursor":"#);
                out.extend_from_slice(&serde_json::to_vec(c).unwrap_or_else(|_| b"null".to_vec()));
            }
            out.push(b'}');
            out
        }
        Err(e) => serde_json::to_vec(&Reply::err(e)).unwrap_or_else(|_| {
            br#"{"ok":false,"error":"internal error encoding the reply"}"#.to_vec()
        }),
    }
}

/// [`answer_line`] as a [`Reply`] value.
pub fn answer(line: &[u8], tel: &Telemetry) -> Reply {
    match parse_request(line).and_then(|r| execute(r, tel)) {
        Ok(a) => match serde_json::from_slice(&a.result) {
            Ok(v) => Reply {
                next_cursor: a.next_cursor,
                ..Reply::ok(v)
            },
            Err(e) => Reply::err(format!("internal error encoding the reply: {e}")),
        },
        Err(e) => Reply::err(e),
    }
}

fn execute(req: Request, tel: &Telemetry) -> Result<Answer, String> {
    let core = tel.engine.core();
    match req {
        Request::Bindings {
            v6,
            proto,
            limit,
            cursor,
        } => {
            let f = Filter::new(&v6, &proto)?;
            let after = cursor.as_deref().map(parse_binding_cursor).transpose()?;
            let page = core.bindings_page(after, page_size(limit), |p, a| f.keep(a, p));
            let rows: Vec<BindingRow> = page
                .rows
                .into_iter()
                .map(|b| BindingRow {
                    proto: proto_name(b.proto).to_string(),
                    v6: b.v6.0,
                    v6_port: b.v6.1,
                    v4: b.v4.0,
                    v4_port: b.v4.1,
                    is_static: b.is_static,
                    sessions: b.sessions,
                })
                .collect();
            Ok(Answer {
                next_cursor: page.next.as_ref().map(binding_cursor),
                ..encoded(&rows)?
            })
        }
        Request::Sessions {
            v6,
            proto,
            limit,
            cursor,
        } => {
            let f = Filter::new(&v6, &proto)?;
            let after = cursor.as_deref().map(parse_session_cursor).transpose()?;
            let page = core.sessions_page(after, page_size(limit), |p, a| f.keep(a, Some(p)));
            let rows: Vec<SessionRow> = page
                .rows
                .into_iter()
                .map(|s| SessionRow {
                    proto: s.proto.as_str().to_string(),
                    v6: s.v6.0,
                    v6_port: s.v6.1,
                    v4: s.v4.0,
                    v4_port: s.v4.1,
                    remote: s.remote.0,
                    remote_port: s.remote.1,
                    tcp_state: s.tcp_state.map(|t| t.to_string()),
                    expires_in_secs: s.expires_in.as_secs_f64(),
                    fast_path: s.fast_path,
                })
                .collect();
            Ok(Answer {
                next_cursor: page.next.as_ref().map(session_cursor),
                ..encoded(&rows)?
            })
        }
        Request::Pool => encoded(
            &core
                .pool_usage()
                .into_iter()
                .map(|u| PoolRow {
                    address: u.addr,
                    tcp_in_use: u.in_use.tcp,
                    tcp_capacity: u.capacity.tcp,
                    udp_in_use: u.in_use.udp,
                    udp_capacity: u.capacity.udp,
                    icmp_in_use: u.in_use.icmp,
                    icmp_capacity: u.capacity.icmp,
                })
                .collect::<Vec<_>>(),
        ),
        Request::Eam => encoded(
            &core
                .eam()
                .iter()
                .map(|e| {
                    let ((a4, l4), (a6, l6)) = (e.v4(), e.v6());
                    EamRow {
                        v4: format!("{a4}/{l4}"),
                        v6: format!("{a6}/{l6}"),
                        size: e.size(),
                    }
                })
                .collect::<Vec<_>>(),
        ),
        Request::Stats => {
            let mut v = tel.stats_json();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("control".into(), super::socket::counters_json());
            }
            encoded(&v)
        }
        Request::BindingAdd { proto, v6, v4 } => {
            // The same rules as a [[static]] entry of the file.
            let b = crate::config::FileConfig::check_runtime_static(
                tel.engine.core().prefix(),
                &tel.pool,
                crate::config::StaticEntry { proto, v6, v4 },
            )?;
            let (proto, v6, v4) = (b.proto, b.v6, b.v4);
            tel.engine
                .add_static_runtime(b)
                .map_err(|e| format!("{e:#}"))?;
            tracing::info!(
                "control: static binding added: {} {v6} <-> {v4}",
                proto.as_str()
            );
            encoded(&serde_json::Value::Null)
        }
        Request::BindingDel { proto, v4 } => {
            let proto = parse_proto(&proto)?;
            let v4: SocketAddrV4 = v4
                .parse()
                .map_err(|_| format!("v4 `{v4}` is not IPV4:PORT, e.g. 192.0.2.1:8080"))?;
            tel.engine
                .remove_static_runtime(proto, v4)
                .map_err(|e| format!("{e:#}"))?;
            tracing::info!("control: static binding removed: {} {v4}", proto.as_str());
            encoded(&serde_json::Value::Null)
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r: Request = serde_json::from_str(r#"{"cmd":"bindings","proto":"tcp"}"#).unwrap();
        assert_eq!(
            r,
            Request::Bindings {
                v6: None,
                proto: Some("tcp".into()),
                limit: None,
                cursor: None,
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"cmd":"sessions","limit":5,"cursor":"x"}"#).unwrap();
        assert_eq!(
            r,
            Request::Sessions {
                v6: None,
                proto: None,
                limit: Some(5),
                cursor: Some("x".into()),
            }
        );
        let s = serde_json::to_string(&Request::Stats).unwrap();
        assert_eq!(s, r#"{"cmd":"stats"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"bindings","x":1}"#).is_err());
    }

    #[test]
    fn v6_filter_prefix_and_address() {
        let f = V6Filter::parse("2001:db8:1::/64").unwrap();
        assert!(f.matches(&"2001:db8:1::2".parse().unwrap()));
        assert!(!f.matches(&"2001:db8:2::2".parse().unwrap()));
        let f = V6Filter::parse("2001:db8:1::2").unwrap();
        assert!(f.matches(&"2001:db8:1::2".parse().unwrap()));
        assert!(!f.matches(&"2001:db8:1::3".parse().unwrap()));
        assert!(V6Filter::parse("::/0")
            .unwrap()
            .matches(&"::1".parse().unwrap()));
        assert!(V6Filter::parse("2001:db8::/129").is_err());
        assert!(V6Filter::parse("1.2.3.4").is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let k = SessionKey {
            proto: L4Proto::Icmp,
            v6: ("2001:db8::1".parse().unwrap(), 7),
            remote: ("198.51.100.2".parse().unwrap(), 0),
        };
        assert_eq!(parse_session_cursor(&session_cursor(&k)), Ok(k));
        for p in [None, Some(L4Proto::Udp)] {
            let k = BindingKey {
                proto: p,
                v6: ("2001:db8::1".parse().unwrap(), 40000),
            };
            assert_eq!(parse_binding_cursor(&binding_cursor(&k)), Ok(k));
        }
        for bad in [
            "",
            "s/tcp",
            "b/tcp/2001:db8::1/70000",
            "s/any/2001:db8::1/1/1.2.3.4/5",
            "x/tcp/2001:db8::1/1",
            "s/tcp/2001:db8::1/1/1.2.3.4/5/6",
        ] {
            assert!(parse_session_cursor(bad).is_err(), "{bad}");
            assert!(parse_binding_cursor(bad).is_err(), "{bad}");
        }
        assert!(parse_binding_cursor("s/tcp/2001:db8::1/1/1.2.3.4/5").is_err());
        assert_eq!(page_size(None), DEFAULT_PAGE);
        assert_eq!(page_size(Some(0)), DEFAULT_PAGE);
        assert_eq!(page_size(Some(3)), 3);
        assert_eq!(page_size(Some(usize::MAX)), MAX_PAGE);
    }

    /// Sessions and bindings page by page over the protocol: each row that
    /// exists from the start comes exactly once, no row twice, while new
    /// flows arrive between pages; the line form carries `next_cursor`.
    #[test]
    fn paging_returns_every_row_once_while_rows_are_added() {
        use nat64_core::time::Timestamp;
        use nat64_core::xlat::{FlowMeta, Mapper as _, Role, Tuple};
        use std::collections::HashMap;
        let tel = super::super::socket::test::telemetry();
        let add = |r: std::ops::Range<u16>| {
            let mut w = tel.engine.core().worker();
            w.set_now(Timestamp::from_secs(1));
            let m = FlowMeta {
                role: Role::Outer,
                tcp_flags: 0,
                fragment: None,
                len: 100,
            };
            for i in r {
                let t = Tuple {
                    proto: L4Proto::Udp,
                    src: "2001:db8::7".parse().unwrap(),
                    src_port: 1000 + i,
                    dst: "64:ff9b::808:808".parse().unwrap(),
                    dst_port: 53,
                };
                w.mapper().map_6to4(&t, &m).unwrap();
            }
        };
        add(0..250);
        // Flows added while paging get the ports after these.
        let mut next = 250;
        for cmd in ["sessions", "bindings"] {
            let mut seen: HashMap<u64, u32> = HashMap::new();
            let (mut cursor, mut pages) = (None::<String>, 0);
            loop {
                let mut req = serde_json::json!({"cmd": cmd, "limit": 100, "proto": "udp"});
                if let Some(c) = &cursor {
                    req["cursor"] = c.clone().into();
                }
                let line = serde_json::to_vec(&req).unwrap();
                let text = answer_line(&line, &tel);
                let r: Reply = serde_json::from_slice(&text).unwrap();
                assert!(r.ok, "{r:?}");
                assert_eq!(answer(&line, &tel).next_cursor, r.next_cursor);
                let rows = r.result.unwrap();
                let rows = rows.as_array().unwrap();
                assert!(rows.len() <= 100);
                for row in rows {
                    *seen.entry(row["v6_port"].as_u64().unwrap()).or_insert(0) += 1;
                }
                pages += 1;
                add(next..next + 30);
                next += 30;
                match r.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert!(pages >= 3, "{cmd}: {pages} pages");
            for p in 1000..1250 {
                assert_eq!(seen.get(&p), Some(&1), "{cmd}: port {p}");
            }
            assert!(seen.values().all(|n| *n == 1), "{cmd}: a row came twice");
        }
        let bad = answer(br#"{"cmd":"sessions","cursor":"nope"}"#, &tel);
        assert!(!bad.ok && bad.error.unwrap().contains("invalid cursor"));
    }
}
