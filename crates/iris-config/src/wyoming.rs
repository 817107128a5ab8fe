//! `[wyoming]`: who may use the Wyoming server. The protocol has no authentication at all, and
//! a `transcript` event makes Iris answer (and could run the owner's home actions), so the
//! server is off until the owner turns it on, answers this machine and the listed addresses
//! only, and runs no tools for Wyoming clients unless the owner allows it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The most entries `allow` may hold.
pub const MAX_ALLOW: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Wyoming {
    /// Answer Wyoming clients (where: `iris serve --wyoming ADDR`). Never before set-up.
    pub enabled: bool,
    /// Client addresses besides this machine's own: IPs ("192.168.1.20") or ranges
    /// ("192.168.1.0/24"), e.g. the Home Assistant host.
    pub allow: Vec<String>,
    /// A Wyoming client's question may run tools (timers, the home-action webhook).
    pub tools: bool,
}

impl Wyoming {
    /// Whether a client at `ip` may talk to the server: this machine, or a listed address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.allow.iter().filter_map(|a| Range::parse(a).ok()).any(|r| r.contains(ip))
    }

    /// The first `allow` entry that is not an address or a range, and why.
    pub fn check(&self) -> Result<(), String> {
        if self.allow.len() > MAX_ALLOW {
            return Err(format!("has {} entries; list at most {MAX_ALLOW}", self.allow.len()));
        }
        for a in &self.allow {
            Range::parse(a)?;
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:192.168.1.20`, from a dual-stack socket) is its IPv4 self.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address and how many leading bits of it must match.
struct Range {
    base: IpAddr,
    bits: u32,
}

impl Range {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("has {text:?}; use an address such as \"192.168.1.20\" or a range such as \"192.168.1.0/24\"");
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u32>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let base = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if base.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Self { base, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, width) = match (self.base, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        if self.bits == 0 {
            return true;
        }
        let shift = width - self.bits;
        a >> shift == b >> shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(allow: &[&str]) -> Wyoming {
        Wyoming { enabled: true, allow: allow.iter().map(|s| s.to_string()).collect(), tools: false }
    }

    #[test]
    fn loopback_and_listed_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let none = w(&[]);
        assert!(none.allows(ip("127.0.0.1")) && none.allows(ip("::1")) && none.allows(ip("::ffff:127.0.0.1")));
        assert!(!none.allows(ip("192.168.1.20")));
        let home = w(&["192.168.1.20", "10.0.0.0/8", "fd00::/8"]);
        assert!(home.allows(ip("192.168.1.20")) && home.allows(ip("::ffff:192.168.1.20")));
        assert!(!home.allows(ip("192.168.1.21")));
        assert!(home.allows(ip("10.200.3.4")) && !home.allows(ip("11.0.0.1")));
        assert!(home.allows(ip("fd12::1")) && !home.allows(ip("fe80::1")));
        assert!(w(&["0.0.0.0/0"]).allows(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["192.168.1", "10.0.0.0/33", "home-assistant.local", "1.2.3.4/x", ""] {
            let e = w(&[bad]).check().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(w(&["192.168.1.0/24", "::1"]).check().is_ok());
        assert!(w(&vec!["10.0.0.1"; MAX_ALLOW + 1]).check().is_err());
    }
}
