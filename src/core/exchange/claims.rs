//! Pure checks of ID-JAG claims, scopes and resources. No I/O: every input is passed in, so
//! each rule is tested on its own.

use serde_json::{Map, Value};

use super::{ExchangeError, OAuthErrorCode};

/// Limits that apply to one ID-JAG.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits {
    /// Current time, in seconds since the epoch.
    pub now: i64,
    pub leeway_secs: i64,
    pub max_lifetime_secs: i64,
    pub max_claim_bytes: usize,
    pub max_scopes: usize,
}

/// The validated times of an ID-JAG, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub iat: i64,
    pub exp: i64,
}

fn grant_error(reason: &'static str, detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(OAuthErrorCode::InvalidGrant, reason, detail)
}

/// Reads a NumericDate claim: a finite JSON number within the i64 range (fractions are
/// truncated). Strings, booleans and other types are rejected.
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ExchangeError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let invalid = || {
        grant_error(
            "claim_type_invalid",
            format!("'{name}' is not a NumericDate"),
        )
    };
    let Value::Number(number) = value else {
        return Err(invalid());
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    let float = number.as_f64().ok_or_else(invalid)?;
    // The range check keeps the cast below exact enough and free of saturation surprises.
    if !float.is_finite() || float.abs() > 1e15 {
        return Err(invalid());
    }
    #[expect(clippy::cast_possible_truncation, reason = "range checked above")]
    Ok(Some(float.trunc() as i64))
}

/// Checks `exp`, `iat`, `nbf` and the lifetime limits.
pub fn check_times(
    claims: &Map<String, Value>,
    limits: &ClaimLimits,
) -> Result<Times, ExchangeError> {
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| grant_error("exp_missing", "'exp' is missing"))?;
    let iat = numeric_date(claims, "iat")?
        .ok_or_else(|| grant_error("iat_missing", "'iat' is missing"))?;
    let leeway = limits.leeway_secs;

    if limits.now > exp.saturating_add(leeway) {
        return Err(grant_error(
            "expired",
            format!("expired at {exp}, now {}", limits.now),
        ));
    }
    if iat > limits.now.saturating_add(leeway) {
        return Err(grant_error(
            "iat_in_future",
            format!("'iat' {iat} is in the future"),
        ));
    }
    if exp.saturating_sub(iat) > limits.max_lifetime_secs {
        return Err(grant_error(
            "lifetime_too_long",
            format!(
                "exp - iat = {} s exceeds {} s",
                exp.saturating_sub(iat),
                limits.max_lifetime_secs
            ),
        ));
    }
    if exp < iat {
        return Err(grant_error("exp_before_iat", "'exp' is before 'iat'"));
    }
    let max_age = limits.max_lifetime_secs.saturating_add(leeway);
    if limits.now.saturating_sub(iat) > max_age {
        return Err(grant_error(
            "too_old",
            format!("issued more than {max_age} s ago"),
        ));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && limits.now.saturating_add(leeway) < nbf
    {
        return Err(grant_error(
            "not_yet_valid",
            format!("'nbf' {nbf} is in the future"),
        ));
    }
    Ok(Times { iat, exp })
}

/// Reads a required, non-empty string claim of at most `max_bytes`.
pub fn required_string(
    claims: &Map<String, Value>,
    name: &'static str,
    reason: &'static str,
    max_bytes: usize,
) -> Result<String, ExchangeError> {
    match claims.get(name) {
        Some(Value::String(text)) if is_identifier_text(text, max_bytes) => Ok(text.clone()),
        Some(Value::String(text)) if text.is_empty() => {
            Err(grant_error(reason, format!("'{name}' is empty")))
        }
        Some(Value::String(text)) if text.len() > max_bytes => Err(grant_error(
            reason,
            format!("'{name}' is longer than {max_bytes} bytes"),
        )),
        Some(Value::String(_)) => Err(grant_error(
            reason,
            format!("'{name}' has control characters or surrounding whitespace"),
        )),
        Some(_) => Err(grant_error(reason, format!("'{name}' is not a string"))),
        None => Err(grant_error(reason, format!("'{name}' is missing"))),
    }
}

/// Whether text is acceptable as a `jti`, `sub` or `client_id`: non-empty, at most `max_bytes`,
/// and free of control characters (C0, DEL, C1) and whitespace at either end. The exchange and
/// the revocation API apply the same rule, so every recorded token can be revoked.
pub fn is_identifier_text(text: &str, max_bytes: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_bytes
        && text.trim() == text
        && !text.chars().any(char::is_control)
}

/// Whether text is a well-formed `jti`: 1 to 256 visible ASCII characters other than `"` and
/// `\`, which covers UUIDs, base64url, `urn:uuid:` and Okta's `ID.` forms. The exchange and the
/// revocation API apply the same rule, so every recorded ID-JAG can be revoked by its JTI.
pub fn is_jti_text(text: &str) -> bool {
    (1..=256).contains(&text.len())
        && text
            .bytes()
            .all(|b| (0x21..=0x7E).contains(&b) && b != b'"' && b != b'\\')
}

/// `aud` must be our issuer, as a string or as an array holding exactly that one string.
pub fn check_audience(claims: &Map<String, Value>, issuer: &str) -> Result<(), ExchangeError> {
    let matches = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(values)) => {
            values.len() == 1 && values[0].as_str().is_some_and(|aud| aud == issuer)
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(grant_error(
            "audience_mismatch",
            format!("'aud' is not exactly '{issuer}'"),
        ))
    }
}

/// Whether `token` is a valid RFC 6749 scope token (`%x21 / %x23-5B / %x5D-7E`).
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Splits a space-delimited scope string, checking syntax and count.
pub fn split_scopes(text: &str, max_scopes: usize) -> Result<Vec<String>, (&'static str, String)> {
    let mut scopes: Vec<String> = Vec::new();
    for token in text.split(' ').filter(|token| !token.is_empty()) {
        if !is_scope_token(token) {
            return Err((
                "scope_syntax",
                format!("'{}' is not a valid scope", token.escape_default()),
            ));
        }
        if !scopes.iter().any(|existing| existing == token) {
            scopes.push(token.to_owned());
        }
        if scopes.len() > max_scopes {
            return Err(("too_many_scopes", format!("more than {max_scopes} scopes")));
        }
    }
    Ok(scopes)
}

/// The ID-JAG `scope` claim: absent means none; anything but a string is rejected.
pub fn scope_claim(
    claims: &Map<String, Value>,
    max_scopes: usize,
) -> Result<Vec<String>, ExchangeError> {
    match claims.get("scope") {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => {
            split_scopes(text, max_scopes).map_err(|(reason, detail)| grant_error(reason, detail))
        }
        Some(_) => Err(grant_error("scope_not_string", "'scope' is not a string")),
    }
}

/// Narrows scopes: ID-JAG scopes ∩ the mapping's allowed scopes ∩ the requested scopes.
///
/// A request naming a scope the ID-JAG does not carry is `invalid_scope`, and so is an empty
/// result. The order of the ID-JAG's scopes is kept.
pub fn narrow_scopes(
    granted_by_idp: &[String],
    allowed: &[String],
    requested: Option<&[String]>,
) -> Result<Vec<String>, ExchangeError> {
    if let Some(requested) = requested
        && let Some(extra) = requested
            .iter()
            .find(|scope| !granted_by_idp.contains(scope))
    {
        return Err(ExchangeError::new(
            OAuthErrorCode::InvalidScope,
            "scope_not_granted",
            format!("requested scope '{extra}' is not in the ID-JAG"),
        ));
    }
    let granted: Vec<String> = granted_by_idp
        .iter()
        .filter(|scope| allowed.contains(scope))
        .filter(|scope| requested.is_none_or(|requested| requested.contains(scope)))
        .cloned()
        .collect();
    if granted.is_empty() {
        return Err(ExchangeError::new(
            OAuthErrorCode::InvalidScope,
            "no_grantable_scope",
            "no scope is both in the ID-JAG and allowed for this client",
        ));
    }
    Ok(granted)
}

/// The ID-JAG `resource` claim: a string or a non-empty array of strings.
pub fn resource_claim(claims: &Map<String, Value>) -> Result<Option<Vec<String>>, ExchangeError> {
    match claims.get("resource") {
        None => Ok(None),
        Some(Value::String(resource)) => Ok(Some(vec![resource.clone()])),
        Some(Value::Array(values)) if !values.is_empty() => values
            .iter()
            .map(|value| {
                value.as_str().map(str::to_owned).ok_or_else(|| {
                    grant_error("resource_invalid", "'resource' array holds a non-string")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(grant_error(
            "resource_invalid",
            "'resource' is not a string or array",
        )),
    }
}

/// Normalizes a URI for comparison (RFC 3986 §6.2.2: case of scheme and host, default port,
/// empty path); text that does not parse compares as it is.
pub fn normalize_uri(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => text.to_owned(),
    }
}

/// Decides the access token's resource from the proxy's resource, the ID-JAG claim and the
/// request parameter.
pub fn decide_resource(
    proxy_resource: Option<&str>,
    require_resource: bool,
    claim: Option<&[String]>,
    requested: Option<&str>,
) -> Result<Option<String>, ExchangeError> {
    let ours = proxy_resource.map(normalize_uri);
    if let Some(claim) = claim {
        let Some(ours) = &ours else {
            return Err(grant_error(
                "resource_not_ours",
                "this proxy declares no resource",
            ));
        };
        if let Some(foreign) = claim.iter().find(|value| normalize_uri(value) != *ours) {
            return Err(grant_error(
                "resource_not_ours",
                format!(
                    "resource '{}' is not governed by this proxy",
                    foreign.escape_default()
                ),
            ));
        }
    } else if require_resource {
        return Err(grant_error(
            "resource_missing",
            "this proxy requires a 'resource' claim",
        ));
    }
    if let Some(requested) = requested
        && ours.as_deref() != Some(normalize_uri(requested).as_str())
    {
        return Err(ExchangeError::new(
            OAuthErrorCode::InvalidTarget,
            "resource_param_not_allowed",
            format!(
                "requested resource '{}' is not allowed",
                requested.escape_default()
            ),
        ));
    }
    Ok(proxy_resource.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: serde_json::Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("test claims must be an object, got {other}"),
        }
    }

    fn limits(now: i64) -> ClaimLimits {
        ClaimLimits {
            now,
            leeway_secs: 60,
            max_lifetime_secs: 600,
            max_claim_bytes: 256,
            max_scopes: 64,
        }
    }

    fn reason(result: Result<Times, ExchangeError>) -> &'static str {
        result.unwrap_err().reason
    }

    #[test]
    fn times_accept_inside_leeway() {
        let now = 1_000_000;
        let ok = check_times(
            &claims(json!({"iat": now - 300, "exp": now - 59})),
            &limits(now),
        );
        assert_eq!(
            ok.unwrap(),
            Times {
                iat: now - 300,
                exp: now - 59
            }
        );
        let nbf = json!({"iat": now, "exp": now + 300, "nbf": now + 30});
        assert!(check_times(&claims(nbf), &limits(now)).is_ok());
    }

    #[test]
    fn times_reject_each_rule() {
        let now = 1_000_000;
        let cases = [
            (json!({"iat": now}), "exp_missing"),
            (json!({"exp": now + 10}), "iat_missing"),
            (json!({"iat": now - 300, "exp": now - 61}), "expired"),
            (json!({"iat": now + 120, "exp": now + 300}), "iat_in_future"),
            (json!({"iat": now, "exp": now + 3600}), "lifetime_too_long"),
            (
                json!({"iat": now, "exp": now + 300, "nbf": now + 120}),
                "not_yet_valid",
            ),
            (json!({"iat": "1", "exp": now + 300}), "claim_type_invalid"),
            (json!({"iat": now, "exp": true}), "claim_type_invalid"),
            (json!({"iat": now, "exp": 1e300}), "claim_type_invalid"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                reason(check_times(&claims(value.clone()), &limits(now))),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn audience_string_or_single_array() {
        let issuer = "https://as.test";
        assert!(check_audience(&claims(json!({"aud": issuer})), issuer).is_ok());
        assert!(check_audience(&claims(json!({"aud": [issuer]})), issuer).is_ok());
        for aud in [
            json!([issuer, "https://other"]),
            json!([]),
            json!("https://as.test/"),
            json!(5),
        ] {
            assert!(
                check_audience(&claims(json!({"aud": aud})), issuer).is_err(),
                "{aud}"
            );
        }
        assert!(check_audience(&claims(json!({})), issuer).is_err());
    }

    #[test]
    fn required_strings_reject_bad_values() {
        for value in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 12345}),
            json!({"sub": "x".repeat(300)}),
        ] {
            assert!(
                required_string(&claims(value.clone()), "sub", "sub_invalid", 256).is_err(),
                "{value}"
            );
        }
        assert_eq!(
            required_string(&claims(json!({"sub": "u1"})), "sub", "r", 256).unwrap(),
            "u1"
        );
    }

    #[test]
    fn scopes_narrow_and_reject() {
        let idp = vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "admin".to_owned(),
        ];
        let allowed = vec!["openid".to_owned(), "profile".to_owned()];
        assert_eq!(
            narrow_scopes(&idp, &allowed, None).unwrap(),
            ["openid", "profile"]
        );
        let subset = vec!["profile".to_owned()];
        assert_eq!(
            narrow_scopes(&idp, &allowed, Some(&subset)).unwrap(),
            ["profile"]
        );
        let wider = vec!["email".to_owned()];
        let error = narrow_scopes(&idp, &allowed, Some(&wider)).unwrap_err();
        assert_eq!(error.code, OAuthErrorCode::InvalidScope);
        assert_eq!(
            narrow_scopes(&[], &allowed, None).unwrap_err().code,
            OAuthErrorCode::InvalidScope
        );
    }

    #[test]
    fn scope_claim_types() {
        assert!(scope_claim(&claims(json!({"scope": ["a"]})), 64).is_err());
        assert_eq!(
            scope_claim(&claims(json!({"scope": "a  b a"})), 64).unwrap(),
            ["a", "b"]
        );
        assert!(scope_claim(&claims(json!({"scope": "a\"b"})), 64).is_err());
        assert!(scope_claim(&claims(json!({"scope": "a b c"})), 2).is_err());
    }

    #[test]
    fn resource_rules() {
        let ours = Some("https://mcp.example/api");
        let claim = vec!["https://MCP.example/api".to_owned()];
        assert_eq!(
            decide_resource(ours, true, Some(&claim), None)
                .unwrap()
                .as_deref(),
            ours
        );
        let foreign = vec!["https://evil.example".to_owned()];
        assert!(decide_resource(ours, false, Some(&foreign), None).is_err());
        assert_eq!(
            decide_resource(ours, true, None, None).unwrap_err().reason,
            "resource_missing"
        );
        let target = decide_resource(ours, false, Some(&claim), Some("https://other")).unwrap_err();
        assert_eq!(target.code, OAuthErrorCode::InvalidTarget);
        assert!(decide_resource(None, false, Some(&claim), None).is_err());
        assert_eq!(decide_resource(None, false, None, None).unwrap(), None);
    }
}
