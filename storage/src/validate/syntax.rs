//! Checks of small strings: addresses, host names, paths, methods, PEM.

use std::net::{SocketAddr, ToSocketAddrs};

/// `host:port` with an IP address (`[::1]:80` for IPv6) or a host name that resolves now,
/// and a port above 0. `Err` says what is wrong.
pub(crate) fn check_addr(addr: &str) -> Result<(), String> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return if sa.port() == 0 {
            Err("port must be > 0".to_owned())
        } else {
            Ok(())
        };
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("must be host:port".to_owned());
    };
    let port = match port.parse::<u16>() {
        Ok(0) => return Err("port must be > 0".to_owned()),
        Ok(port) => port,
        Err(_) => return Err("must be host:port with a port of 1 to 65535".to_owned()),
    };
    if !is_host(&host.to_ascii_lowercase(), false) {
        return Err(format!("{host} is not a valid host name or IP address"));
    }
    let resolved = (host, port)
        .to_socket_addrs()
        .is_ok_and(|mut found| found.next().is_some());
    if resolved {
        Ok(())
    } else {
        Err(format!("cannot resolve host {host}"))
    }
}

/// A lowercase ASCII host name (letters, digits, `-`, dot-separated labels of 1 to 63
/// characters, at most 253 in all); with `wildcard`, `*.` may lead.
pub(crate) fn is_host(host: &str, wildcard: bool) -> bool {
    let rest = match host.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => host,
    };
    !rest.is_empty()
        && host.len() <= 253
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// A route path: `/prefix`, `=/exact`, with `{name}` only as a whole segment. `Err` says
/// what is wrong.
pub(crate) fn check_route_path(path: &str) -> Result<(), &'static str> {
    let path = path.strip_prefix('=').unwrap_or(path);
    if !path.starts_with('/') {
        return Err("must start with / (or =/ for an exact path)");
    }
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("must not contain spaces or control characters");
    }
    for segment in path.split('/') {
        if !segment.contains(['{', '}']) {
            continue;
        }
        let name = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or("a {param} must be a whole segment")?;
        if name.is_empty() {
            return Err("a {param} needs a name");
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("a {param} name is letters, digits and _");
        }
    }
    Ok(())
}

/// An HTTP method as written in a route: an uppercase token (`GET`, `PURGE`).
pub(crate) fn is_method(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase())
}

/// A header value that can be sent: visible ASCII, spaces and tabs.
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Text that looks like PEM: a `-----BEGIN` line first and an `-----END` line.
pub(crate) fn is_pem(text: &str) -> bool {
    text.trim_start().starts_with("-----BEGIN ") && text.contains("-----END ")
}
