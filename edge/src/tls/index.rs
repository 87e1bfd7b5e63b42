//! The certificates of the HTTPS listener, parsed once and indexed by SNI name.

use std::collections::HashMap;
use std::sync::Arc;

use pingora_core::tls::ext;
use pingora_core::tls::pkey::{PKey, Private};
use pingora_core::tls::ssl::SslRef;
use pingora_core::tls::x509::X509;

/// Why one stored certificate cannot be served. The others are served regardless.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate {id}: cert is not a PEM certificate chain: {reason}")]
    BadChain { id: String, reason: String },
    #[error("certificate {id}: cert holds no certificate")]
    EmptyChain { id: String },
    #[error("certificate {id}: key is not a PEM private key: {reason}")]
    BadKey { id: String, reason: String },
    #[error("certificate {id}: key does not match the first certificate of the chain")]
    KeyMismatch { id: String },
}

/// One servable certificate: the leaf, the rest of its chain and its private key.
pub struct Certified {
    id: String,
    leaf: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl std::fmt::Debug for Certified {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certified")
            .field("id", &self.id)
            .field("chain_len", &(self.chain.len() + 1))
            .finish_non_exhaustive()
    }
}

impl Certified {
    /// Parses the PEM chain (leaf first) and key of `spec` and checks that they belong
    /// together.
    pub fn compile(spec: &storage::CertificateSpec) -> Result<Self, CertError> {
        let id = spec.id.clone();
        let mut certs =
            X509::stack_from_pem(spec.cert.as_bytes()).map_err(|e| CertError::BadChain {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(CertError::EmptyChain { id });
        }
        let leaf = certs.remove(0);
        let key =
            PKey::private_key_from_pem(spec.key.as_bytes()).map_err(|e| CertError::BadKey {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(CertError::KeyMismatch { id });
        }
        Ok(Certified {
            id,
            leaf,
            chain: certs,
            key,
        })
    }

    /// The id of the stored certificate.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The leaf certificate (what a client sees first).
    pub fn leaf(&self) -> &X509 {
        &self.leaf
    }

    /// Sets leaf, chain and key on the connection being handshaken. `Err` comes from
    /// OpenSSL (allocation); the handshake then fails for want of a certificate.
    pub fn apply(&self, ssl: &mut SslRef) -> Result<(), pingora_core::tls::error::ErrorStack> {
        ext::ssl_use_certificate(ssl, &self.leaf)?;
        for cert in &self.chain {
            ext::ssl_add_chain_cert(ssl, cert)?;
        }
        ext::ssl_use_private_key(ssl, &self.key)
    }
}

/// Every servable certificate, looked up by the SNI name a client sends.
///
/// Lookup order: the exact name, then a `*.parent` wildcard covering one label (as TLS
/// clients check it: `*.example.com` covers `a.example.com`, not `example.com` nor
/// `a.b.example.com`), then the default, the first certificate in the store's order (by
/// id). When two certificates name the same host, the first one by id serves it.
#[derive(Debug, Default)]
pub struct CertIndex {
    certs: Vec<Arc<Certified>>,
    exact: HashMap<String, usize>,
    /// Keyed by the parent domain of the wildcard (`example.com` for `*.example.com`).
    wildcard: HashMap<String, usize>,
    /// What this index was compiled from, to tell whether the store changed it.
    source: Vec<storage::CertificateSpec>,
}

impl CertIndex {
    /// Parses every certificate (cost: one PEM parse each). A certificate that does not
    /// parse is left out and reported; the others are indexed.
    pub fn compile(specs: &[storage::CertificateSpec]) -> (Self, Vec<CertError>) {
        let mut index = CertIndex {
            source: specs.to_vec(),
            ..CertIndex::default()
        };
        let mut errors = Vec::new();
        for spec in specs {
            let cert = match Certified::compile(spec) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let at = index.certs.len();
            index.certs.push(Arc::new(cert));
            for sni in &spec.snis {
                let name = normalize(sni);
                match name.strip_prefix("*.") {
                    Some(parent) => index.wildcard.entry(parent.to_owned()),
                    None => index.exact.entry(name),
                }
                .or_insert(at);
            }
        }
        (index, errors)
    }

    /// Whether this index was compiled from exactly `specs`.
    pub fn is_compiled_from(&self, specs: &[storage::CertificateSpec]) -> bool {
        self.source == specs
    }

    /// How many certificates can be served.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificate for `sni` (`None`: the client sent no name): exact name, then
    /// wildcard, then the default. `None` only when the index is empty.
    pub fn select(&self, sni: Option<&str>) -> Option<&Arc<Certified>> {
        let by_name = sni.map(normalize).and_then(|name| {
            self.exact.get(&name).copied().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent).copied()
            })
        });
        self.certs.get(by_name.unwrap_or(0))
    }
}

/// SNI names compare case-insensitively and without a trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
