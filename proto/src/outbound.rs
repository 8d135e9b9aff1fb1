//! Who a function may reach over the network: allow-list entries `HOST:PORT` (a function's,
//! set at upload, and the platform's, `--allow-outbound`), and the addresses no name may lead
//! to (loopback, private, link-local, cloud metadata) unless an entry names the address
//! itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One allow-list entry: `api.example.com:443`, `*.example.com:443` (the domain's subdomains),
/// `10.0.0.7:8080`, `[::1]:9000`, `*:443` (any host); `:*` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Name(String),
    /// `*.suffix`: names ending in `.suffix`.
    Subdomains(String),
    Address(IpAddr),
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("{entry:?} is not HOST:PORT ({why}), e.g. api.example.com:443");
        let (host, port) = entry.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port = match port {
            "*" => None,
            port => match port.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(bad("the port is not 1 to 65535 or *")),
            },
        };
        if host.contains(':') && !host.starts_with('[') {
            return Err(bad("an IPv6 address goes in brackets, as [::1]:80"));
        }
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            HostMatch::Address(
                inner
                    .parse()
                    .map_err(|_| bad("not an IPv6 address in brackets"))?,
            )
        } else if let Ok(address) = host.parse::<IpAddr>() {
            HostMatch::Address(address)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostMatch::Subdomains(dns_name(suffix).ok_or_else(|| bad("not a host name"))?)
        } else {
            HostMatch::Name(dns_name(host).ok_or_else(|| bad("not a host name"))?)
        };
        Ok(HostPattern { host, port })
    }
}

/// `name` in lower case, if it is a DNS name (letters, digits, hyphens, dots).
fn dns_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then(|| name.to_ascii_lowercase())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Any => f.write_str("*")?,
            HostMatch::Name(name) => f.write_str(name)?,
            HostMatch::Subdomains(suffix) => write!(f, "*.{suffix}")?,
            HostMatch::Address(IpAddr::V6(address)) => write!(f, "[{address}]")?,
            HostMatch::Address(address) => write!(f, "{address}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => f.write_str(":*"),
        }
    }
}

impl HostPattern {
    /// Whether the entry names `address` itself on `port` (`*` or a name does not).
    pub fn names_address(&self, address: IpAddr, port: u16) -> bool {
        self.host == HostMatch::Address(address) && self.port.is_none_or(|own| own == port)
    }

    /// Whether a request to `host` (a name or an address, as in its URL) on `port` matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|own| own == port) && self.matches_any_port(host)
    }

    /// Whether `host` matches on some port (a name lookup, before a port is known).
    pub fn matches_any_port(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match (&self.host, host.parse::<IpAddr>()) {
            (HostMatch::Any, _) => true,
            (HostMatch::Address(own), Ok(address)) => *own == address,
            (HostMatch::Address(_), Err(_)) | (_, Ok(_)) => false,
            (HostMatch::Name(name), Err(_)) => name.eq_ignore_ascii_case(host),
            (HostMatch::Subdomains(suffix), Err(_)) => {
                let host = host.to_ascii_lowercase();
                host.strip_suffix(suffix.as_str())
                    .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
            }
        }
    }
}

/// Why no name may lead to `address`, if none may: it is not a public address (nor one that
/// carries a non-public IPv4 address inside it).
pub fn special_address(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4 == Ipv4Addr::new(169, 254, 169, 254)
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
        || v4 == Ipv4Addr::new(192, 0, 0, 192)
    {
        Some("a cloud metadata endpoint")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if v4.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
    {
        Some("a private address")
    } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 || a >= 240 {
        Some("not a unicast address")
    } else {
        None
    }
}

/// The metadata endpoint of AWS over IPv6.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn special_v6(v6: Ipv6Addr) -> Option<&'static str> {
    let s = v6.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from(((high as u32) << 16) | low as u32);
    if v6.is_loopback() {
        return Some("a loopback address");
    }
    if v6 == AWS_METADATA_V6 {
        return Some("a cloud metadata endpoint");
    }
    // IPv4 addresses inside IPv6 ones (mapped, compatible, NAT64, 6to4) are judged as IPv4.
    let inner = match s {
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            Some(embedded(high, low))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(embedded(high, low)),
        [0x64, 0xff9b, 1, ..] => return Some("a private address"),
        [0x2002, high, low, ..] => Some(embedded(high, low)),
        _ => None,
    };
    if let Some(inner) = inner {
        return special_v4(inner);
    }
    if s[0] == 0x2001 && s[1] == 0 {
        Some("a Teredo address")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if v6.is_unspecified() || v6.is_multicast() {
        Some("not a unicast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(entry: &str) -> HostPattern {
        entry.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn entries_parse_and_print_back() {
        for entry in [
            "api.example.com:443",
            "*.example.com:443",
            "10.0.0.7:8080",
            "[::1]:9000",
            "*:443",
            "example.com:*",
        ] {
            assert_eq!(pattern(entry).to_string(), entry);
        }
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:99999",
            "ex ample.com:80",
            ":80",
            "[x]:80",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_match_hosts_and_ports() {
        let api = pattern("API.example.com:443");
        assert!(api.matches("api.example.com", 443));
        assert!(!api.matches("api.example.com", 80));
        assert!(!api.matches("evil.com", 443));
        let subs = pattern("*.example.com:*");
        assert!(subs.matches("a.b.example.com", 8080));
        assert!(!subs.matches("example.com", 443));
        assert!(!subs.matches("badexample.com", 443));
        let local = pattern("127.0.0.1:8080");
        assert!(local.matches("127.0.0.1", 8080));
        assert!(!local.matches("localhost", 8080));
        assert!(pattern("[::1]:9000").matches("[::1]", 9000));
        // A name pattern never matches an address, nor `*` a port it does not name.
        assert!(!pattern("example.com:80").matches("93.184.216.34", 80));
        assert!(pattern("*:80").matches("93.184.216.34", 80));
        // Only an address entry names an address.
        let ip = "127.0.0.1".parse().unwrap();
        assert!(pattern("127.0.0.1:*").names_address(ip, 80));
        assert!(!pattern("*:*").names_address(ip, 80));
        assert!(!pattern("127.0.0.1:81").names_address(ip, 80));
    }

    #[test]
    fn special_addresses_are_named() {
        for (address, why) in [
            ("127.0.0.1", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("192.168.0.1", "a private address"),
            ("172.16.0.1", "a private address"),
            ("100.64.0.1", "a private address"),
            ("fd12::1", "a private address"),
            ("169.254.169.254", "a cloud metadata endpoint"),
            ("fd00:ec2::254", "a cloud metadata endpoint"),
            ("169.254.1.1", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("0.0.0.0", "not a unicast address"),
            ("::127.0.0.1", "a loopback address"),
            ("64:ff9b::a9fe:a9fe", "a cloud metadata endpoint"),
            ("2002:a00:1::1", "a private address"),
            ("2001::1", "a Teredo address"),
            ("192.0.0.192", "a cloud metadata endpoint"),
            ("198.18.0.1", "a private address"),
            ("240.0.0.1", "not a unicast address"),
        ] {
            assert_eq!(
                special_address(address.parse().unwrap()),
                Some(why),
                "{address}"
            );
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert_eq!(special_address(public.parse().unwrap()), None, "{public}");
        }
    }
}
