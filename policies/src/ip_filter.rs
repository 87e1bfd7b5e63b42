//! `ip_filter`: CIDR allow and deny lists on the client address. `X-Forwarded-For` is
//! believed only when the TCP peer is a trusted proxy; then the right-most address that is
//! not a trusted proxy is the client.
//!
//! Addresses are compared in canonical form: an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`,
//! what a dual-stack listener reports for an IPv4 client) is the IPv4 address, and a list
//! entry written in that form (`::ffff:10.0.0.0/104`) is the IPv4 network (`10.0.0.0/8`).
//! Otherwise such an entry would never match, since clients are compared as IPv4.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::problem::{Problem, Problems};
use crate::request::RequestView;
use crate::spec::parse_cidr;
use crate::verdict::{Rejection, Verdict};

pub use crate::spec::IpFilterSpec;

const KIND: &str = "ip_filter";
const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// A compiled `ip_filter` policy.
#[derive(Debug, Clone)]
pub struct IpFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
}

fn parse_list(name: &str, list: &[String], p: &mut Problems) -> Vec<IpNet> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let net = parse_cidr(s).map(canonical);
            if net.is_none() {
                p.push(format!("{name}[{i}]"), "must be an IP address or CIDR");
            }
            net
        })
        .collect()
}

/// An IPv4-mapped IPv6 network of /96 or longer as the IPv4 network it holds; any other
/// network as it is.
fn canonical(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net;
    };
    let mapped = v6.prefix_len().checked_sub(96).and_then(|len| {
        let v4 = v6.network().to_ipv4_mapped()?;
        Ipv4Net::new(v4, len).ok()
    });
    mapped.map_or(net, IpNet::V4)
}

/// Whether `ip` (canonical: see the module doc) is in `list`.
fn contains(list: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    list.iter().any(|n| n.contains(&ip))
}

impl IpFilter {
    pub fn compile(spec: &IpFilterSpec) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::new();
        let filter = Self {
            allow: parse_list("allow", &spec.allow, &mut p),
            deny: parse_list("deny", &spec.deny, &mut p),
            trusted_proxies: parse_list("trusted_proxies", &spec.trusted_proxies, &mut p),
        };
        if p.is_empty() {
            Ok(filter)
        } else {
            Err(p.into_vec())
        }
    }

    /// The client address as this filter sees it; `None` when a trusted proxy sent an
    /// `X-Forwarded-For` entry that is not an address.
    pub fn client_ip(&self, view: &RequestView<'_>) -> Option<IpAddr> {
        let peer = view.peer_ip.to_canonical();
        if !contains(&self.trusted_proxies, peer) {
            return Some(peer);
        }
        let mut client = peer;
        for value in view.headers.get_all(X_FORWARDED_FOR).iter().rev() {
            let value = value.to_str().ok()?;
            for entry in value.rsplit(',') {
                let ip = entry.trim().parse::<IpAddr>().ok()?.to_canonical();
                client = ip;
                if !contains(&self.trusted_proxies, ip) {
                    return Some(ip);
                }
            }
        }
        // Every hop is a trusted proxy: the left-most one is the client.
        Some(client)
    }

    /// 403 when the client address is denied, or not allowed by a non-empty allow list.
    pub fn on_request(&self, view: &RequestView<'_>) -> Verdict {
        let Some(ip) = self.client_ip(view) else {
            return Verdict::Respond(Rejection::forbidden(KIND, "invalid x-forwarded-for"));
        };
        if contains(&self.deny, ip) || (!self.allow.is_empty() && !contains(&self.allow, ip)) {
            return Verdict::Respond(Rejection::forbidden(KIND, "client address not allowed"));
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method};

    use super::*;
    use crate::testing::{outcome, view};

    fn filter(allow: &[&str], deny: &[&str]) -> IpFilter {
        IpFilter::compile(&IpFilterSpec {
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            trusted_proxies: vec![],
        })
        .expect("valid filter")
    }

    fn status(f: &IpFilter, peer: &str) -> u16 {
        outcome(&f.on_request(&view(&Method::GET, "/", &HeaderMap::new(), peer))).0
    }

    #[test]
    fn mapped_entries_match_ipv4_clients_in_either_form() {
        let deny = filter(&[], &["::ffff:10.0.0.0/104", "::ffff:192.0.2.7"]);
        for peer in [
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "192.0.2.7",
            "::ffff:192.0.2.7",
        ] {
            assert_eq!(status(&deny, peer), 403, "{peer}");
        }
        for peer in ["11.0.0.1", "::ffff:11.0.0.1", "2001:db8::1"] {
            assert_eq!(status(&deny, peer), 0, "{peer}");
        }
        let allow = filter(&["::ffff:10.0.0.0/104"], &[]);
        assert_eq!(status(&allow, "10.9.9.9"), 0);
        assert_eq!(status(&allow, "::ffff:10.9.9.9"), 0);
        assert_eq!(status(&allow, "11.0.0.1"), 403);
    }

    #[test]
    fn mapped_networks_become_ipv4_and_others_stay() {
        let net = |s: &str| canonical(s.parse().expect("net"));
        assert_eq!(net("::ffff:10.0.0.0/104"), net("10.0.0.0/8"));
        assert_eq!(net("::ffff:0:0/96"), net("0.0.0.0/0"));
        assert_eq!(net("::ffff:10.1.2.3/128"), net("10.1.2.3/32"));
        assert_eq!(net("::/0").to_string(), "::/0");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
    }
}
