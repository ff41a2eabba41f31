//! The map file of `napt = "none"` (`map-file`, ADR 0009): explicit
//! address mappings (RFC 7757) kept apart from `nat64.toml`, so that
//! provisioning can rewrite it and send SIGHUP.
//!
//! One mapping per line, `IPV4[/LEN] IPV6[/LEN]`, the suffix lengths equal
//! (`192.0.2.0/24 2001:db8:6::/120`); a leading `map` is accepted, so
//! Tayga's `map` lines can be pasted as they are. `#` starts a comment.
//!
//! Conflicts (two entries claiming the same IPv4 or the same IPv6 prefix)
//! are resolved, never fatal, and every entry left out is reported:
//! * a later line replaces an earlier one it collides with;
//! * an entry of the config file (`[[map]]`) beats a map-file line.
//!
//! A line that does not parse is reported and skipped; the others load.

use nat64_core::eam::{Eam, EamTable};
use std::path::Path;

/// One line of the map file that holds a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub eam: Eam,
}

/// A parsed map file: the mappings, and the lines that were skipped (with
/// why), ready to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub lines: Vec<Line>,
    pub skipped: Vec<String>,
}

/// Parses the text of a map file; `name` is used in the messages.
pub fn parse(text: &str, name: &str) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        if first == "map" {
            first = words.next().unwrap_or("");
        }
        let (v4, v6, extra) = (first, words.next(), words.next());
        let result = match (v6, extra) {
            (Some(v6), None) => Eam::parse(v4, v6).map_err(|e| e.to_string()),
            _ => Err("expected two fields, `IPV4[/LEN] IPV6[/LEN]`".to_string()),
        };
        match result {
            Ok(eam) => out.lines.push(Line { number, eam }),
            Err(e) => out
                .skipped
                .push(format!("{name} line {number} skipped: `{line}`: {e}")),
        }
    }
    out
}

/// Reads and parses a map file.
pub fn load(path: &Path) -> std::io::Result<Parsed> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text, &path.display().to_string()))
}

/// The line of the map-file entry `gone`, forgotten as it leaves the table.
fn take_line(origin: &mut Vec<(Eam, usize)>, gone: &Eam) -> usize {
    origin
        .iter()
        .position(|(e, _)| e == gone)
        .map(|i| origin.swap_remove(i).1)
        .unwrap_or(0)
}

/// The EAM table from the config file's entries (already free of conflicts
/// among themselves) and the map file's lines, with the documented
/// precedence. Returns the table and one message per entry left out.
pub fn merge(config: &[Eam], file: &[Line], name: &str) -> (EamTable, Vec<String>) {
    let mut table = EamTable::new();
    let mut notes = Vec::new();
    // Line numbers of the map-file entries in the table, to name them.
    let mut origin: Vec<(Eam, usize)> = Vec::new();
    for l in file {
        for gone in table.insert(l.eam) {
            notes.push(format!(
                "{name} line {} ({gone}) ignored: line {} ({}) maps the same prefix, and the \
                 later line wins",
                take_line(&mut origin, &gone),
                l.number,
                l.eam
            ));
        }
        origin.push((l.eam, l.number));
    }
    for c in config {
        for gone in table.insert(*c) {
            notes.push(format!(
                "{name} line {} ({gone}) ignored: the config file's [[map]] {c} maps the same \
                 prefix, and the config file wins",
                take_line(&mut origin, &gone)
            ));
        }
    }
    (table, notes)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_pairs_tayga_map_lines_and_comments() {
        let p = parse(
            "# hosts\n192.0.2.0/24 2001:db8:6::/120\nmap 198.51.100.7 2001:db8:7::7 # one\n\n",
            "m",
        );
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[0].number, 2);
        assert_eq!(p.lines[1].number, 3);
        assert_eq!(p.lines[1].eam.v4(), (Ipv4Addr::new(198, 51, 100, 7), 32));
        assert_eq!(p.lines[1].eam.v6(), (v6("2001:db8:7::7"), 128));
    }

    #[test]
    fn bad_lines_are_skipped_with_the_reason_others_load() {
        let p = parse(
            "192.0.2.0/24 2001:db8:6::/124\nnonsense\n192.0.2.9 2001:db8::9 extra\n203.0.113.1 2001:db8::1\n",
            "f",
        );
        assert_eq!(p.lines.len(), 1);
        assert_eq!(p.lines[0].number, 4);
        assert_eq!(p.skipped.len(), 3);
        assert!(p.skipped[0].contains("f line 1"), "{}", p.skipped[0]);
        assert!(
            p.skipped[0].contains("IPv4 suffix may not be longer"),
            "{}",
            p.skipped[0]
        );
        assert!(p.skipped[1].contains("line 2"));
        assert!(p.skipped[2].contains("two fields"));
    }

    #[test]
    fn later_line_replaces_earlier_and_config_beats_file() {
        let p = parse(
            "192.0.2.50 2001:db8:6::50\n192.0.2.50 2001:db8:6::51\n198.51.100.1 2001:db8:9::1\n",
            "f",
        );
        let cfg = [Eam::parse("198.51.100.1", "2001:db8:a::1").unwrap()];
        let (t, notes) = merge(&cfg, &p.lines, "f");
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.v4_to_v6(Ipv4Addr::new(192, 0, 2, 50)),
            Some(v6("2001:db8:6::51"))
        );
        assert_eq!(
            t.v4_to_v6(Ipv4Addr::new(198, 51, 100, 1)),
            Some(v6("2001:db8:a::1"))
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("f line 1") && notes[0].contains("line 2"),
            "{}",
            notes[0]
        );
        assert!(
            notes[1].contains("f line 3") && notes[1].contains("config file wins"),
            "{}",
            notes[1]
        );
    }
}
