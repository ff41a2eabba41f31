//! The `nat64` daemon as a library: configuration, TUN data plane,
//! plumbing, counters. `main.rs` is the CLI over it; integration tests use
//! the pieces directly.

pub mod config;
pub mod control;
pub mod dataplane;
pub mod engine;
pub mod fastpath;
pub mod gen;
pub mod leases;
pub mod lookup;
pub mod mapfile;
pub mod maplog;
pub mod notify;
pub mod plumbing;
pub mod pref64;
pub mod privilege;
pub mod ratelimit;
pub mod recovery;
pub mod replay;
pub mod run;
pub mod snippets;
pub mod stats;
pub mod tayga;
