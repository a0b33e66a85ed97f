//! Test-signing: a self-signed code-signing certificate generated under `target/` with
//! openssl, Authenticode signatures (SHA-256 with page hashes) with osslsigncode, and
//! signature verification against that certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env;

/// The test-signing certificate and key.
pub struct TestCert {
    /// PEM certificate (also the trust anchor for verification).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Subject of the generated certificate.
pub const SUBJECT: &str = "/CN=XenBus-rs Test Signing (DO NOT TRUST)";

/// The directory holding the certificate.
pub fn cert_dir() -> PathBuf {
    env::target_dir().join("testsign")
}

/// The certificate, generated on first use.
pub fn test_cert() -> Result<TestCert, String> {
    env::ensure_program("openssl", "openssl")?;
    let dir = cert_dir();
    let cert = TestCert {
        cert: dir.join("xenbus-test.pem"),
        key: dir.join("xenbus-test.key"),
    };
    if cert.cert.is_file() && cert.key.is_file() {
        return Ok(cert);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    env::output(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "3650", "-nodes",
            ])
            .args(["-subj", SUBJECT])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .args(["-addext", "extendedKeyUsage=codeSigning"])
            .arg("-keyout")
            .arg(&cert.key)
            .arg("-out")
            .arg(&cert.cert),
    )?;
    println!(
        "xtask: generated test-signing certificate {}",
        cert.cert.display()
    );
    Ok(cert)
}

/// Sign `input` into `output`.
pub fn sign(cert: &TestCert, input: &Path, output: &Path) -> Result<(), String> {
    env::ensure_program("osslsigncode", "osslsigncode")?;
    let _ = std::fs::remove_file(output);
    env::output(
        Command::new("osslsigncode")
            .arg("sign")
            .arg("-certs")
            .arg(&cert.cert)
            .arg("-key")
            .arg(&cert.key)
            .args(["-h", "sha256", "-ph", "-n", "XenBus-rs"])
            .arg("-in")
            .arg(input)
            .arg("-out")
            .arg(output),
    )
    .map(|_| ())
}

/// Verify the Authenticode signature of `image` against `ca` (osslsigncode must print
/// "Signature verification: ok").
pub fn verify(image: &Path, ca: &Path) -> Result<(), String> {
    env::ensure_program("osslsigncode", "osslsigncode")?;
    let out = Command::new("osslsigncode")
        .arg("verify")
        .arg("-in")
        .arg(image)
        .arg("-CAfile")
        .arg(ca)
        .output()
        .map_err(|e| format!("cannot run osslsigncode: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("Signature verification: ok") {
        Ok(())
    } else {
        let reason = text
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .rev()
            .find(|l| !l.trim().is_empty() && !l.contains("Failed"))
            .unwrap_or("no signature")
            .trim()
            .to_string();
        Err(reason)
    }
}
