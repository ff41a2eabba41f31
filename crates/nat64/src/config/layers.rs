//! Where each value of a configuration comes from (ADR 0008).
//!
//! A configuration is built from up to three layers, later ones winning key
//! by key: a built-in profile (named by `--config NAME`, or by
//! `profile = "NAME"` inside a file), the file itself, and `--set key=value`
//! on the command line. Tables merge key by key (`[tun] mtu = 1280` in a
//! file keeps the profile's `tun.name`); any other value, arrays of tables
//! such as `[[map]]` included, is replaced whole. Each leaf remembers its
//! layer, so `nat64 check` can say where every value came from.

use super::{err, ConfigError};
use std::collections::BTreeMap;
use std::fmt;
use toml::{Table, Value};

/// The layer a value came from (no entry: the built-in default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Profile(&'static str),
    File(String),
    Set,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Profile(n) => write!(f, "profile {n}"),
            Origin::File(p) => write!(f, "{p}"),
            Origin::Set => write!(f, "--set"),
        }
    }
}

/// The merged table and the origin of each leaf (dotted kebab-case path).
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub table: Table,
    pub origins: BTreeMap<String, Origin>,
}

impl Layers {
    /// Merges `t` over what is there.
    pub fn add(&mut self, t: Table, origin: &Origin) {
        merge(&mut self.table, t, "", origin, &mut self.origins);
    }

    /// Applies one `--set key=value`. The value is read as a TOML value
    /// (`1400`, `true`, `"x"`, `["a", "b"]`), and as a plain string when it
    /// is not one (`--set prefix=2001:db8::/96`).
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let Some((key, raw)) = assignment.split_once('=') else {
            return Err(err(
                "--set",
                assignment,
                "is not KEY=VALUE",
                "write e.g. --set tun.mtu=1280 or --set prefix=2001:db8:64::/96",
            ));
        };
        let key = key.trim();
        let path: Vec<&str> = key.split('.').map(str::trim).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(err(
                "--set",
                assignment,
                "has an empty key",
                "name the key in kebab-case, tables with dots: --set tun.mtu=1280",
            ));
        }
        let raw = raw.trim();
        let value = toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_string()));
        let mut t = Table::new();
        let (last, parents) = path.split_last().unwrap_or((&"", &[]));
        t.insert((*last).to_string(), value);
        for p in parents.iter().rev() {
            let mut outer = Table::new();
            outer.insert((*p).to_string(), Value::Table(t));
            t = outer;
        }
        self.add(t, &Origin::Set);
        Ok(())
    }

    /// Where the value at `path` came from; `None`: the default.
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        self.origins.get(path)
    }
}

fn merge(
    dst: &mut Table,
    src: Table,
    path: &str,
    origin: &Origin,
    origins: &mut BTreeMap<String, Origin>,
) {
    for (k, v) in src {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            Value::Table(s) => {
                if !matches!(dst.get(&k), Some(Value::Table(_))) {
                    dst.insert(k.clone(), Value::Table(Table::new()));
                }
                if let Some(Value::Table(d)) = dst.get_mut(&k) {
                    merge(d, s, &p, origin, origins);
                }
            }
            v => {
                // A leaf replaces whatever was below it.
                origins.retain(|o, _| !o.starts_with(&format!("{p}.")));
                origins.insert(p, origin.clone());
                dst.insert(k, v);
            }
        }
    }
}

/// Appends `# <origin>` to each `key = value` line of the effective TOML
/// (as `FileConfig::to_toml` writes it); `notes` adds text for some keys
/// (e.g. where a derived prefix came from).
pub fn annotate(toml_text: &str, layers: &Layers, notes: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut section = String::new();
    let mut in_array_table = false;
    for line in toml_text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            section = name.trim().to_string();
            in_array_table = true;
            let o = layers
                .origin(&section)
                .map_or("default".to_string(), |o| o.to_string());
            out.push_str(&format!("{line}  # {o}\n"));
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.trim().to_string();
            in_array_table = false;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let key = t.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
        match key {
            Some(k) if !in_array_table && !k.is_empty() && !t.starts_with('#') => {
                let path = if section.is_empty() {
                    k.to_string()
                } else {
                    format!("{section}.{k}")
                };
                let mut o = layers
                    .origin(&path)
                    .map_or("default".to_string(), |o| o.to_string());
                if let Some(n) = notes.get(&path) {
                    o = format!("{o}; {n}");
                }
                out.push_str(&format!("{line}  # {o}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    fn table(s: &str) -> Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn file_overrides_profile_key_by_key() {
        let mut l = Layers::default();
        l.add(
            table("prefix = \"a\"\nnapt = \"kernel\"\n[tun]\nname = \"nat64\"\nmtu = 1400\n"),
            &Origin::Profile("geomind"),
        );
        l.add(
            table("prefix = \"b\"\n[tun]\nmtu = 1280\n"),
            &Origin::File("/etc/nat64.toml".into()),
        );
        assert_eq!(l.table["prefix"].as_str(), Some("b"));
        assert_eq!(l.table["napt"].as_str(), Some("kernel"));
        assert_eq!(l.table["tun"]["name"].as_str(), Some("nat64"));
        assert_eq!(l.table["tun"]["mtu"].as_integer(), Some(1280));
        assert_eq!(
            l.origin("tun.mtu"),
            Some(&Origin::File("/etc/nat64.toml".into()))
        );
        assert_eq!(l.origin("tun.name"), Some(&Origin::Profile("geomind")));
        assert_eq!(l.origin("napt"), Some(&Origin::Profile("geomind")));
        assert_eq!(l.origin("metrics"), None);
    }

    #[test]
    fn set_reads_toml_values_and_plain_strings() {
        let mut l = Layers::default();
        l.set("tun.mtu=1280").unwrap();
        l.set("manage-forwarding = true").unwrap();
        l.set("prefix=2001:db8:64::/96").unwrap();
        l.set("pool=[\"192.0.2.0/24\", \"198.51.100.0/24\"]")
            .unwrap();
        l.set("gateway-v4=\"192.0.2.1\"").unwrap();
        assert_eq!(l.table["tun"]["mtu"].as_integer(), Some(1280));
        assert_eq!(l.table["manage-forwarding"].as_bool(), Some(true));
        assert_eq!(l.table["prefix"].as_str(), Some("2001:db8:64::/96"));
        assert_eq!(l.table["pool"].as_array().map(|a| a.len()), Some(2));
        assert_eq!(l.table["gateway-v4"].as_str(), Some("192.0.2.1"));
        assert_eq!(l.origin("tun.mtu"), Some(&Origin::Set));
    }

    #[test]
    fn set_without_equals_or_key_is_an_error_naming_it() {
        let mut l = Layers::default();
        let e = l.set("tun.mtu").unwrap_err();
        assert_eq!(e.key, "--set");
        assert!(e.fix.contains("--set tun.mtu=1280"));
        assert!(l.set("tun..mtu=1").is_err());
        assert!(l.set("=1").is_err());
    }

    #[test]
    fn annotate_names_each_origin() {
        let mut l = Layers::default();
        l.add(table("napt = \"kernel\"\n"), &Origin::Profile("geomind"));
        l.set("tun.mtu=1280").unwrap();
        let mut notes = BTreeMap::new();
        notes.insert("napt".to_string(), "a note".to_string());
        let text =
            "napt = \"kernel\"\nmetrics = \"x\"\n\n[tun]\nmtu = 1280\n\n[[map]]\nv6 = \"a\"\n";
        let a = annotate(text, &l, &notes);
        assert!(
            a.contains("napt = \"kernel\"  # profile geomind; a note\n"),
            "{a}"
        );
        assert!(a.contains("metrics = \"x\"  # default\n"), "{a}");
        assert!(a.contains("mtu = 1280  # --set\n"), "{a}");
        assert!(a.contains("[[map]]  # default\nv6 = \"a\"\n"), "{a}");
    }
}
