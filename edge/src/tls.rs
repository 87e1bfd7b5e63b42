//! The HTTPS listener: certificates from the store, chosen per handshake by SNI, replaced
//! at run time without a restart.
//!
//! [`Certs`] holds the current [`CertIndex`] behind its own `ArcSwap`: it never has to
//! agree with the routing snapshot. A handshake checks it against the store's revision
//! (lock-free) and recompiles it first when the store's certificates changed, so a
//! certificate the REST API has stored is served from the very next handshake; [`follow`]
//! does the same on every store change to report bad certificates early. The listener is
//! bound once at start ([`listen_addr`]): Pingora cannot add listeners to a running
//! server, so certificates stored while no HTTPS listener is bound need a restart.
//!
//! Depends on `storage` (the certificate specs) and Pingora's OpenSSL layer only.

mod index;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::ssl::NameType;

pub use index::{CertError, CertIndex, Certified};

/// The HTTPS listener when `--tls-listen` is not given but the store holds certificates:
/// `0.0.0.0:8443`.
pub const DEFAULT_TLS_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443);

/// Why the HTTPS listener cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("creating the TLS acceptor: {0}")]
    Acceptor(String),
}

/// Where the HTTPS listener binds: `flag` when given; else [`DEFAULT_TLS_LISTEN`] when the
/// store holds certificates at start; else nowhere (`None`).
pub fn listen_addr(flag: Option<SocketAddr>, has_certs: bool) -> Option<SocketAddr> {
    flag.or(has_certs.then_some(DEFAULT_TLS_LISTEN))
}

/// The certificates being served, kept in step with the store. Shared by the handshake
/// callback and [`follow`].
pub struct Certs {
    current: ArcSwap<Served>,
    store: storage::Store,
}

/// An index and the store revision it is known to match.
struct Served {
    revision: u64,
    index: Arc<CertIndex>,
}

impl Certs {
    /// Compiles the store's current certificates; those that do not parse are left out
    /// and returned.
    pub fn new(store: storage::Store) -> (Arc<Self>, Vec<CertError>) {
        let (revision, config) = store.current();
        let (index, errors) = CertIndex::compile(&config.certificates);
        let served = Served {
            revision,
            index: Arc::new(index),
        };
        let certs = Certs {
            current: ArcSwap::from_pointee(served),
            store,
        };
        (Arc::new(certs), errors)
    }

    /// The index for the store's current revision, so a certificate stored by a request
    /// that has been answered is served from the next handshake on. Cost: two lock-free
    /// loads when nothing changed; after a store change, a comparison of the certificate
    /// lists, and a parse of them (returning the ones left out) only when they differ.
    pub fn refresh(&self) -> (Arc<CertIndex>, Vec<CertError>) {
        let served = self.current.load_full();
        let (revision, config) = self.store.current();
        if served.revision >= revision {
            return (served.index.clone(), Vec::new());
        }
        let (index, errors) = if served.index.is_compiled_from(&config.certificates) {
            (served.index.clone(), Vec::new())
        } else {
            let (index, errors) = CertIndex::compile(&config.certificates);
            (Arc::new(index), errors)
        };
        let next = Arc::new(Served { revision, index });
        // Concurrent refreshes: a newer revision is never replaced by an older one.
        self.current.rcu(|current| {
            if current.revision >= next.revision {
                current.clone()
            } else {
                next.clone()
            }
        });
        (self.current.load().index.clone(), errors)
    }
}

/// The handshake callback: picks the certificate for the client's SNI name.
struct BySni(Arc<Certs>);

#[async_trait]
impl TlsAccept for BySni {
    /// With no certificate at all the handshake fails (the client sees an alert).
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let (index, errors) = self.0.refresh();
        for e in errors {
            eprintln!("tollgate: TLS: not serving {e}");
        }
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
        let Some(cert) = index.select(sni.as_deref()) else {
            return;
        };
        if let Err(e) = cert.apply(ssl) {
            eprintln!("tollgate: TLS: setting certificate {}: {e}", cert.id());
        }
    }
}

/// TLS settings of the HTTPS listener: Mozilla "intermediate" protocols and ciphers, the
/// certificate chosen per handshake from `certs`, ALPN `h2` preferred over `http/1.1`.
pub fn settings(certs: Arc<Certs>) -> Result<TlsSettings, TlsError> {
    let mut settings = TlsSettings::with_callbacks(Box::new(BySni(certs)))
        .map_err(|e| TlsError::Acceptor(e.to_string()))?;
    settings.enable_h2();
    Ok(settings)
}

/// Follows the store (`changes` from `store.subscribe()`) so that certificate problems
/// are reported when they are stored, not at the next handshake; ends when the store's
/// notifier closes. `bound` says whether an HTTPS listener is serving: without one,
/// stored certificates are reported once as needing a restart.
pub async fn follow(
    mut changes: tokio::sync::watch::Receiver<u64>,
    certs: Arc<Certs>,
    bound: bool,
) {
    let mut told_restart = false;
    loop {
        if changes.changed().await.is_err() {
            return;
        }
        let (index, errors) = certs.refresh();
        for e in errors {
            eprintln!("tollgate: TLS: not serving {e}");
        }
        if !bound && !index.is_empty() && !told_restart {
            told_restart = true;
            eprintln!(
                "tollgate: TLS: certificates are stored but no HTTPS listener is bound: \
                 restart tollgate (listeners cannot be added while it runs) to serve HTTPS \
                 on --tls-listen (default {DEFAULT_TLS_LISTEN})"
            );
        }
    }
}

#[cfg(test)]
mod tests;
