//! The control protocol: one JSON object per line each way.
//!
//! Requests (`cmd` names the operation):
//!
//! ```text
//! {"cmd":"bindings","v6":"2001:db8::/64","proto":"tcp"}   filters optional
//! {"cmd":"sessions","v6":"2001:db8::1"}
//! {"cmd":"pool"}
//! {"cmd":"stats"}
//! {"cmd":"binding-add","proto":"tcp","v6":"[2001:db8::1]:80","v4":"192.0.2.1:8080"}
//! {"cmd":"binding-del","proto":"tcp","v4":"192.0.2.1:8080"}
//! ```
//!
//! Replies: `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
//! `result` is an array of rows for bindings, sessions and pool, an object
//! for stats, and null for binding-add/del.

use super::Telemetry;
use crate::config::StaticBib;
use nat64_core::xlat::L4Proto;
use serde::{Deserialize, Serialize};
use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// Longest request line the daemon reads (bytes, newline included).
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Bindings {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proto: Option<String>,
    },
    Sessions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proto: Option<String>,
    },
    Pool,
    Stats,
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
}

impl Reply {
    pub fn ok(v: serde_json::Value) -> Reply {
        Reply {
            ok: true,
            result: Some(v),
            error: None,
        }
    }
    pub fn err(e: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            result: None,
            error: Some(e.into()),
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

fn to_value<T: Serialize>(v: T) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("internal error encoding the reply: {e}"))
}

/// Parses and answers one request line. Never panics on what a client
/// sends: every problem is an error reply.
pub fn answer(line: &[u8], tel: &Telemetry) -> Reply {
    let req = match serde_json::from_slice::<Request>(line) {
        Ok(r) => r,
        Err(e) => {
            return Reply::err(format!(
                "cannot parse the request ({e}); send one JSON object per line, e.g. \
                 {{\"cmd\":\"stats\"}} (commands: bindings, sessions, pool, stats, binding-add, \
                 binding-del)"
            ))
        }
    };
    match execute(req, tel) {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::err(e),
    }
}

fn execute(req: Request, tel: &Telemetry) -> Result<serde_json::Value, String> {
    let core = tel.engine.core();
    match req {
        Request::Bindings { v6, proto } => {
            let f = Filter::new(&v6, &proto)?;
            let mut rows: Vec<BindingRow> = core
                .bindings()
                .into_iter()
                .filter(|b| f.keep(&b.v6.0, b.proto))
                .map(|b| BindingRow {
                    proto: b.proto.map_or("any", |p| p.as_str()).to_string(),
                    v6: b.v6.0,
                    v6_port: b.v6.1,
                    v4: b.v4.0,
                    v4_port: b.v4.1,
                    is_static: b.is_static,
                    sessions: b.sessions,
                })
                .collect();
            rows.sort_by(|a, b| {
                (&a.proto, a.v6, a.v6_port, a.v4, a.v4_port)
                    .cmp(&(&b.proto, b.v6, b.v6_port, b.v4, b.v4_port))
            });
            to_value(rows)
        }
        Request::Sessions { v6, proto } => {
            let f = Filter::new(&v6, &proto)?;
            let mut rows: Vec<SessionRow> = core
                .sessions()
                .into_iter()
                .filter(|s| f.keep(&s.v6.0, Some(s.proto)))
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
                })
                .collect();
            rows.sort_by(|a, b| {
                (&a.proto, a.v6, a.v6_port, a.remote, a.remote_port).cmp(&(
                    &b.proto,
                    b.v6,
                    b.v6_port,
                    b.remote,
                    b.remote_port,
                ))
            });
            to_value(rows)
        }
        Request::Pool => to_value(
            core.pool_usage()
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
        Request::Stats => Ok(tel.stats_json()),
        Request::BindingAdd { proto, v6, v4 } => {
            let proto = parse_proto(&proto)?;
            let v6: SocketAddrV6 = v6
                .parse()
                .map_err(|_| format!("v6 `{v6}` is not [IPV6]:PORT, e.g. [2001:db8::1]:80"))?;
            let v4: SocketAddrV4 = v4
                .parse()
                .map_err(|_| format!("v4 `{v4}` is not IPV4:PORT, e.g. 192.0.2.1:8080"))?;
            tel.engine
                .add_static_runtime(StaticBib { proto, v6, v4 })
                .map_err(|e| format!("{e:#}"))?;
            tracing::info!(
                "control: static binding added: {} {v6} <-> {v4}",
                proto.as_str()
            );
            Ok(serde_json::Value::Null)
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
            Ok(serde_json::Value::Null)
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
                proto: Some("tcp".into())
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
}
