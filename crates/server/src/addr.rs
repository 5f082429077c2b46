//! Network addresses in settings: an address or a CIDR block (`10.1.2.0/24`,
//! `2001:db8::/32`), for the HL7 senders' allowed sources and the trusted
//! reverse proxies; and the client address of an HTTP request behind such a
//! proxy (`X-Forwarded-For`, `Forwarded`), believed only from a trusted one.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether `ip` is `entry` (an address) or inside it (a CIDR block). An
/// entry that does not parse matches nothing.
pub fn matches(ip: IpAddr, entry: &str) -> bool {
    let (base, bits) = match entry.trim().split_once('/') {
        Some((b, n)) => match n.parse::<u32>() {
            Ok(n) => (b, Some(n)),
            Err(_) => return false,
        },
        None => (entry.trim(), None),
    };
    let Ok(base) = base.parse::<IpAddr>() else {
        return false;
    };
    match (canonical(ip), canonical(base)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let n = bits.unwrap_or(32);
            n <= 32 && {
                let mask = u32::MAX.checked_shl(32 - n).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let n = bits.unwrap_or(128);
            n <= 128 && {
                let mask = u128::MAX.checked_shl(128 - n).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
        }
        _ => false,
    }
}

/// Whether `entry` is a valid address or CIDR block.
pub fn valid(entry: &str) -> bool {
    let (base, bits) = match entry.trim().split_once('/') {
        Some((b, n)) => (b, Some(n)),
        None => (entry.trim(), None),
    };
    match base.parse::<IpAddr>() {
        Ok(ip) => bits.is_none_or(|n| {
            n.parse::<u32>()
                .is_ok_and(|n| n <= if ip.is_ipv4() { 32 } else { 128 })
        }),
        Err(_) => false,
    }
}

/// The address of the client: the TCP peer, unless the peer is a trusted
/// proxy, in which case the right-most address of `X-Forwarded-For` (or of
/// `Forwarded: for=`) that is not itself a trusted proxy.
pub fn client(peer: IpAddr, headers: &HeaderMap, trusted: &[String]) -> IpAddr {
    let trusted_ip = |ip: IpAddr| trusted.iter().any(|t| matches(ip, t));
    if !trusted_ip(peer) {
        return canonical(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for").iter() {
        for part in v.to_str().unwrap_or("").split(',') {
            if let Ok(ip) = part.trim().parse::<IpAddr>() {
                hops.push(ip);
            }
        }
    }
    if hops.is_empty() {
        for v in headers.get_all("forwarded").iter() {
            for element in v.to_str().unwrap_or("").split(',') {
                for pair in element.split(';') {
                    if let Some((k, val)) = pair.trim().split_once('=')
                        && k.eq_ignore_ascii_case("for")
                    {
                        let val = val.trim_matches('"');
                        let host = match val.strip_prefix('[') {
                            Some(rest) => rest.split(']').next().unwrap_or(""),
                            None => val.split(':').next().unwrap_or(""),
                        };
                        if let Ok(ip) = host.parse::<IpAddr>() {
                            hops.push(ip);
                        }
                    }
                }
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !trusted_ip(*ip))
        .map(canonical)
        .unwrap_or(canonical(peer))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_blocks() {
        assert!(matches(ip("10.1.2.3"), "10.1.2.3"));
        assert!(!matches(ip("10.1.2.4"), "10.1.2.3"));
        assert!(matches(ip("10.1.2.200"), "10.1.2.0/24"));
        assert!(!matches(ip("10.1.3.1"), "10.1.2.0/24"));
        assert!(matches(ip("8.8.8.8"), "0.0.0.0/0"));
        assert!(matches(ip("::ffff:10.1.2.3"), "10.1.2.0/24"), "mapped IPv4");
        assert!(matches(ip("2001:db8::1"), "2001:db8::/32"));
        assert!(!matches(ip("2001:db9::1"), "2001:db8::/32"));
        assert!(!matches(ip("10.1.2.3"), "10.1.2.0/33"));
        assert!(!matches(ip("10.1.2.3"), "nonsense"));
        assert!(valid("10.0.0.0/8") && valid("::1") && !valid("10.0.0.0/40") && !valid("x"));
    }

    #[test]
    fn forwarded_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.2".parse().unwrap(),
        );
        let trusted = vec!["10.0.0.0/8".to_owned()];
        // From the proxy: the right-most address that is not a proxy.
        assert_eq!(client(ip("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // From anyone else: the header is the client's own word, ignored.
        assert_eq!(client(ip("192.0.2.1"), &h, &trusted), ip("192.0.2.1"));
        assert_eq!(client(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        let mut f = HeaderMap::new();
        f.insert(
            "forwarded",
            "for=192.0.2.60;proto=https, for=\"[2001:db8::17]:4711\""
                .parse()
                .unwrap(),
        );
        assert_eq!(client(ip("10.0.0.1"), &f, &trusted), ip("2001:db8::17"));
        // A proxy that sent nothing: its own address.
        assert_eq!(
            client(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
