//! Compact JWS parsing, the JOSE header policy for ID-JAGs, JWK set parsing, key selection and
//! signature verification.
//!
//! Everything here is pure: no I/O and no clock. Fetching and caching key sets is
//! [`crate::core::jwks`]'s job, and claim checks belong to the exchange.
//!
//! The order of use is [`parse_compact`], [`check_header`], then a key from
//! [`select_key`] (through the JWKS cache) and finally [`verify`]. Every error type has a
//! `reason_code()` that returns a stable `snake_case` code for the audit log.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Media type (without the `application/` prefix) that an ID-JAG's `typ` header must denote.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// Maximum length of a `kid`, in bytes, in a token header and in a JWK.
pub const MAX_KID_BYTES: usize = 256;

/// RSA keys below this modulus size are unusable for signatures (RFC 7518 §3.3).
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// The aws-lc RSA verifiers that jsonwebtoken uses accept moduli of 2048 to 8192 bits.
const MAX_RSA_MODULUS_BITS: usize = 8192;

/// aws-lc rejects public exponents wider than 33 bits.
const MAX_RSA_EXPONENT_BITS: usize = 33;

/// Maximum length, in characters, of a token- or document-supplied value quoted in an error
/// message.
const MAX_EXCERPT_CHARS: usize = 64;

/// Header members that point at or carry a key. Keys come only from the issuer's configured
/// JWKS, so a token naming its own key is rejected rather than ignored.
const KEY_REFERENCE_MEMBERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Header members of JOSE features that xaa does not implement: unencoded payloads (`b64`),
/// nested tokens (`cty`), compression and encryption (`zip`, `enc`, both JWE-only).
const UNSUPPORTED_MEMBERS: [&str; 4] = ["b64", "cty", "zip", "enc"];

/// JWK members that only private or symmetric keys carry.
const PRIVATE_KEY_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The part of a token or document that an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Errors from parsing a token, checking its header or parsing a JWK set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("assertion is {len} bytes, larger than the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("assertion has 5 segments (a JWE); encrypted assertions are not supported")]
    Encrypted,
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("duplicate member name {name:?} in the JWS {part}")]
    DuplicateMember { part: Part, name: String },
    #[error("typ header is invalid ({0}); expected {ID_JAG_TYP}")]
    TypInvalid(String),
    #[error("alg header is not allowed: {0}")]
    AlgNotAllowed(String),
    #[error("crit header is present, but no extension is supported")]
    CritUnsupported,
    #[error("{0} header is present; keys come only from the issuer's JWKS")]
    HeaderKeyReference(&'static str),
    #[error("{0} header is present, but that feature is not supported")]
    HeaderUnsupported(&'static str),
    #[error("kid header is invalid: {0}")]
    KidInvalid(String),
    #[error("JWKS document is invalid: {0}")]
    JwksInvalid(String),
    #[error("JWKS has {count} keys, more than the maximum of {max}")]
    TooManyKeys { count: usize, max: usize },
}

impl JoseError {
    /// Stable code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "assertion_too_large",
            Self::Encrypted => "jwe_unsupported",
            Self::Malformed(_) => "malformed_jws",
            Self::DuplicateMember { .. } => "duplicate_member",
            Self::TypInvalid(_) => "typ_invalid",
            Self::AlgNotAllowed(_) => "alg_not_allowed",
            Self::CritUnsupported => "crit_unsupported",
            Self::HeaderKeyReference(_) => "header_key_reference",
            Self::HeaderUnsupported(_) => "header_unsupported",
            Self::KidInvalid(_) => "kid_invalid",
            Self::JwksInvalid(_) => "jwks_invalid",
            Self::TooManyKeys { .. } => "jwks_too_many_keys",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strict JSON: serde_json keeps the last of duplicate member names, so objects are built by a
// visitor that rejects them at every nesting level.
// ---------------------------------------------------------------------------------------------

/// Prefix of the custom serde error raised for a duplicate member name.
const DUPLICATE_MEMBER_PREFIX: &str = "duplicate member name: ";

/// A JSON value parsed without tolerating duplicate member names.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrictValueVisitor)
            .map(StrictValue)
    }
}

struct StrictValueVisitor;

impl<'de> Visitor<'de> for StrictValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if members.contains_key(&name) {
                let name_excerpt = excerpt(&name);
                let message = format!("{DUPLICATE_MEMBER_PREFIX}{name_excerpt}");
                return Err(de::Error::custom(message));
            }
            let StrictValue(value) = access.next_value()?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// Failure of [`parse_strict_json`].
enum StrictJsonError {
    /// The named member appears twice in one object.
    Duplicate(String),
    /// The text is not JSON. The message is the one from `serde_json`.
    Invalid(String),
}

fn parse_strict_json(text: &str) -> Result<Value, StrictJsonError> {
    serde_json::from_str::<StrictValue>(text)
        .map(|StrictValue(value)| value)
        .map_err(|error| {
            // serde_json formats data errors as "{message} at line {line} column {column}".
            let suffix = format!(" at line {} column {}", error.line(), error.column());
            let message = error.to_string();
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            match message.strip_prefix(DUPLICATE_MEMBER_PREFIX) {
                Some(name) if error.is_data() => StrictJsonError::Duplicate(name.to_owned()),
                _ => StrictJsonError::Invalid(error.to_string()),
            }
        })
}

/// Shortens a value from a token or document before it goes into an error message.
pub(crate) fn excerpt(value: &str) -> String {
    if value.chars().count() <= MAX_EXCERPT_CHARS {
        return value.to_owned();
    }
    let mut short: String = value.chars().take(MAX_EXCERPT_CHARS).collect();
    short.push('…');
    short
}

// ---------------------------------------------------------------------------------------------
// Compact JWS parsing.
// ---------------------------------------------------------------------------------------------

/// A JOSE header as sent, with typed accessors for the members xaa reads.
#[derive(Debug, Clone, PartialEq)]
pub struct JoseHeader {
    raw: Map<String, Value>,
}

impl JoseHeader {
    /// Returns the `alg` member when it is a string.
    pub fn alg(&self) -> Option<&str> {
        self.raw.get("alg").and_then(Value::as_str)
    }

    /// Returns the `typ` member when it is a string.
    pub fn typ(&self) -> Option<&str> {
        self.raw.get("typ").and_then(Value::as_str)
    }

    /// Returns the `kid` member when it is a string. [`check_header`] rejects a `kid` of another type,
    /// so after that check `None` means the header has no `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.raw.get("kid").and_then(Value::as_str)
    }

    /// Returns every header member as sent.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

/// A syntactically valid compact JWS whose signature is not yet verified.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedJws {
    header: JoseHeader,
    claims: Map<String, Value>,
    signing_input: String,
    signature_b64: String,
}

impl ParsedJws {
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// Returns the payload's members, unverified until [`verify`] succeeds.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Consumes the token and returns its claims.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// Returns the signed bytes: `base64url(header) "." base64url(payload)` as sent.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// Returns the third segment as sent (base64url, already checked to decode).
    pub fn signature_b64(&self) -> &str {
        &self.signature_b64
    }
}

/// Parses a compact JWS strictly.
///
/// The length is checked before any decoding. The token must consist of exactly three
/// base64url segments (URL-safe alphabet, no padding, no whitespace, canonical trailing bits).
/// Header and payload must be UTF-8 JSON objects without duplicate member names at any depth.
/// A five-segment JWE is rejected as [`JoseError::Encrypted`]. An empty signature segment
/// parses, so that `alg: none` is reported by [`check_header`].
pub fn parse_compact(token: &str, max_len: usize) -> Result<ParsedJws, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::TooLarge {
            len: token.len(),
            max: max_len,
        });
    }

    let segments: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = segments[..] else {
        if segments.len() == 5 {
            return Err(JoseError::Encrypted);
        }
        return Err(JoseError::Malformed(format!(
            "expected 3 dot-separated segments, found {}",
            segments.len()
        )));
    };

    let header = decode_json_object(header_b64, Part::Header)?;
    let claims = decode_json_object(payload_b64, Part::Payload)?;
    decode_segment(signature_b64, Part::Signature)?;

    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    Ok(ParsedJws {
        header: JoseHeader { raw: header },
        claims,
        signing_input: token[..signing_input_len].to_owned(),
        signature_b64: signature_b64.to_owned(),
    })
}

fn is_base64url_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Decodes one segment. The engine already rejects padding and non-canonical trailing bits;
/// the explicit alphabet check gives whitespace and `+`/`/` a clear message.
fn decode_segment(segment: &str, part: Part) -> Result<Vec<u8>, JoseError> {
    if !segment.bytes().all(is_base64url_byte) {
        return Err(JoseError::Malformed(format!(
            "{part} segment contains a character outside the base64url alphabet"
        )));
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|error| JoseError::Malformed(format!("{part} segment is not base64url: {error}")))
}

fn decode_json_object(segment: &str, part: Part) -> Result<Map<String, Value>, JoseError> {
    let bytes = decode_segment(segment, part)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| JoseError::Malformed(format!("{part} is not UTF-8")))?;
    match parse_strict_json(text) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(JoseError::Malformed(format!("{part} is not a JSON object"))),
        Err(StrictJsonError::Duplicate(name)) => Err(JoseError::DuplicateMember { part, name }),
        Err(StrictJsonError::Invalid(message)) => Err(JoseError::Malformed(format!(
            "{part} is not valid JSON: {message}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Header policy.
// ---------------------------------------------------------------------------------------------

/// The asymmetric JWS algorithms that jsonwebtoken's aws-lc backend verifies, by name.
const SUPPORTED_ALGORITHMS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// Names of every algorithm [`check_header`] can accept, for use as an allow-list before the
/// issuer (and so its own allow-list) is known.
pub fn supported_algorithm_names() -> [&'static str; 9] {
    SUPPORTED_ALGORITHMS.map(|(name, _)| name)
}

/// Maps a JWS `alg` name to an asymmetric algorithm that jsonwebtoken's aws-lc backend
/// verifies. `none` and the `HS*` family return `None`.
pub fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    SUPPORTED_ALGORITHMS
        .iter()
        .find(|(supported, _)| *supported == name)
        .map(|(_, algorithm)| *algorithm)
}

/// Returns the JWS `alg` name of an algorithm, e.g. `"RS256"`.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// Checks the JOSE header of an ID-JAG and returns the algorithm to verify it with.
///
/// `typ` must denote `oauth-id-jag+jwt` (with or without `application/`, any case). `alg` must
/// be asymmetric and listed in `allowed_algs`. `crit`, `jku`, `x5u`, `jwk`, `x5c`, `b64`,
/// `cty`, `zip` and `enc` are rejected when present. `kid`, when present, must be a string of
/// at most [`MAX_KID_BYTES`] bytes. Other members are ignored.
pub fn check_header<S: AsRef<str>>(
    header: &JoseHeader,
    allowed_algs: &[S],
) -> Result<Algorithm, JoseError> {
    check_typ(header)?;
    let algorithm = check_alg(header, allowed_algs)?;
    check_forbidden_members(header)?;
    check_kid(header)?;
    Ok(algorithm)
}

/// Returns true when a `typ` value denotes `application/oauth-id-jag+jwt`. A `typ` without `/` implies
/// the `application/` prefix (RFC 7515 §4.1.9), and media type names are case-insensitive.
pub fn is_id_jag_typ(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    let subtype = lower.strip_prefix("application/").unwrap_or(&lower);
    subtype == ID_JAG_TYP
}

fn check_typ(header: &JoseHeader) -> Result<(), JoseError> {
    match header.raw.get("typ") {
        None => Err(JoseError::TypInvalid("missing".to_owned())),
        Some(Value::String(typ)) if is_id_jag_typ(typ) => Ok(()),
        Some(Value::String(typ)) => Err(JoseError::TypInvalid(format!("{:?}", excerpt(typ)))),
        Some(_) => Err(JoseError::TypInvalid("not a string".to_owned())),
    }
}

fn check_alg<S: AsRef<str>>(
    header: &JoseHeader,
    allowed_algs: &[S],
) -> Result<Algorithm, JoseError> {
    let name = match header.raw.get("alg") {
        None => return Err(JoseError::AlgNotAllowed("missing".to_owned())),
        Some(Value::String(name)) => name,
        Some(_) => return Err(JoseError::AlgNotAllowed("not a string".to_owned())),
    };
    let Some(algorithm) = asymmetric_algorithm(name) else {
        return Err(JoseError::AlgNotAllowed(format!(
            "{:?} is not a supported asymmetric algorithm",
            excerpt(name)
        )));
    };
    if !allowed_algs.iter().any(|allowed| allowed.as_ref() == name) {
        return Err(JoseError::AlgNotAllowed(format!(
            "{name} is not in the provider's allowed algorithms"
        )));
    }
    Ok(algorithm)
}

fn check_forbidden_members(header: &JoseHeader) -> Result<(), JoseError> {
    if header.raw.contains_key("crit") {
        return Err(JoseError::CritUnsupported);
    }
    if let Some(member) = KEY_REFERENCE_MEMBERS
        .iter()
        .find(|name| header.raw.contains_key(**name))
    {
        return Err(JoseError::HeaderKeyReference(member));
    }
    if let Some(member) = UNSUPPORTED_MEMBERS
        .iter()
        .find(|name| header.raw.contains_key(**name))
    {
        return Err(JoseError::HeaderUnsupported(member));
    }
    Ok(())
}

fn check_kid(header: &JoseHeader) -> Result<(), JoseError> {
    match header.raw.get("kid") {
        None => Ok(()),
        Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Ok(()),
        Some(Value::String(kid)) => Err(JoseError::KidInvalid(format!(
            "{} bytes, more than the maximum of {MAX_KID_BYTES}",
            kid.len()
        ))),
        Some(_) => Err(JoseError::KidInvalid("not a string".to_owned())),
    }
}

// ---------------------------------------------------------------------------------------------
// JWK sets.
// ---------------------------------------------------------------------------------------------

/// JWK key type (`kty`) of a usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ec,
    Okp,
}

impl KeyType {
    /// Returns the JWK spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::Okp => "OKP",
        }
    }
}

/// JWK curve (`crv`) of a usable EC or OKP key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    Ed25519,
}

impl Curve {
    /// Returns the JWK spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::Ed25519 => "Ed25519",
        }
    }
}

/// A public signature-verification key from an issuer's JWKS.
#[derive(Debug, Clone)]
pub struct Key {
    kid: Option<String>,
    kty: KeyType,
    crv: Option<Curve>,
    alg: Option<Algorithm>,
    /// The public key in the form jsonwebtoken's verifiers take.
    material: DecodingKey,
    /// `kid`, `alg` and the public parameters, used to tell whether a refreshed set changed.
    fingerprint: String,
}

impl Key {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn kty(&self) -> KeyType {
        self.kty
    }

    pub fn crv(&self) -> Option<Curve> {
        self.crv
    }

    /// Returns the JWK `alg` member, when the set pins one.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.material
    }

    /// Returns the canonical text of `kid`, `alg` and the public key. Equal fingerprints mean
    /// equal keys.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Returns true when this key may verify a signature made with `alg`: the key type and curve must fit
    /// the algorithm, and the JWK `alg`, when present, must equal it.
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|pinned| pinned == alg) && self.type_fits(alg)
    }

    fn type_fits(&self, alg: Algorithm) -> bool {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.kty == KeyType::Rsa,
            Algorithm::ES256 => self.kty == KeyType::Ec && self.crv == Some(Curve::P256),
            Algorithm::ES384 => self.kty == KeyType::Ec && self.crv == Some(Curve::P384),
            Algorithm::EdDSA => self.kty == KeyType::Okp && self.crv == Some(Curve::Ed25519),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => false,
        }
    }
}

/// A JWK that [`parse_jwks`] left out of the set, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the document's `keys` array.
    pub index: usize,
    pub kid: Option<String>,
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key #{} (kid {kid:?}): {}", self.index, self.reason),
            None => write!(f, "key #{}: {}", self.index, self.reason),
        }
    }
}

/// The usable keys of one JWKS document, plus notes on the keys that were skipped.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<Key>>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    pub fn keys(&self) -> &[Arc<Key>] {
        &self.keys
    }

    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns the sorted fingerprints of the usable keys. Two sets with equal lists contain the
    /// same keys.
    pub fn fingerprints(&self) -> Vec<&str> {
        let mut fingerprints: Vec<&str> = self.keys.iter().map(|key| key.fingerprint()).collect();
        fingerprints.sort_unstable();
        fingerprints
    }
}

/// Parses a JWK set document (RFC 7517 §5).
///
/// The document must be a UTF-8 JSON object, without duplicate member names, with a `keys`
/// array of at most `max_keys` entries. Entries that cannot serve as ID-JAG verification keys
/// are skipped and listed in [`KeySet::skipped`]. These are keys with an unknown `kty`, `oct`
/// keys, and keys with missing or malformed members, `use` other than `sig`, `key_ops`
/// without `verify` or private key members. RSA keys need a modulus of 2048 to 8192 bits and
/// a valid exponent. EC and OKP keys need a supported curve, the right coordinate length and a
/// point on the curve. A JWK `alg` must fit the key.
pub fn parse_jwks(bytes: &[u8], max_keys: usize) -> Result<KeySet, JoseError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| JoseError::JwksInvalid("document is not UTF-8".to_owned()))?;
    let document = match parse_strict_json(text) {
        Ok(document) => document,
        Err(StrictJsonError::Duplicate(name)) => {
            return Err(JoseError::JwksInvalid(format!(
                "duplicate member name {name:?}"
            )));
        }
        Err(StrictJsonError::Invalid(message)) => {
            return Err(JoseError::JwksInvalid(format!("not valid JSON: {message}")));
        }
    };
    let Some(Value::Array(entries)) = document.as_object().and_then(|doc| doc.get("keys")) else {
        return Err(JoseError::JwksInvalid(
            "expected a JSON object with a \"keys\" array".into(),
        ));
    };
    if entries.len() > max_keys {
        return Err(JoseError::TooManyKeys {
            count: entries.len(),
            max: max_keys,
        });
    }

    let mut set = KeySet::default();
    for (index, entry) in entries.iter().enumerate() {
        match parse_jwk(entry) {
            Ok(key) => set.keys.push(Arc::new(key)),
            Err(reason) => set.skipped.push(SkippedKey {
                index,
                kid: entry.get("kid").and_then(Value::as_str).map(excerpt),
                reason,
            }),
        }
    }
    Ok(set)
}

/// Returns the JWK set document without the keys that carry private or symmetric key members,
/// or `None` when it has none (or is not a JWK set). [`parse_jwks`] skips such keys, and this
/// keeps their secrets out of storage and logs.
pub fn redact_private_keys(document: &str) -> Option<String> {
    let mut parsed: Value = serde_json::from_str(document).ok()?;
    let entries = parsed.get_mut("keys")?.as_array_mut()?;
    let before = entries.len();
    entries.retain(|entry| {
        !PRIVATE_KEY_MEMBERS
            .iter()
            .any(|name| entry.get(*name).is_some())
    });
    (entries.len() != before).then(|| parsed.to_string())
}

/// The reason a JWK is skipped.
type SkipReason = String;

/// Decoded key material of one JWK.
struct KeyMaterial {
    kty: KeyType,
    crv: Option<Curve>,
    decoding_key: DecodingKey,
    /// Canonical text of the public parameters.
    public_text: String,
}

fn parse_jwk(entry: &Value) -> Result<Key, SkipReason> {
    let Value::Object(jwk) = entry else {
        return Err("not a JSON object".to_owned());
    };
    reject_private_members(jwk)?;
    check_key_use(jwk)?;

    let kid = optional_string(jwk, "kid")?;
    if kid.is_some_and(|kid| kid.len() > MAX_KID_BYTES) {
        return Err(format!("kid is longer than {MAX_KID_BYTES} bytes"));
    }
    let alg = match optional_string(jwk, "alg")? {
        None => None,
        Some(name) => Some(
            asymmetric_algorithm(name)
                .ok_or_else(|| format!("alg {:?} is not a supported algorithm", excerpt(name)))?,
        ),
    };

    let material = match required_string(jwk, "kty")? {
        "RSA" => rsa_material(jwk)?,
        "EC" => ec_material(jwk)?,
        "OKP" => okp_material(jwk)?,
        "oct" => return Err("symmetric (oct) keys are never accepted".to_owned()),
        other => return Err(format!("kty {:?} is not supported", excerpt(other))),
    };

    let fingerprint = format!("{kid:?}|{alg:?}|{}", material.public_text);
    let key = Key {
        kid: kid.map(str::to_owned),
        kty: material.kty,
        crv: material.crv,
        alg,
        material: material.decoding_key,
        fingerprint,
    };
    match alg {
        Some(alg) if !key.type_fits(alg) => Err(format!(
            "alg {alg:?} does not fit a {} key",
            key.kty.as_str()
        )),
        _ => Ok(key),
    }
}

fn reject_private_members(jwk: &Map<String, Value>) -> Result<(), SkipReason> {
    match PRIVATE_KEY_MEMBERS
        .iter()
        .find(|name| jwk.contains_key(**name))
    {
        Some(member) => Err(format!(
            "contains the private or symmetric key member {member:?}; a JWKS must publish \
             public keys only"
        )),
        None => Ok(()),
    }
}

/// Keeps only signature keys: `use` absent or `sig`, `key_ops` absent or containing `verify`.
fn check_key_use(jwk: &Map<String, Value>) -> Result<(), SkipReason> {
    match jwk.get("use") {
        None => {}
        Some(Value::String(key_use)) if key_use == "sig" => {}
        Some(other) => {
            return Err(format!(
                "use is {}, not \"sig\"",
                excerpt(&other.to_string())
            ));
        }
    }
    match jwk.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => Ok(()),
        Some(_) => Err("key_ops does not contain \"verify\"".to_owned()),
    }
}

fn optional_string<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, SkipReason> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

fn required_string<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, SkipReason> {
    optional_string(jwk, name)?.ok_or_else(|| format!("{name} is missing"))
}

/// Decodes a base64url JWK member (a `Base64urlUInt` or key octets, RFC 7518 §2).
fn decode_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, SkipReason> {
    let text = required_string(jwk, name)?;
    if !text.bytes().all(is_base64url_byte) {
        return Err(format!(
            "{name} contains a character outside the base64url alphabet"
        ));
    }
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|error| format!("{name} is not base64url: {error}"))
}

/// Strips leading zero octets. RFC 7518 §2 asks for the minimal encoding, but the value is the
/// same with them, so they are tolerated.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    &bytes[first..]
}

/// Bit length of a big-endian unsigned integer without leading zero octets.
fn bit_length(minimal: &[u8]) -> usize {
    match minimal.first() {
        None => 0,
        Some(first) => minimal.len() * 8 - first.leading_zeros() as usize,
    }
}

fn rsa_material(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    let modulus_bytes = decode_member(jwk, "n")?;
    let exponent_bytes = decode_member(jwk, "e")?;
    let modulus = strip_leading_zeros(&modulus_bytes);
    let exponent = strip_leading_zeros(&exponent_bytes);

    let modulus_bits = bit_length(modulus);
    if modulus_bits < MIN_RSA_MODULUS_BITS {
        return Err(format!(
            "RSA modulus is {modulus_bits} bits, below the minimum of {MIN_RSA_MODULUS_BITS}"
        ));
    }
    if modulus_bits > MAX_RSA_MODULUS_BITS {
        return Err(format!(
            "RSA modulus is {modulus_bits} bits, above the maximum of {MAX_RSA_MODULUS_BITS}"
        ));
    }
    check_rsa_exponent(exponent)?;

    Ok(KeyMaterial {
        kty: KeyType::Rsa,
        crv: None,
        decoding_key: DecodingKey::from_rsa_raw_components(modulus, exponent),
        public_text: format!(
            "RSA|{}|{}",
            URL_SAFE_NO_PAD.encode(modulus),
            URL_SAFE_NO_PAD.encode(exponent)
        ),
    })
}

/// Accepts odd public exponents from 3 up to [`MAX_RSA_EXPONENT_BITS`] bits.
fn check_rsa_exponent(exponent: &[u8]) -> Result<(), SkipReason> {
    let bits = bit_length(exponent);
    let is_odd = exponent.last().is_some_and(|low| low & 1 == 1);
    if !(2..=MAX_RSA_EXPONENT_BITS).contains(&bits) || !is_odd {
        return Err(format!(
            "RSA exponent is invalid: it must be odd, at least 3 and at most \
             {MAX_RSA_EXPONENT_BITS} bits"
        ));
    }
    Ok(())
}

fn ec_material(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED};

    let crv_name = required_string(jwk, "crv")?;
    let (crv, coordinate_len, verification) = match crv_name {
        "P-256" => (Curve::P256, 32, &ECDSA_P256_SHA256_FIXED),
        "P-384" => (Curve::P384, 48, &ECDSA_P384_SHA384_FIXED),
        other => return Err(format!("EC curve {:?} is not supported", excerpt(other))),
    };
    let x = decode_member(jwk, "x")?;
    let y = decode_member(jwk, "y")?;
    for (name, coordinate) in [("x", &x), ("y", &y)] {
        if coordinate.len() != coordinate_len {
            return Err(format!(
                "EC coordinate {name} is {} bytes, expected {coordinate_len} for {crv_name}",
                coordinate.len()
            ));
        }
    }

    // Uncompressed SEC1 point: 0x04 || x || y. Parsing it checks that it lies on the curve.
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    aws_lc_rs::signature::ParsedPublicKey::new(verification, &point)
        .map_err(|_| format!("EC point is not on curve {crv_name}"))?;

    Ok(KeyMaterial {
        kty: KeyType::Ec,
        crv: Some(crv),
        public_text: format!("EC|{crv_name}|{}", URL_SAFE_NO_PAD.encode(&point)),
        // jsonwebtoken's EC verifiers take the uncompressed point as the key bytes.
        decoding_key: DecodingKey::from_ec_der(&point),
    })
}

fn okp_material(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    use aws_lc_rs::signature::{ED25519, ED25519_PUBLIC_KEY_LEN};

    let crv_name = required_string(jwk, "crv")?;
    if crv_name != "Ed25519" {
        return Err(format!(
            "OKP curve {:?} is not supported",
            excerpt(crv_name)
        ));
    }
    let x = decode_member(jwk, "x")?;
    if x.len() != ED25519_PUBLIC_KEY_LEN {
        return Err(format!(
            "OKP member x is {} bytes, expected {ED25519_PUBLIC_KEY_LEN} for Ed25519",
            x.len()
        ));
    }
    aws_lc_rs::signature::ParsedPublicKey::new(&ED25519, &x)
        .map_err(|_| "Ed25519 public key is invalid".to_owned())?;

    Ok(KeyMaterial {
        kty: KeyType::Okp,
        crv: Some(Curve::Ed25519),
        public_text: format!("OKP|Ed25519|{}", URL_SAFE_NO_PAD.encode(&x)),
        decoding_key: DecodingKey::from_ed_der(&x),
    })
}

// ---------------------------------------------------------------------------------------------
// Key selection and verification.
// ---------------------------------------------------------------------------------------------

/// Error of [`select_key`] when no single key fits the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySelectError {
    #[error("no key in the issuer's JWKS has kid {0:?}")]
    UnknownKid(String),
    #[error("the key with kid {kid:?} cannot verify {alg:?} signatures")]
    KidAlgMismatch { kid: String, alg: Algorithm },
    #[error("{count} keys in the issuer's JWKS share kid {kid:?} and fit {alg:?}")]
    AmbiguousKid {
        kid: String,
        alg: Algorithm,
        count: usize,
    },
    #[error("the token has no kid and the issuer's JWKS has no key for {0:?}")]
    NoMatchingKey(Algorithm),
    #[error("the token has no kid and {count} keys in the issuer's JWKS fit {alg:?}")]
    KidRequired { alg: Algorithm, count: usize },
}

impl KeySelectError {
    /// Stable code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::UnknownKid(_) => "unknown_kid",
            Self::KidAlgMismatch { .. } => "kid_alg_mismatch",
            Self::AmbiguousKid { .. } => "ambiguous_kid",
            Self::NoMatchingKey(_) => "no_matching_key",
            Self::KidRequired { .. } => "kid_required",
        }
    }

    /// Returns true when a fresher key set could resolve the miss, because the issuer may have
    /// rotated its keys.
    pub fn may_resolve_after_refresh(&self) -> bool {
        matches!(self, Self::UnknownKid(_) | Self::NoMatchingKey(_))
    }
}

/// Selects the key that verifies a token signed with `alg`.
///
/// With a `kid`, the key must carry that `kid` and support `alg`, and exactly one key may do
/// so. Without a `kid`, exactly one key in the set may support `alg`.
pub fn select_key<'a>(
    set: &'a KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'a Arc<Key>, KeySelectError> {
    match kid {
        Some(kid) => select_by_kid(set, kid, alg),
        None => select_only_supporting(set, alg),
    }
}

fn select_by_kid<'a>(
    set: &'a KeySet,
    kid: &str,
    alg: Algorithm,
) -> Result<&'a Arc<Key>, KeySelectError> {
    let mut named = set
        .keys
        .iter()
        .filter(|key| key.kid() == Some(kid))
        .peekable();
    if named.peek().is_none() {
        return Err(KeySelectError::UnknownKid(excerpt(kid)));
    }
    match first_and_count(named.filter(|key| key.supports(alg))) {
        (Some(key), 1) => Ok(key),
        (None, _) => Err(KeySelectError::KidAlgMismatch {
            kid: excerpt(kid),
            alg,
        }),
        (Some(_), count) => Err(KeySelectError::AmbiguousKid {
            kid: excerpt(kid),
            alg,
            count,
        }),
    }
}

fn select_only_supporting(set: &KeySet, alg: Algorithm) -> Result<&Arc<Key>, KeySelectError> {
    match first_and_count(set.keys.iter().filter(|key| key.supports(alg))) {
        (Some(key), 1) => Ok(key),
        (None, _) => Err(KeySelectError::NoMatchingKey(alg)),
        (Some(_), count) => Err(KeySelectError::KidRequired { alg, count }),
    }
}

/// Returns the first candidate and the number of candidates, without allocating.
fn first_and_count<'a>(
    mut candidates: impl Iterator<Item = &'a Arc<Key>>,
) -> (Option<&'a Arc<Key>>, usize) {
    let first = candidates.next();
    let count = usize::from(first.is_some()) + candidates.count();
    (first, count)
}

/// Verifies the token's signature with `key` and the pinned `alg`.
///
/// Returns false when the key does not support `alg` or the signature does not verify. ECDSA
/// signatures must be the fixed-width `R || S` form (64 bytes for ES256, 96 for ES384), so a
/// DER-encoded signature fails, and aws-lc rejects `r` or `s` equal to 0 or not below the
/// group order.
pub fn verify(parsed: &ParsedJws, key: &Key, alg: Algorithm) -> bool {
    if !key.supports(alg) {
        return false;
    }
    jsonwebtoken::crypto::verify(
        parsed.signature_b64(),
        parsed.signing_input().as_bytes(),
        key.decoding_key(),
        alg,
    )
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        self as aws_signature, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
        KeyPair as _, RsaEncoding, RsaKeyPair, RsaPublicKeyComponents,
    };
    use serde_json::json;

    use super::*;

    const MAX_LEN: usize = 16 * 1024;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn b64_json(value: &Value) -> String {
        b64(value.to_string().as_bytes())
    }

    fn rsa_pair() -> &'static RsaKeyPair {
        static PAIR: OnceLock<RsaKeyPair> = OnceLock::new();
        PAIR.get_or_init(|| {
            RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key generation")
        })
    }

    fn rsa_jwk(kid: &str) -> Value {
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_pair().public_key());
        json!({"kty": "RSA", "kid": kid, "n": b64(&components.n), "e": b64(&components.e)})
    }

    fn rsa_sign(encoding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
        let pair = rsa_pair();
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(encoding, &SystemRandom::new(), message, &mut signature)
            .expect("RSA signing");
        signature
    }

    /// An ECDSA key as PKCS#8, so tests can sign with the fixed and the DER encoding.
    struct EcKey {
        pkcs8: Vec<u8>,
        fixed: &'static EcdsaSigningAlgorithm,
    }

    impl EcKey {
        fn generate(fixed: &'static EcdsaSigningAlgorithm) -> Self {
            let document = EcdsaKeyPair::generate_pkcs8(fixed, &SystemRandom::new())
                .expect("EC key generation");
            Self {
                pkcs8: document.as_ref().to_vec(),
                fixed,
            }
        }

        fn pair(&self, algorithm: &'static EcdsaSigningAlgorithm) -> EcdsaKeyPair {
            EcdsaKeyPair::from_pkcs8(algorithm, &self.pkcs8).expect("EC key from PKCS#8")
        }

        fn jwk(&self, kid: &str, crv: &str) -> Value {
            let pair = self.pair(self.fixed);
            let point = pair.public_key().as_ref();
            let coordinate_len = (point.len() - 1) / 2;
            let (x, y) = point[1..].split_at(coordinate_len);
            json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y)})
        }

        fn sign(&self, algorithm: &'static EcdsaSigningAlgorithm, message: &[u8]) -> Vec<u8> {
            let signature = self
                .pair(algorithm)
                .sign(&SystemRandom::new(), message)
                .expect("EC signing");
            signature.as_ref().to_vec()
        }
    }

    fn id_jag_header(alg: &str, kid: Option<&str>) -> Value {
        let mut header = json!({"typ": "oauth-id-jag+jwt", "alg": alg});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        header
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.test", "sub": "u1", "aud": "https://as.test", "jti": "j1"})
    }

    fn signed_token(header: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let signing_input = format!("{}.{}", b64_json(header), b64_json(&claims()));
        let signature = sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature))
    }

    fn unsigned_token(header: &Value) -> String {
        format!("{}.{}.c2ln", b64_json(header), b64_json(&claims()))
    }

    fn parse(token: &str) -> Result<ParsedJws, JoseError> {
        parse_compact(token, MAX_LEN)
    }

    fn header_check(header: &Value, allowed: &[&str]) -> Result<Algorithm, JoseError> {
        let parsed = parse(&unsigned_token(header)).expect("test token parses");
        let allowed: Vec<String> = allowed.iter().map(|alg| (*alg).to_owned()).collect();
        check_header(parsed.header(), &allowed)
    }

    fn key_set(keys: &[Value]) -> KeySet {
        let document = json!({"keys": keys}).to_string();
        parse_jwks(document.as_bytes(), 32).expect("test JWKS parses")
    }

    fn skip_reason(jwk: &Value) -> String {
        let set = key_set(std::slice::from_ref(jwk));
        assert!(set.is_empty(), "key should be skipped: {jwk}");
        set.skipped()[0].reason.clone()
    }

    // Parsing.

    #[test]
    fn parse_exposes_parts() {
        let header = id_jag_header("RS256", Some("k1"));
        let token = unsigned_token(&header);
        let parsed = parse(&token).unwrap();

        assert_eq!(parsed.header().alg(), Some("RS256"));
        assert_eq!(parsed.header().typ(), Some("oauth-id-jag+jwt"));
        assert_eq!(parsed.header().kid(), Some("k1"));
        assert_eq!(parsed.claims().get("sub"), Some(&json!("u1")));
        assert_eq!(parsed.signature_b64(), "c2ln");
        assert_eq!(format!("{}.c2ln", parsed.signing_input()), token);
    }

    #[test]
    fn parse_checks_length_before_decoding() {
        let garbage = "!".repeat(MAX_LEN + 1);
        let error = parse(&garbage).unwrap_err();
        assert_eq!(
            error,
            JoseError::TooLarge {
                len: MAX_LEN + 1,
                max: MAX_LEN
            }
        );
        assert_eq!(error.reason_code(), "assertion_too_large");

        let token = unsigned_token(&id_jag_header("RS256", None));
        assert!(parse_compact(&token, token.len()).is_ok());
        assert!(matches!(
            parse_compact(&token, token.len() - 1),
            Err(JoseError::TooLarge { .. })
        ));
    }

    #[test]
    fn parse_rejects_wrong_segment_counts() {
        let header = b64_json(&id_jag_header("RS256", None));
        let payload = b64_json(&claims());
        for token in [
            format!("{header}.{payload}"),
            format!("{header}.{payload}.c2ln.c2ln"),
            String::new(),
            "abc".to_owned(),
        ] {
            let error = parse(&token).unwrap_err();
            assert_eq!(error.reason_code(), "malformed_jws", "token {token:?}");
        }
    }

    #[test]
    fn parse_rejects_jwe() {
        let error = parse("eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn").unwrap_err();
        assert_eq!(error, JoseError::Encrypted);
        assert_eq!(error.reason_code(), "jwe_unsupported");
    }

    #[test]
    fn parse_rejects_non_base64url_segments() {
        let header = b64_json(&id_jag_header("RS256", None));
        let payload = b64_json(&claims());
        let cases = [
            format!("{header}=.{payload}.c2ln"),
            format!("{header}.{payload}.c2ln=="),
            format!(" {header}.{payload}.c2ln"),
            format!("{header}.{payload}\n.c2ln"),
            format!("{header}.{payload}.c2l+"),
            format!("{header}.{payload}.c2l/"),
            // "QR" carries non-zero trailing bits. Only "QQ" is the canonical encoding of "A".
            format!("{header}.{payload}.QR"),
            // A single trailing character can never be valid base64.
            format!("{header}.{payload}.c2lnQ"),
        ];
        for token in cases {
            let error = parse(&token).unwrap_err();
            assert_eq!(error.reason_code(), "malformed_jws", "token {token:?}");
        }
    }

    #[test]
    fn parse_requires_json_objects() {
        let payload = b64_json(&claims());
        let header = b64_json(&id_jag_header("RS256", None));
        let cases = [
            format!("{}.{payload}.c2ln", b64(b"[1,2]")),
            format!("{}.{payload}.c2ln", b64(b"not json")),
            format!("{}.{payload}.c2ln", b64(b"")),
            format!("{}.{payload}.c2ln", b64(b"{\"alg\":\"RS256\"} {}")),
            format!("{header}.{}.c2ln", b64(b"\"text\"")),
            format!("{header}.{}.c2ln", b64(b"{\"sub\":\"\xff\"}")),
            format!("{header}..c2ln"),
        ];
        for token in cases {
            let error = parse(&token).unwrap_err();
            assert_eq!(error.reason_code(), "malformed_jws", "token {token:?}");
        }
    }

    #[test]
    fn parse_rejects_duplicate_header_member() {
        let header = br#"{"alg":"RS256","typ":"oauth-id-jag+jwt","alg":"none"}"#;
        let token = format!("{}.{}.c2ln", b64(header), b64_json(&claims()));
        let error = parse(&token).unwrap_err();
        assert_eq!(
            error,
            JoseError::DuplicateMember {
                part: Part::Header,
                name: "alg".into()
            }
        );
        assert_eq!(error.reason_code(), "duplicate_member");
    }

    #[test]
    fn parse_rejects_nested_duplicate_member() {
        let header = b64_json(&id_jag_header("RS256", None));
        let payload = br#"{"sub":"u1","act":{"sub":"a","sub":"b"}}"#;
        let token = format!("{header}.{}.c2ln", b64(payload));
        let error = parse(&token).unwrap_err();
        assert_eq!(
            error,
            JoseError::DuplicateMember {
                part: Part::Payload,
                name: "sub".into()
            }
        );

        let in_array = br#"{"sub":"u1","list":[{"a":1,"a":2}]}"#;
        let token = format!("{header}.{}.c2ln", b64(in_array));
        assert_eq!(parse(&token).unwrap_err().reason_code(), "duplicate_member");
    }

    #[test]
    fn parse_keeps_nested_values() {
        let header = b64_json(&id_jag_header("RS256", None));
        let payload = br#"{"n":-5,"f":1.5,"big":18446744073709551615,"z":null,"o":{"a":[true]}}"#;
        let parsed = parse(&format!("{header}.{}.c2ln", b64(payload))).unwrap();
        let expected = json!({
            "n": -5, "f": 1.5, "big": 18_446_744_073_709_551_615_u64, "z": null, "o": {"a": [true]}
        });
        assert_eq!(Value::Object(parsed.claims().clone()), expected);
    }

    #[test]
    fn parse_accepts_empty_signature() {
        let header = json!({"typ": "oauth-id-jag+jwt", "alg": "none"});
        let token = format!("{}.{}.", b64_json(&header), b64_json(&claims()));
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.signature_b64(), "");
        let error = check_header(parsed.header(), &["RS256".to_owned()]).unwrap_err();
        assert_eq!(error.reason_code(), "alg_not_allowed");
    }

    // Header policy.

    #[test]
    fn header_accepts_id_jag_typ_spellings() {
        for typ in [
            "oauth-id-jag+jwt",
            "application/oauth-id-jag+jwt",
            "OAUTH-ID-JAG+JWT",
            "Application/OAuth-ID-JAG+JWT",
        ] {
            let header = json!({"typ": typ, "alg": "RS256"});
            assert_eq!(
                header_check(&header, &["RS256"]),
                Ok(Algorithm::RS256),
                "typ {typ}"
            );
        }
    }

    #[test]
    fn header_rejects_other_typ() {
        let cases = [
            json!({"alg": "RS256"}),
            json!({"alg": "RS256", "typ": "JWT"}),
            json!({"alg": "RS256", "typ": "at+jwt"}),
            json!({"alg": "RS256", "typ": "client-authentication+jwt"}),
            json!({"alg": "RS256", "typ": "text/oauth-id-jag+jwt"}),
            json!({"alg": "RS256", "typ": "oauth-id-jag+jwt; charset=utf-8"}),
            json!({"alg": "RS256", "typ": ""}),
            json!({"alg": "RS256", "typ": ["oauth-id-jag+jwt"]}),
        ];
        for header in cases {
            let error = header_check(&header, &["RS256"]).unwrap_err();
            assert_eq!(error.reason_code(), "typ_invalid", "header {header}");
        }
    }

    #[test]
    fn header_requires_allowed_asymmetric_alg() {
        let everything = ["RS256", "HS256", "HS512", "none", "RS512"];
        let cases = [
            (json!({"typ": "oauth-id-jag+jwt"}), &["RS256"][..]),
            (
                json!({"typ": "oauth-id-jag+jwt", "alg": 256}),
                &["RS256"][..],
            ),
            (id_jag_header("none", None), &everything[..]),
            (id_jag_header("HS256", None), &everything[..]),
            (id_jag_header("HS512", None), &everything[..]),
            (id_jag_header("RS512", None), &["RS256", "ES256"][..]),
            (id_jag_header("rs256", None), &["RS256"][..]),
            (id_jag_header("ES512", None), &["ES512"][..]),
        ];
        for (header, allowed) in cases {
            let error = header_check(&header, allowed).unwrap_err();
            assert_eq!(error.reason_code(), "alg_not_allowed", "header {header}");
        }
    }

    #[test]
    fn header_maps_each_supported_alg() {
        let table = [
            ("RS256", Algorithm::RS256),
            ("RS384", Algorithm::RS384),
            ("RS512", Algorithm::RS512),
            ("PS256", Algorithm::PS256),
            ("PS384", Algorithm::PS384),
            ("PS512", Algorithm::PS512),
            ("ES256", Algorithm::ES256),
            ("ES384", Algorithm::ES384),
            ("EdDSA", Algorithm::EdDSA),
        ];
        for (name, algorithm) in table {
            assert_eq!(
                header_check(&id_jag_header(name, None), &[name]),
                Ok(algorithm)
            );
        }
    }

    #[test]
    fn supported_names_round_trip() {
        let names = supported_algorithm_names();
        for name in names {
            let algorithm = asymmetric_algorithm(name).unwrap();
            assert_eq!(algorithm_name(algorithm), name);
        }
        assert_eq!(
            header_check(&id_jag_header("PS512", None), &names),
            Ok(Algorithm::PS512)
        );
        let error = header_check(&id_jag_header("HS256", None), &names).unwrap_err();
        assert_eq!(error.reason_code(), "alg_not_allowed");
    }

    #[test]
    fn header_rejects_crit_in_any_form() {
        for crit in [
            json!([]),
            json!(["urn:x:unknown"]),
            json!(["exp"]),
            json!("b64"),
        ] {
            let mut header = id_jag_header("RS256", None);
            header["crit"] = crit.clone();
            let error = header_check(&header, &["RS256"]).unwrap_err();
            assert_eq!(error, JoseError::CritUnsupported, "crit {crit}");
            assert_eq!(error.reason_code(), "crit_unsupported");
        }
    }

    #[test]
    fn header_rejects_key_references() {
        let values = [
            ("jku", json!("https://attacker.test/jwks")),
            ("x5u", json!("https://attacker.test/cert.pem")),
            (
                "jwk",
                json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            ),
            ("x5c", json!(["MIIB"])),
        ];
        for (member, value) in values {
            let mut header = id_jag_header("RS256", None);
            header[member] = value;
            let error = header_check(&header, &["RS256"]).unwrap_err();
            assert_eq!(error, JoseError::HeaderKeyReference(member));
            assert_eq!(error.reason_code(), "header_key_reference");
        }
    }

    #[test]
    fn header_rejects_unsupported_features() {
        let values = [
            ("b64", json!(false)),
            ("cty", json!("JWT")),
            ("zip", json!("DEF")),
            ("enc", json!("A256GCM")),
        ];
        for (member, value) in values {
            let mut header = id_jag_header("RS256", None);
            header[member] = value;
            let error = header_check(&header, &["RS256"]).unwrap_err();
            assert_eq!(error, JoseError::HeaderUnsupported(member));
            assert_eq!(error.reason_code(), "header_unsupported");
        }
    }

    #[test]
    fn header_bounds_kid() {
        let longest = "k".repeat(MAX_KID_BYTES);
        assert!(header_check(&id_jag_header("RS256", Some(&longest)), &["RS256"]).is_ok());

        let too_long = "k".repeat(MAX_KID_BYTES + 1);
        let error = header_check(&id_jag_header("RS256", Some(&too_long)), &["RS256"]);
        assert_eq!(error.unwrap_err().reason_code(), "kid_invalid");

        let mut numeric = id_jag_header("RS256", None);
        numeric["kid"] = json!(7);
        let error = header_check(&numeric, &["RS256"]).unwrap_err();
        assert_eq!(error.reason_code(), "kid_invalid");
    }

    #[test]
    fn header_ignores_unknown_members() {
        let mut header = id_jag_header("RS256", Some("k1"));
        header["x5t#S256"] = json!("abc");
        header["custom"] = json!({"nested": true});
        assert_eq!(header_check(&header, &["RS256"]), Ok(Algorithm::RS256));
    }

    // JWK sets.

    #[test]
    fn jwks_keeps_usable_keys() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let ed = Ed25519KeyPair::generate().unwrap();
        let ed_jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())
        });
        let mut rsa = rsa_jwk("rsa");
        rsa["use"] = json!("sig");
        rsa["alg"] = json!("RS256");
        rsa["key_ops"] = json!(["verify"]);
        let set = key_set(&[rsa, p256.jwk("ec", "P-256"), ed_jwk]);

        assert_eq!(set.len(), 3, "skipped: {:?}", set.skipped());
        let rsa_key = &set.keys()[0];
        assert_eq!(rsa_key.kid(), Some("rsa"));
        assert_eq!(rsa_key.kty(), KeyType::Rsa);
        assert_eq!(rsa_key.alg(), Some(Algorithm::RS256));
        assert_eq!(set.keys()[1].crv(), Some(Curve::P256));
        assert_eq!(set.keys()[2].kty(), KeyType::Okp);
    }

    #[test]
    fn jwks_rejects_bad_documents() {
        let cases: [&[u8]; 6] = [
            b"[]",
            b"{}",
            b"{\"keys\": {}}",
            b"not json",
            b"{\"keys\": [], \"keys\": []}",
            b"{\"keys\": [\xff]}",
        ];
        for document in cases {
            let error = parse_jwks(document, 32).unwrap_err();
            assert_eq!(
                error.reason_code(),
                "jwks_invalid",
                "{}",
                document.escape_ascii()
            );
        }
    }

    #[test]
    fn jwks_caps_key_count() {
        let keys: Vec<Value> = (0..3).map(|i| rsa_jwk(&format!("k{i}"))).collect();
        let document = json!({"keys": keys}).to_string();
        let error = parse_jwks(document.as_bytes(), 2).unwrap_err();
        assert_eq!(error, JoseError::TooManyKeys { count: 3, max: 2 });
        assert_eq!(error.reason_code(), "jwks_too_many_keys");
        assert_eq!(parse_jwks(document.as_bytes(), 3).unwrap().len(), 3);
    }

    #[test]
    fn jwks_skips_non_signature_keys() {
        let mut enc = rsa_jwk("enc");
        enc["use"] = json!("enc");
        assert!(skip_reason(&enc).contains("use"));

        let mut sign_only = rsa_jwk("ops");
        sign_only["key_ops"] = json!(["sign"]);
        assert!(skip_reason(&sign_only).contains("key_ops"));

        let mut ops_text = rsa_jwk("ops");
        ops_text["key_ops"] = json!("verify");
        assert!(skip_reason(&ops_text).contains("key_ops"));
    }

    #[test]
    fn jwks_skips_private_and_symmetric_keys() {
        for member in PRIVATE_KEY_MEMBERS {
            let mut private = rsa_jwk("private");
            private[member] = json!("AQAB");
            assert!(skip_reason(&private).contains("private"), "member {member}");
        }
        let oct = json!({"kty": "oct", "kid": "hmac"});
        assert!(skip_reason(&oct).contains("oct"));
    }

    #[test]
    fn redact_removes_private_keys() {
        let mut private = rsa_jwk("private");
        private["d"] = json!("c2VjcmV0");
        let document = json!({"keys": [rsa_jwk("public"), private]}).to_string();
        let redacted = redact_private_keys(&document).unwrap();
        assert!(!redacted.contains("c2VjcmV0"));
        assert_eq!(parse_jwks(redacted.as_bytes(), 32).unwrap().len(), 1);

        let clean = json!({"keys": [rsa_jwk("public")]}).to_string();
        assert_eq!(redact_private_keys(&clean), None);
    }

    #[test]
    fn jwks_skips_unknown_or_incomplete_keys() {
        let cases = [
            (json!({"kty": "XYZ", "kid": "a"}), "kty"),
            (
                json!({"kid": "a", "n": "AQAB", "e": "AQAB"}),
                "kty is missing",
            ),
            (
                json!({"kty": "RSA", "kid": "a", "e": "AQAB"}),
                "n is missing",
            ),
            (
                json!({"kty": "RSA", "kid": 5, "n": "AQAB", "e": "AQAB"}),
                "kid is not a string",
            ),
            (
                json!({"kty": "RSA", "kid": "a", "n": "AQ==", "e": "AQAB"}),
                "base64url",
            ),
            (json!("a string"), "not a JSON object"),
        ];
        for (jwk, expected) in cases {
            let reason = skip_reason(&jwk);
            assert!(reason.contains(expected), "jwk {jwk}: {reason}");
        }
    }

    #[test]
    fn jwks_skips_weak_rsa_keys() {
        // A 1024-bit modulus: 128 octets with the top bit set.
        let mut short_modulus = vec![0xC5; 128];
        short_modulus[127] = 0x01;
        let weak = json!({"kty": "RSA", "kid": "weak", "n": b64(&short_modulus), "e": "AQAB"});
        assert!(skip_reason(&weak).contains("1024 bits"));

        for exponent in [&[2_u8][..], &[1], &[], &[1, 0, 0, 0, 0, 1]] {
            let mut jwk = rsa_jwk("e");
            jwk["e"] = json!(b64(exponent));
            assert!(
                skip_reason(&jwk).contains("exponent"),
                "exponent {exponent:?}"
            );
        }

        let mut padded = rsa_jwk("padded");
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_pair().public_key());
        let mut modulus = vec![0];
        modulus.extend_from_slice(&components.n);
        padded["n"] = json!(b64(&modulus));
        assert_eq!(key_set(&[padded]).len(), 1);
    }

    #[test]
    fn jwks_skips_bad_ec_keys() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let good = p256.jwk("ec", "P-256");

        let mut short_x = good.clone();
        short_x["x"] = json!(b64(&[1; 31]));
        assert!(skip_reason(&short_x).contains("31 bytes"));

        let mut wrong_curve = good.clone();
        wrong_curve["crv"] = json!("P-384");
        assert!(skip_reason(&wrong_curve).contains("48"));

        let mut unsupported_curve = good.clone();
        unsupported_curve["crv"] = json!("P-521");
        assert!(skip_reason(&unsupported_curve).contains("not supported"));

        let mut off_curve = good.clone();
        off_curve["y"] = json!(b64(&[7; 32]));
        assert!(skip_reason(&off_curve).contains("not on curve"));

        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[9; 32])});
        assert!(skip_reason(&x25519).contains("not supported"));
    }

    #[test]
    fn jwks_skips_alg_that_does_not_fit() {
        let mut rsa_as_ec = rsa_jwk("a");
        rsa_as_ec["alg"] = json!("ES256");
        assert!(skip_reason(&rsa_as_ec).contains("does not fit"));

        let mut rsa_as_hmac = rsa_jwk("a");
        rsa_as_hmac["alg"] = json!("HS256");
        assert!(skip_reason(&rsa_as_hmac).contains("not a supported algorithm"));
    }

    #[test]
    fn jwks_records_skipped_kid() {
        let mut enc = rsa_jwk("enc-key");
        enc["use"] = json!("enc");
        let set = key_set(&[rsa_jwk("good"), enc]);
        assert_eq!(set.len(), 1);
        let skipped = &set.skipped()[0];
        assert_eq!(skipped.index, 1);
        assert_eq!(skipped.kid.as_deref(), Some("enc-key"));
        assert!(skipped.to_string().starts_with("key #1 (kid \"enc-key\")"));
    }

    #[test]
    fn jwks_fingerprints_track_changes() {
        let first = key_set(&[rsa_jwk("a")]);
        let same = key_set(&[rsa_jwk("a")]);
        let renamed = key_set(&[rsa_jwk("b")]);
        assert_eq!(first.fingerprints(), same.fingerprints());
        assert_ne!(first.fingerprints(), renamed.fingerprints());
    }

    // Key selection.

    #[test]
    fn select_by_kid_and_alg() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let set = key_set(&[rsa_jwk("r1"), p256.jwk("e1", "P-256")]);

        let key = select_key(&set, Some("r1"), Algorithm::RS256).unwrap();
        assert_eq!(key.kid(), Some("r1"));
        let key = select_key(&set, Some("e1"), Algorithm::ES256).unwrap();
        assert_eq!(key.kid(), Some("e1"));

        let error = select_key(&set, Some("zz"), Algorithm::RS256).unwrap_err();
        assert_eq!(error.reason_code(), "unknown_kid");
        assert!(error.may_resolve_after_refresh());

        let error = select_key(&set, Some("r1"), Algorithm::ES256).unwrap_err();
        assert_eq!(error.reason_code(), "kid_alg_mismatch");
        assert!(!error.may_resolve_after_refresh());
    }

    #[test]
    fn select_rejects_shared_kid() {
        let set = key_set(&[rsa_jwk("same"), rsa_jwk("same")]);
        let error = select_key(&set, Some("same"), Algorithm::RS256).unwrap_err();
        assert_eq!(error.reason_code(), "ambiguous_kid");
    }

    #[test]
    fn select_honours_key_alg() {
        let mut pinned = rsa_jwk("p");
        pinned["alg"] = json!("PS256");
        let set = key_set(&[pinned]);
        assert!(select_key(&set, Some("p"), Algorithm::PS256).is_ok());
        let error = select_key(&set, Some("p"), Algorithm::RS256).unwrap_err();
        assert_eq!(error.reason_code(), "kid_alg_mismatch");
    }

    #[test]
    fn select_without_kid_needs_one_candidate() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let single = key_set(&[rsa_jwk("r1"), p256.jwk("e1", "P-256")]);
        let key = select_key(&single, None, Algorithm::RS256).unwrap();
        assert_eq!(key.kid(), Some("r1"));

        let error = select_key(&single, None, Algorithm::ES384).unwrap_err();
        assert_eq!(error.reason_code(), "no_matching_key");

        let double = key_set(&[rsa_jwk("r1"), rsa_jwk("r2")]);
        let error = select_key(&double, None, Algorithm::RS256).unwrap_err();
        assert_eq!(
            error,
            KeySelectError::KidRequired {
                alg: Algorithm::RS256,
                count: 2
            }
        );
        assert_eq!(error.reason_code(), "kid_required");
    }

    // Verification.

    fn verify_token(token: &str, set: &KeySet) -> bool {
        let parsed = parse(token).unwrap();
        let alg = asymmetric_algorithm(parsed.header().alg().unwrap()).unwrap();
        let key = select_key(set, parsed.header().kid(), alg).unwrap();
        verify(&parsed, key, alg)
    }

    #[test]
    fn verify_rsa_signatures() {
        let set = key_set(&[rsa_jwk("r1")]);
        let table: [(&str, &'static dyn RsaEncoding); 4] = [
            ("RS256", &aws_signature::RSA_PKCS1_SHA256),
            ("RS512", &aws_signature::RSA_PKCS1_SHA512),
            ("PS256", &aws_signature::RSA_PSS_SHA256),
            ("PS384", &aws_signature::RSA_PSS_SHA384),
        ];
        for (alg, encoding) in table {
            let token = signed_token(&id_jag_header(alg, Some("r1")), |input| {
                rsa_sign(encoding, input)
            });
            assert!(verify_token(&token, &set), "alg {alg}");
        }
    }

    #[test]
    fn verify_fails_after_tampering() {
        let set = key_set(&[rsa_jwk("r1")]);
        let token = signed_token(&id_jag_header("RS256", Some("r1")), |input| {
            rsa_sign(&aws_signature::RSA_PKCS1_SHA256, input)
        });
        let [header, payload, signature]: [&str; 3] =
            token.split('.').collect::<Vec<_>>().try_into().unwrap();

        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 0x01;
        let flipped_signature = format!("{header}.{payload}.{}", b64(&bytes));
        assert!(!verify_token(&flipped_signature, &set));

        let mut other_claims = claims();
        other_claims["sub"] = json!("admin");
        let swapped_payload = format!("{header}.{}.{signature}", b64_json(&other_claims));
        assert!(!verify_token(&swapped_payload, &set));
    }

    #[test]
    fn verify_rejects_signature_under_wrong_alg() {
        let set = key_set(&[rsa_jwk("r1")]);
        let token = signed_token(&id_jag_header("RS256", Some("r1")), |input| {
            rsa_sign(&aws_signature::RSA_PKCS1_SHA256, input)
        });
        let parsed = parse(&token).unwrap();
        let key = &set.keys()[0];
        assert!(verify(&parsed, key, Algorithm::RS256));
        assert!(!verify(&parsed, key, Algorithm::PS256));
        assert!(!verify(&parsed, key, Algorithm::ES256));
    }

    #[test]
    fn verify_ecdsa_fixed_signatures() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let p384 = EcKey::generate(&ECDSA_P384_SHA384_FIXED_SIGNING);
        let set = key_set(&[p256.jwk("e256", "P-256"), p384.jwk("e384", "P-384")]);

        let token = signed_token(&id_jag_header("ES256", Some("e256")), |input| {
            p256.sign(&ECDSA_P256_SHA256_FIXED_SIGNING, input)
        });
        assert!(verify_token(&token, &set));

        let token = signed_token(&id_jag_header("ES384", Some("e384")), |input| {
            p384.sign(&ECDSA_P384_SHA384_FIXED_SIGNING, input)
        });
        assert!(verify_token(&token, &set));
    }

    #[test]
    fn verify_rejects_der_ecdsa_signature() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let set = key_set(&[p256.jwk("e256", "P-256")]);
        let token = signed_token(&id_jag_header("ES256", Some("e256")), |input| {
            let der = p256.sign(&ECDSA_P256_SHA256_ASN1_SIGNING, input);
            assert_ne!(der.len(), 64, "a DER signature is not 64 bytes");
            der
        });
        assert!(!verify_token(&token, &set));
    }

    #[test]
    fn verify_rejects_zero_ecdsa_scalars() {
        let p256 = EcKey::generate(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let set = key_set(&[p256.jwk("e256", "P-256")]);
        let good = p256.sign(&ECDSA_P256_SHA256_FIXED_SIGNING, b"anything");
        let (r, s) = good.split_at(32);
        for signature in [[&[0; 32][..], s].concat(), [r, &[0; 32][..]].concat()] {
            let token = signed_token(&id_jag_header("ES256", Some("e256")), |_| signature.clone());
            assert!(!verify_token(&token, &set));
        }
        let order_sized = signed_token(&id_jag_header("ES256", Some("e256")), |_| vec![0xFF; 64]);
        assert!(!verify_token(&order_sized, &set));
    }

    #[test]
    fn verify_eddsa_signature() {
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(pair.public_key().as_ref())
        });
        let set = key_set(&[jwk]);
        let token = signed_token(&id_jag_header("EdDSA", Some("ed")), |input| {
            pair.sign(input).as_ref().to_vec()
        });
        assert!(verify_token(&token, &set));
    }

    #[test]
    fn hmac_with_public_key_as_secret_fails() {
        // The classic confusion attack: HS256 keyed with the issuer's public RSA modulus.
        let jwk = rsa_jwk("r1");
        let secret = jwk["n"].as_str().unwrap().as_bytes().to_vec();
        let header = id_jag_header("HS256", Some("r1"));
        let token = signed_token(&header, |input| {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
            aws_lc_rs::hmac::sign(&key, input).as_ref().to_vec()
        });
        let parsed = parse(&token).unwrap();
        let allowed = vec!["HS256".to_owned(), "RS256".to_owned()];
        assert_eq!(
            check_header(parsed.header(), &allowed)
                .unwrap_err()
                .reason_code(),
            "alg_not_allowed"
        );

        let set = key_set(&[jwk]);
        assert!(!verify(&parsed, &set.keys()[0], Algorithm::HS256));
    }
}
