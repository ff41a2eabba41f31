//! RFC 6146 stateful NAT64 (being built: see issue 3).
