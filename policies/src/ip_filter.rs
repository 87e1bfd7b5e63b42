//! `ip_filter`: CIDR allow and deny lists on the client address. `X-Forwarded-For` is
//! believed only when the TCP peer is a trusted proxy; then the right-most address that is
//! not a trusted proxy is the client.

use std::net::IpAddr;

use ipnet::IpNet;

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
            let net = parse_cidr(s);
            if net.is_none() {
                p.push(format!("{name}[{i}]"), "must be an IP address or CIDR");
            }
            net
        })
        .collect()
}

fn contains(list: &[IpNet], ip: IpAddr) -> bool {
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
