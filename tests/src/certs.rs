//! Certificates made at test time with the `openssl` command-line tool: self-signed ones
//! for the HTTPS listener's SNI names and for the admin listener.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

/// A self-signed certificate and its key, as PEM text, DER, and files.
#[derive(Debug, Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCert {
    /// A P-256 key and a certificate for host name `name` (CN and subjectAltName), written
    /// in `dir` (which must exist); `tag` keeps the files of several certificates apart.
    pub fn generate(dir: &Path, name: &str, tag: &str) -> Result<Self> {
        Self::generate_for(dir, name, &format!("DNS:{name}"), tag)
    }

    /// A certificate for the loopback address, as a client of `https://127.0.0.1:PORT`
    /// (or `https://localhost:PORT`) verifies it.
    pub fn loopback(dir: &Path, tag: &str) -> Result<Self> {
        Self::generate_for(dir, "localhost", "IP:127.0.0.1,DNS:localhost", tag)
    }

    /// A certificate with common name `cn` and subjectAltName `san` (`DNS:a,IP:b`).
    pub fn generate_for(dir: &Path, cn: &str, san: &str, tag: &str) -> Result<Self> {
        let cert_file = dir.join(format!("{tag}.crt"));
        let key_file = dir.join(format!("{tag}.key"));
        let der = dir.join(format!("{tag}.der"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
            "-keyout",
            path_str(&key_file)?,
            "-out",
            path_str(&cert_file)?,
        ])?;
        openssl(&[
            "x509",
            "-in",
            path_str(&cert_file)?,
            "-outform",
            "DER",
            "-out",
            path_str(&der)?,
        ])?;
        Ok(TestCert {
            cert_pem: std::fs::read_to_string(&cert_file)?,
            key_pem: std::fs::read_to_string(&key_file)?,
            der: std::fs::read(&der)?,
            cert_file,
            key_file,
        })
    }

    /// The certificate as a root a reqwest client trusts.
    pub fn root(&self) -> Result<reqwest::Certificate> {
        Ok(reqwest::Certificate::from_pem(self.cert_pem.as_bytes())?)
    }
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))
}

fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .context("running the openssl command-line tool")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
