//! The crypto floor: what the signature operations of one exchange cost on this machine, on one
//! thread, through the same jsonwebtoken and aws-lc-rs calls the server makes. Exchange
//! figures are read as a ratio to it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::BenchError;

/// Time spent on each operation.
const BUDGET: Duration = Duration::from_secs(1);
/// Most operations run for one figure, whatever the budget allows.
const MAX_OPERATIONS: u32 = 10_000_000;
/// Maximum wait for `openssl speed`.
const OPENSSL_LIMIT: Duration = Duration::from_secs(60);
/// A JWS signing input of the size of an ID-JAG's header and payload.
const SIGNING_INPUT_BYTES: usize = 420;

/// Single-thread rates of the signature operations.
#[derive(Debug, Clone)]
pub struct CryptoFloor {
    pub rs256_verify: Rate,
    pub es256_verify: Rate,
    /// `jsonwebtoken::crypto::sign`, which parses the PKCS#8 key on every call.
    pub es256_sign: Rate,
    /// aws-lc-rs signing with a key parsed once, as the server signs access tokens.
    pub es256_sign_parsed_key: Rate,
    /// The summary table of `openssl speed rsa2048 ecdsap256`, when openssl is installed.
    pub openssl: Option<String>,
}

impl CryptoFloor {
    /// Returns the signature work of one exchange with an ES256 IdP: one ES256 verification
    /// of the ID-JAG and one ES256 signature of the access token with the key parsed once, as
    /// the server signs.
    pub fn es256_exchange(&self) -> Duration {
        self.es256_verify.each + self.es256_sign_parsed_key.each
    }

    /// Returns the same with an RS256 IdP, the most common IdP signing algorithm.
    pub fn rs256_exchange(&self) -> Duration {
        self.rs256_verify.each + self.es256_sign_parsed_key.each
    }
}

/// Operations per second on one thread, and the time of one.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub each: Duration,
}

/// Measures the floor on a blocking thread, then runs `openssl speed` when it is installed.
pub async fn measure() -> Result<CryptoFloor, BenchError> {
    tokio::task::spawn_blocking(measure_blocking)
        .await
        .map_err(|error| BenchError::Task(format!("crypto floor: {error}")))?
}

fn measure_blocking() -> Result<CryptoFloor, BenchError> {
    let message = signing_input();
    let rng = SystemRandom::new();
    let failed = |what: &str| BenchError::Crypto(what.to_owned());

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("RSA key generation"))?;
    let mut rsa_signature = vec![0; rsa.public_modulus_len()];
    rsa.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut rsa_signature)
        .map_err(|_| failed("RS256 signing"))?;
    let rsa_public = rsa.public_key();
    let rsa_key = DecodingKey::from_rsa_raw_components(
        rsa_public.modulus().big_endian_without_leading_zero(),
        rsa_public.exponent().big_endian_without_leading_zero(),
    );
    let rsa_signature = URL_SAFE_NO_PAD.encode(&rsa_signature);
    let rs256_verify = rate("RS256 verification", || {
        jsonwebtoken::crypto::verify(&rsa_signature, &message, &rsa_key, Algorithm::RS256)
            .unwrap_or(false)
    })?;

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| failed("P-256 key generation"))?;
    let encoding_key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let es256_sign = rate("ES256 signing", || {
        jsonwebtoken::crypto::sign(&message, &encoding_key, Algorithm::ES256).is_ok()
    })?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| failed("P-256 key parsing"))?;
    let es256_sign_parsed_key = rate("ES256 signing with a parsed key", || {
        pair.sign(&rng, &message).is_ok()
    })?;

    let point = pair.public_key().as_ref();
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(point.get(1..33).unwrap_or_default()),
        URL_SAFE_NO_PAD.encode(point.get(33..).unwrap_or_default()),
    );
    let ec_key = DecodingKey::from_ec_components(&x, &y)
        .map_err(|error| BenchError::Crypto(format!("P-256 public key: {error}")))?;
    let ec_signature = jsonwebtoken::crypto::sign(&message, &encoding_key, Algorithm::ES256)
        .map_err(|error| BenchError::Crypto(format!("ES256 signing: {error}")))?;
    let es256_verify = rate("ES256 verification", || {
        jsonwebtoken::crypto::verify(&ec_signature, &message, &ec_key, Algorithm::ES256)
            .unwrap_or(false)
    })?;

    Ok(CryptoFloor {
        rs256_verify,
        es256_verify,
        es256_sign,
        es256_sign_parsed_key,
        openssl: openssl_speed(),
    })
}

/// Builds a base64url-looking signing input, so hashing costs what it costs on an ID-JAG.
fn signing_input() -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut message: Vec<u8> = (0..SIGNING_INPUT_BYTES)
        .map(|index| alphabet[index * 7 % alphabet.len()])
        .collect();
    message[100] = b'.';
    message
}

/// Runs `operation` for [`BUDGET`] and returns its rate. Every call must return true, so a
/// broken key cannot pass for a fast one.
fn rate(name: &str, mut operation: impl FnMut() -> bool) -> Result<Rate, BenchError> {
    let started = Instant::now();
    let mut count = 0_u32;
    while count < MAX_OPERATIONS && (count < 10 || started.elapsed() < BUDGET) {
        if !operation() {
            return Err(BenchError::Crypto(format!("{name} returned a failure")));
        }
        count += 1;
    }
    let elapsed = started.elapsed();
    Ok(Rate {
        per_second: f64::from(count) / elapsed.as_secs_f64(),
        each: elapsed / count,
    })
}

/// Runs `openssl speed -seconds 1 rsa2048 ecdsap256` and returns its summary lines, or `None`
/// when openssl is missing or fails.
fn openssl_speed() -> Option<String> {
    let mut child = Command::new("openssl")
        .args(["speed", "-seconds", "1", "rsa2048", "ecdsap256"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < OPENSSL_LIMIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                tracing::warn!("`openssl speed` did not finish; skipping it");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    // The summary starts at the first table header, e.g. "                  sign    verify".
    let start = text
        .lines()
        .position(|line| line.trim_start().starts_with("sign"))?;
    let mut summary: Vec<&str> = text.lines().skip(start).collect();
    summary.retain(|line| !line.trim().is_empty());
    Some(summary.join("\n"))
}
