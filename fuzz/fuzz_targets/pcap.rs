#![no_main]
//! `nat64 replay`'s input side on arbitrary bytes: `replay::read_capture`
//! (pcap and pcapng, through a file as the CLI does), `strip_link` on
//! every frame, and a replay of small captures through the translator
//! configured by examples/daemon.toml. No panics; what replay emits is
//! whole IP packets, counted right.

use nat64::config::{FileConfig, Settings};
use nat64::replay::{read_capture, replay_frames, strip_link};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let text = include_str!("../../examples/daemon.toml");
        FileConfig::parse(text, "examples/daemon.toml")
            .and_then(|f| f.validate("examples/daemon.toml"))
            .unwrap_or_else(|e| panic!("examples/daemon.toml: {e}"))
    })
}

/// One scratch file per fuzzing process (in memory where /dev/shm exists).
fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("nat64-fuzz-pcap-{}", std::process::id()))
    })
}

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("writing the scratch capture");
    let Ok(frames) = read_capture(path) else {
        return;
    };
    for f in &frames {
        if let Ok(ip) = strip_link(f.link, &f.data) {
            assert!(ip.len() <= f.data.len());
            assert_eq!(
                ip,
                &f.data[f.data.len() - ip.len()..],
                "strip_link returns a suffix"
            );
        }
    }
    if frames.len() > 16 {
        return;
    }
    let until = data.last().map(|b| Duration::from_secs(u64::from(*b)));
    let Ok(report) = replay_frames(settings(), &frames, until, false) else {
        return;
    };
    assert_eq!(report.packets_in.min(frames.len()), report.packets_in);
    assert_eq!(report.packets_out, report.emitted.len());
    for e in &report.emitted {
        let p = &e.data;
        let declared = match p.first().map(|b| b >> 4) {
            Some(4) if p.len() >= 20 => usize::from(u16::from_be_bytes([p[2], p[3]])),
            Some(6) if p.len() >= 40 => 40 + usize::from(u16::from_be_bytes([p[4], p[5]])),
            _ => panic!("replay emitted {} bytes that are no IP packet", p.len()),
        };
        assert_eq!(
            declared,
            p.len(),
            "replay emitted a packet whose header disagrees"
        );
    }
});
