//! Token endpoint cases over real HTTP: a test IdP signs ID-JAGs and each case sends one
//! request to a running xaa, then checks the status, the OAuth error, the response headers and
//! that a rejected request stored and issued nothing. Each test function shares one IdP and one
//! server among its cases.

// The case tables are long lists of short entries, and splitting them would scatter a topic.
#![allow(clippy::too_many_lines)]

mod common;

use common::cases::{
    CLIENT_ASSERTION_TYPE, Case, Expect, JWT_BEARER, TokenRequest, access_tokens_for, add_client,
    admin_json, check_cases, wait_for_key_fetch,
};
use common::idp::{self, KeyChoice, Mode, RsaAlg, TestIdp, unix_now};
use common::server::TestServer;
use reqwest::Method;
use serde_json::{Map, Value, json};
use xaa::config::Config;

/// Scopes every test client may receive.
const ALLOWED_SCOPES: &[&str] = &["openid", "mcp:tools"];

/// What a client gets from the default ID-JAG scope `openid profile mcp:tools`.
const GRANTED: &str = "openid mcp:tools";

const SUBJECT: &str = "alice@example.com";

/// The protected resource of the MCP proxy.
const MCP_RESOURCE: &str = "https://mcp.example/api";

/// An RFC 7638 JWK thumbprint for `cnf.jkt`.
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

/// A client id in the form of a client ID metadata document URL.
const CIMD_CLIENT: &str = "https://app.example/oauth/client-metadata.json";

/// One client at one proxy, with the IdP that signs its ID-JAGs.
struct Ctx<'a> {
    idp: &'a TestIdp,
    server: &'a TestServer,
    proxy: i64,
    client: &'a str,
    secret: &'a str,
}

impl Ctx<'_> {
    /// Builds valid ID-JAG claims for this client at this proxy.
    fn claims(&self) -> Value {
        self.idp
            .claims(&self.server.issuer(self.proxy), self.client, SUBJECT)
    }

    fn edited(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut claims = self.claims();
        edit(claims.as_object_mut().expect("claims are a JSON object"));
        claims
    }

    fn request(&self, assertion: &str) -> TokenRequest {
        TokenRequest::new(self.server, self.proxy, self.client, self.secret, assertion)
    }

    /// Builds a valid request with a fresh RS256 ID-JAG.
    fn valid(&self) -> TokenRequest {
        self.request(&self.idp.mint(&self.claims()))
    }

    /// Builds a request whose ID-JAG claims are changed by `edit`, signed with the primary key.
    fn with_claims(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> TokenRequest {
        self.request(&self.idp.mint(&self.edited(edit)))
    }

    /// Builds a request whose JOSE header is changed by `edit`, signed with the primary key.
    fn with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> TokenRequest {
        let mut header = self.idp.header_for(&KeyChoice::Rsa);
        edit(header.as_object_mut().expect("the header is a JSON object"));
        self.request(&self.idp.sign_json(&header, &self.claims(), &KeyChoice::Rsa))
    }

    /// Builds a request with an ID-JAG signed by `key` under the header that fits it.
    fn signed_by(&self, key: &KeyChoice) -> TokenRequest {
        self.request(&self.idp.mint_with(key, &self.claims()))
    }
}

fn set(claims: &mut Map<String, Value>, name: &str, value: Value) {
    claims.insert(name.to_owned(), value);
}

/// Starts a server on a fresh directory with an adjusted configuration.
async fn start_server(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    TestServer::start_in(&dir, adjust).await
}

/// Creates a provider and waits for the key fetch its creation starts.
async fn trusted_provider(server: &TestServer, issuer: &str, extra: Value) -> i64 {
    let provider = server.add_provider(issuer, extra).await;
    wait_for_key_fetch(server, provider).await;
    provider
}

/// Signs a `private_key_jwt` client assertion for `c1` with a key xaa never saw.
fn client_assertion(idp: &TestIdp, audience: &str) -> String {
    let now = unix_now();
    let header = json!({
        "typ": "client-authentication+jwt",
        "alg": "RS256",
        "kid": idp.attacker_kid(),
    });
    let claims = json!({
        "iss": "c1",
        "sub": "c1",
        "aud": audience,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 60,
    });
    idp.sign_json(&header, &claims, &KeyChoice::Attacker)
}

// ---- HTTP layer and client authentication --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_layer_and_client_authentication() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = trusted_provider(&server, idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("tools", json!({})).await;
    let other_proxy = server.add_proxy("other", json!({})).await;
    let (_, secret) = add_client(&server, proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    let (_, other_secret) = add_client(
        &server,
        other_proxy,
        provider,
        "0oa-c1",
        "c1",
        ALLOWED_SCOPES,
    )
    .await;
    let (_, cimd_secret) = add_client(
        &server,
        proxy,
        provider,
        "0oa-cimd",
        CIMD_CLIENT,
        ALLOWED_SCOPES,
    )
    .await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let cimd = Ctx {
        client: CIMD_CLIENT,
        secret: &cimd_secret,
        ..ctx
    };
    let form_body = || {
        let form = [
            ("grant_type", JWT_BEARER.to_owned()),
            ("assertion", idp.mint(&ctx.claims())),
        ];
        serde_urlencoded::to_string(form).expect("form encodes")
    };
    let json_body =
        || json!({ "grant_type": JWT_BEARER, "assertion": idp.mint(&ctx.claims()) }).to_string();
    let private_key_jwt = |audience: &str| {
        ctx.valid()
            .without_basic()
            .param("client_id", "c1")
            .param("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .param("client_assertion", &client_assertion(&idp, audience))
    };
    let replayed_client_assertion = client_assertion(&idp, &server.issuer(proxy));

    let cases = vec![
        Case::new(
            "GET on the token endpoint",
            Expect::MethodNotAllowed,
            || ctx.valid().method(Method::GET),
        ),
        Case::new("unknown proxy id", Expect::NotFound, || {
            ctx.valid().url(&server.token_endpoint(999_999))
        }),
        Case::new("proxy id that is not a number", Expect::NotFound, || {
            let url = format!("{}/proxies/tools/oauth2/token", server.public_url);
            ctx.valid().url(&url)
        }),
        Case::new(
            "JSON body instead of a form",
            Expect::invalid_request(),
            || ctx.valid().raw_body(Some("application/json"), &json_body()),
        ),
        Case::new(
            "form body without Content-Type",
            Expect::invalid_request(),
            || ctx.valid().raw_body(None, &form_body()),
        ),
        Case::new("grant_type missing", Expect::invalid_request(), || {
            ctx.valid().without("grant_type")
        }),
        Case::new("grant_type empty", Expect::invalid_request(), || {
            ctx.valid().set("grant_type", "")
        }),
        Case::new("grant_type sent twice", Expect::invalid_request(), || {
            ctx.valid().param("grant_type", JWT_BEARER)
        }),
        Case::new(
            "grant_type password",
            Expect::Rejected {
                status: 400,
                error: "unsupported_grant_type",
                reason: None,
            },
            || ctx.valid().set("grant_type", "password"),
        ),
        Case::new(
            "grant_type password without client authentication",
            Expect::Rejected {
                status: 400,
                error: "unsupported_grant_type",
                reason: None,
            },
            || ctx.valid().set("grant_type", "password").without_basic(),
        ),
        Case::new("assertion missing", Expect::invalid_request(), || {
            ctx.valid().without("assertion")
        }),
        Case::new("assertion empty", Expect::invalid_request(), || {
            ctx.valid().set("assertion", "")
        }),
        Case::new(
            "two assertion parameters",
            Expect::invalid_request(),
            || ctx.valid().param("assertion", &idp.mint(&ctx.claims())),
        ),
        Case::new("request body over 64 KiB", Expect::BodyTooLarge, || {
            ctx.valid().param("padding", &"p".repeat(65 * 1024))
        }),
        Case::new(
            "form Content-Type with a charset",
            Expect::issued(GRANTED),
            || {
                ctx.valid().raw_body(
                    Some("application/x-www-form-urlencoded; charset=UTF-8"),
                    &form_body(),
                )
            },
        ),
        Case::new(
            "no client authentication",
            Expect::invalid_client(None),
            || ctx.valid().without_basic(),
        ),
        Case::new(
            "public client sending only client_id",
            Expect::invalid_client(None),
            || ctx.valid().without_basic().param("client_id", "c1"),
        ),
        Case::new(
            "Authorization Bearer instead of Basic",
            Expect::invalid_client(None),
            || {
                ctx.valid()
                    .without_basic()
                    .header("Authorization", "Bearer some-token")
            },
        ),
        Case::new(
            "Basic credentials that are not base64",
            Expect::invalid_client(None),
            || {
                ctx.valid()
                    .without_basic()
                    .header("Authorization", "Basic %%%not-base64")
            },
        ),
        Case::new(
            "wrong secret in Basic",
            Expect::invalid_client(Some("client_auth_failed")),
            || ctx.valid().basic("c1", "wrong-secret"),
        ),
        Case::new(
            "unknown client in Basic",
            Expect::invalid_client(Some("client_auth_failed")),
            || ctx.valid().basic("c-unknown", &secret),
        ),
        Case::new(
            "secret of the same client id at another proxy",
            Expect::invalid_client(Some("client_auth_failed")),
            || ctx.valid().basic("c1", &other_secret),
        ),
        Case::new(
            "wrong secret with client_secret_post",
            Expect::invalid_client(Some("client_auth_failed")),
            || {
                ctx.valid()
                    .without_basic()
                    .param("client_id", "c1")
                    .param("client_secret", "wrong-secret")
            },
        ),
        Case::new(
            "Basic and client_secret in the body",
            Expect::invalid_request(),
            || ctx.valid().param("client_secret", &secret),
        ),
        Case::new(
            "Basic and client_assertion in the body",
            Expect::invalid_request(),
            || {
                ctx.valid()
                    .param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                    .param("client_assertion", &replayed_client_assertion)
            },
        ),
        Case::new(
            "private_key_jwt with aud = token endpoint",
            Expect::invalid_client(None),
            || private_key_jwt(&server.token_endpoint(proxy)),
        ),
        Case::new(
            "private_key_jwt with aud = issuer",
            Expect::invalid_client(None),
            || private_key_jwt(&server.issuer(proxy)),
        ),
        Case::new(
            "private_key_jwt assertion presented again",
            Expect::invalid_client(None),
            || {
                ctx.valid()
                    .without_basic()
                    .param("client_id", "c1")
                    .param("client_assertion_type", CLIENT_ASSERTION_TYPE)
                    .param("client_assertion", &replayed_client_assertion)
            },
        ),
        Case::new("client_secret_basic", Expect::issued(GRANTED), || {
            ctx.valid()
        }),
        Case::new("client_secret_post", Expect::issued(GRANTED), || {
            ctx.valid().credentials_in_body()
        }),
        Case::new(
            "URL client id form-encoded in Basic",
            Expect::issued(GRANTED),
            || cimd.valid(),
        ),
        Case::new(
            "unrecognized parameter is ignored",
            Expect::issued(GRANTED),
            || ctx.valid().param("unknown_parameter", "value"),
        ),
    ];
    check_cases(&server, cases).await;
    server.stop().await;
}

// ---- Assertion syntax, JOSE header and signature ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertion_syntax_header_and_signature() {
    let idp = TestIdp::start().await;
    // Keys that are unfit for signatures are published before xaa first fetches the set.
    let enc_kid = idp.add_enc_key();
    let weak_kid = idp.add_weak_rsa_key();
    let attacker_x5c = idp.attacker_x5c();
    let server = TestServer::start().await;
    let provider = trusted_provider(&server, idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("tools", json!({})).await;
    let (_, secret) = add_client(&server, proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let attacker_header = |member: &str, value: Value| {
        let mut header = idp.header_for(&KeyChoice::Attacker);
        header[member] = value;
        ctx.request(&idp.sign_json(&header, &ctx.claims(), &KeyChoice::Attacker))
    };
    let segments = |count: usize| {
        let token = idp.mint(&ctx.claims());
        let [header, payload, signature] = idp::split_token(&token);
        let mut parts = vec![header, payload, signature, signature, signature];
        parts.truncate(count);
        ctx.request(&parts.join("."))
    };
    let raw =
        |header: &str, payload: &str| ctx.request(&idp.sign_raw(header, payload, &KeyChoice::Rsa));
    let header_text = || idp.header_for(&KeyChoice::Rsa).to_string();
    let claims_text = || ctx.claims().to_string();

    let mut cases = vec![
        // Key references come first so that every later request gives a late fetch of the
        // attacker URLs a chance to show up in the counter checked at the end.
        Case::new(
            "jku pointing at an attacker JWKS",
            Expect::grant("header_key_reference"),
            || attacker_header("jku", json!(idp.attacker_jwks_url())),
        ),
        Case::new(
            "x5u pointing at an attacker certificate",
            Expect::grant("header_key_reference"),
            || attacker_header("x5u", json!(idp.attacker_cert_url())),
        ),
        Case::new(
            "embedded jwk with the attacker key",
            Expect::grant("header_key_reference"),
            || attacker_header("jwk", idp.attacker_jwk()),
        ),
        Case::new("RS256 ID-JAG", Expect::issued(GRANTED), || ctx.valid()),
        Case::new("ES256 ID-JAG", Expect::issued(GRANTED), || {
            ctx.signed_by(&KeyChoice::Ec)
        }),
        Case::new(
            "assertion with 2 segments",
            Expect::grant("malformed_jws"),
            || segments(2),
        ),
        Case::new(
            "assertion with 4 segments",
            Expect::grant("malformed_jws"),
            || segments(4),
        ),
        Case::new(
            "assertion with 5 segments (JWE)",
            Expect::grant("jwe_unsupported"),
            || {
                let header = idp::b64url(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
                let part = idp::b64url("0123456789abcdef");
                ctx.request(&format!("{header}.{part}.{part}.{part}.{part}"))
            },
        ),
        Case::new(
            "header is a JSON array",
            Expect::grant("malformed_jws"),
            || raw(r#"["typ","alg"]"#, &claims_text()),
        ),
        Case::new("header is not JSON", Expect::grant("malformed_jws"), || {
            raw("typ=oauth-id-jag+jwt", &claims_text())
        }),
        Case::new(
            "payload is invalid UTF-8",
            Expect::grant("malformed_jws"),
            || {
                let payload = [b"{\"sub\":\"".as_slice(), &[0xff, 0xfe], b"\"}"].concat();
                let token = idp.sign_bytes(header_text().as_bytes(), &payload, &KeyChoice::Rsa);
                ctx.request(&token)
            },
        ),
        Case::new(
            "padding in a segment",
            Expect::grant("malformed_jws"),
            || {
                let token = idp.mint(&ctx.claims());
                let [header, payload, signature] = idp::split_token(&token);
                ctx.request(&format!("{header}=.{payload}.{signature}"))
            },
        ),
        Case::new(
            "duplicate alg in the header",
            Expect::grant("duplicate_member"),
            || {
                let header = format!(
                    r#"{{"typ":"oauth-id-jag+jwt","alg":"RS256","alg":"RS256","kid":"{}"}}"#,
                    idp.rsa_kid()
                );
                raw(&header, &claims_text())
            },
        ),
        Case::new(
            "duplicate sub in the payload",
            Expect::grant("duplicate_member"),
            || {
                let claims = claims_text();
                let payload = format!(r#"{{"sub":"mallory",{}"#, &claims[1..]);
                raw(&header_text(), &payload)
            },
        ),
        Case::new(
            "assertion larger than 16 KiB",
            Expect::grant("assertion_too_large"),
            || ctx.with_claims(|claims| set(claims, "padding", json!("x".repeat(17 * 1024)))),
        ),
        Case::new(
            "alg none with an empty signature",
            Expect::grant("alg_not_allowed"),
            || ctx.signed_by(&KeyChoice::Unsigned),
        ),
        Case::new(
            "HS256 keyed with the IdP public key PEM",
            Expect::grant("alg_not_allowed"),
            || ctx.signed_by(&KeyChoice::Hs256(idp.rsa_public_key_pem().into_bytes())),
        ),
        Case::new(
            "HS256 keyed with the IdP JWK modulus",
            Expect::grant("alg_not_allowed"),
            || {
                let jwk = idp.public_jwk(&idp.rsa_kid());
                let modulus = jwk["n"].as_str().expect("RSA JWKs have n").to_owned();
                ctx.signed_by(&KeyChoice::Hs256(modulus.into_bytes()))
            },
        ),
        Case::new(
            "RS512, not allowed for this issuer",
            Expect::grant("alg_not_allowed"),
            || ctx.signed_by(&KeyChoice::RsaAs(idp.rsa_kid(), RsaAlg::Rs512)),
        ),
        Case::new(
            "PS256 with a key published for RS256",
            Expect::grant("kid_alg_mismatch"),
            || ctx.signed_by(&KeyChoice::RsaAs(idp.rsa_kid(), RsaAlg::Ps256)),
        ),
        Case::new(
            "RS256 header naming the P-256 key",
            Expect::grant("kid_alg_mismatch"),
            || ctx.with_header(|header| set(header, "kid", json!(idp.ec_kid()))),
        ),
        Case::new("alg missing", Expect::grant("alg_not_allowed"), || {
            ctx.with_header(|header| {
                header.remove("alg");
            })
        }),
        Case::new("typ missing", Expect::grant("typ_invalid"), || {
            ctx.with_header(|header| {
                header.remove("typ");
            })
        }),
        Case::new("typ JWT", Expect::grant("typ_invalid"), || {
            ctx.with_header(|header| set(header, "typ", json!("JWT")))
        }),
        Case::new("typ at+jwt", Expect::grant("typ_invalid"), || {
            ctx.with_header(|header| set(header, "typ", json!("at+jwt")))
        }),
        Case::new(
            "typ client-authentication+jwt",
            Expect::grant("typ_invalid"),
            || ctx.with_header(|header| set(header, "typ", json!("client-authentication+jwt"))),
        ),
        Case::new("typ is a number", Expect::grant("typ_invalid"), || {
            ctx.with_header(|header| set(header, "typ", json!(1)))
        }),
        Case::new(
            "typ application/oauth-id-jag+jwt",
            Expect::issued(GRANTED),
            || {
                ctx.with_header(|header| {
                    set(header, "typ", json!("application/oauth-id-jag+jwt"));
                })
            },
        ),
        Case::new("typ OAUTH-ID-JAG+JWT", Expect::issued(GRANTED), || {
            ctx.with_header(|header| set(header, "typ", json!("OAUTH-ID-JAG+JWT")))
        }),
        Case::new(
            "crit naming an unknown extension that is present",
            Expect::grant("crit_unsupported"),
            || {
                ctx.with_header(|header| {
                    set(header, "crit", json!(["urn:x:unknown"]));
                    set(header, "urn:x:unknown", json!(true));
                })
            },
        ),
        Case::new("crit empty", Expect::grant("crit_unsupported"), || {
            ctx.with_header(|header| set(header, "crit", json!([])))
        }),
        Case::new("cty JWT", Expect::grant("header_unsupported"), || {
            ctx.with_header(|header| set(header, "cty", json!("JWT")))
        }),
        Case::new("b64 false", Expect::grant("header_unsupported"), || {
            ctx.with_header(|header| set(header, "b64", json!(false)))
        }),
        Case::new("zip on a JWS", Expect::grant("header_unsupported"), || {
            ctx.with_header(|header| set(header, "zip", json!("DEF")))
        }),
        Case::new(
            "kid longer than 256 bytes",
            Expect::grant("kid_invalid"),
            || ctx.with_header(|header| set(header, "kid", json!("k".repeat(257)))),
        ),
        Case::new("kid is a number", Expect::grant("kid_invalid"), || {
            ctx.with_header(|header| set(header, "kid", json!(7)))
        }),
        Case::new(
            "signature bit flipped",
            Expect::grant("signature_invalid"),
            || ctx.request(&idp::flip_signature_bit(&idp.mint(&ctx.claims()))),
        ),
        Case::new(
            "payload bit flipped",
            Expect::grant("signature_invalid"),
            || ctx.request(&idp::flip_payload_bit(&idp.mint(&ctx.claims()))),
        ),
        Case::new(
            "ES256 signature in DER form",
            Expect::grant("signature_invalid"),
            || ctx.request(&idp::es256_der_variant(&idp.mint_es256(&ctx.claims()))),
        ),
        Case::new(
            "attacker key under the published kid",
            Expect::grant("signature_invalid"),
            || {
                let header = idp.header_for(&KeyChoice::Rsa);
                ctx.request(&idp.sign_json(&header, &ctx.claims(), &KeyChoice::Attacker))
            },
        ),
        Case::new(
            "attacker key under its own kid",
            Expect::grant("unknown_kid"),
            || ctx.signed_by(&KeyChoice::Attacker),
        ),
        Case::new(
            "key published with use enc",
            Expect::grant("unknown_kid"),
            || ctx.signed_by(&KeyChoice::Kid(enc_kid.clone())),
        ),
    ];
    if let Some(chain) = &attacker_x5c {
        cases.push(Case::new(
            "embedded x5c with the attacker certificate",
            Expect::grant("header_key_reference"),
            move || attacker_header("x5c", json!(chain)),
        ));
    }
    if let Some(weak_kid) = &weak_kid {
        let ctx = &ctx;
        cases.push(Case::new(
            "1024-bit RSA key",
            Expect::grant("unknown_kid"),
            move || ctx.signed_by(&KeyChoice::Kid(weak_kid.clone())),
        ));
    }
    check_cases(&server, cases).await;
    assert_eq!(
        idp.attacker_fetches(),
        0,
        "xaa requested a URL named by a token header"
    );
    server.stop().await;
}

// ---- Claims ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_validation() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = trusted_provider(&server, idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("tools", json!({})).await;
    let other_proxy = server.add_proxy("other", json!({})).await;
    let (_, secret) = add_client(&server, proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    add_client(&server, proxy, provider, "0oa-c2", "c2", ALLOWED_SCOPES).await;
    add_client(
        &server,
        other_proxy,
        provider,
        "0oa-c1",
        "c1",
        ALLOWED_SCOPES,
    )
    .await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let untrusted_issuer = || {
        let claims =
            ctx.edited(|claims| set(claims, "iss", json!("https://idp.untrusted.example")));
        ctx.request(&idp.mint_with(&KeyChoice::Attacker, &claims))
    };

    let mut cases = issuer_and_audience_cases(&ctx, other_proxy);
    cases.extend(time_cases(&ctx));
    cases.extend([
        Case::new(
            "iss of the trusted IdP with a trailing slash",
            Expect::grant("issuer_untrusted"),
            || ctx.with_claims(|claims| set(claims, "iss", json!(format!("{}/", idp.issuer())))),
        ),
        Case::new(
            "iss untrusted, signed by its own key",
            Expect::grant("issuer_untrusted"),
            untrusted_issuer,
        ),
        Case::new("sub missing", Expect::grant("sub_invalid"), || {
            ctx.with_claims(|claims| {
                claims.remove("sub");
            })
        }),
        Case::new("sub empty", Expect::grant("sub_invalid"), || {
            ctx.with_claims(|claims| set(claims, "sub", json!("")))
        }),
        Case::new("sub is a number", Expect::grant("sub_invalid"), || {
            ctx.with_claims(|claims| set(claims, "sub", json!(12345)))
        }),
        Case::new("sub over 256 bytes", Expect::grant("sub_invalid"), || {
            ctx.with_claims(|claims| set(claims, "sub", json!("u".repeat(257))))
        }),
        Case::new("jti missing", Expect::grant("jti_invalid"), || {
            ctx.with_claims(|claims| {
                claims.remove("jti");
            })
        }),
        Case::new("jti empty", Expect::grant("jti_invalid"), || {
            ctx.with_claims(|claims| set(claims, "jti", json!("")))
        }),
        Case::new("jti is a number", Expect::grant("jti_invalid"), || {
            ctx.with_claims(|claims| set(claims, "jti", json!(42)))
        }),
        Case::new(
            "client_id missing",
            Expect::grant("client_id_invalid"),
            || {
                ctx.with_claims(|claims| {
                    claims.remove("client_id");
                })
            },
        ),
        Case::new(
            "client_id of another mapped client",
            Expect::grant("client_id_mismatch"),
            || ctx.with_claims(|claims| set(claims, "client_id", json!("c2"))),
        ),
        Case::new(
            "client_id without a mapping",
            Expect::grant("no_mapping"),
            || ctx.with_claims(|claims| set(claims, "client_id", json!("c-unmapped"))),
        ),
        Case::new(
            "client_id as known at the IdP",
            Expect::issued(GRANTED),
            || ctx.with_claims(|claims| set(claims, "client_id", json!("0oa-c1"))),
        ),
        Case::new(
            "scope is a JSON array",
            Expect::grant("scope_not_string"),
            || ctx.with_claims(|claims| set(claims, "scope", json!(["openid", "mcp:tools"]))),
        ),
        Case::new(
            "cnf without a DPoP proof",
            Expect::grant("cnf_unsupported"),
            || ctx.with_claims(|claims| set(claims, "cnf", json!({ "jkt": JKT }))),
        ),
        Case::new(
            "cnf with a DPoP header",
            Expect::grant("cnf_unsupported"),
            || {
                ctx.with_claims(|claims| set(claims, "cnf", json!({ "jkt": JKT })))
                    .header("DPoP", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln")
            },
        ),
        // xaa keeps no user directory: the IdP `sub` is the subject, so a subject never seen
        // before is accepted and `sub_id` never replaces it.
        Case::new("subject never seen before", Expect::issued(GRANTED), || {
            ctx.with_claims(|claims| set(claims, "sub", json!("new-user-7f3a")))
        }),
        Case::new(
            "sub_id of an unlinked SAML issuer is not used",
            Expect::issued(GRANTED),
            || {
                ctx.with_claims(|claims| {
                    let sub_id = json!({
                        "format": "saml-nameid",
                        "issuer": "https://saml.unlinked.example",
                        "nameid": "bob@example.com",
                    });
                    set(claims, "sub_id", sub_id);
                })
            },
        ),
    ]);
    check_cases(&server, cases).await;

    // The description must not reveal whether the issuer is trusted: an untrusted issuer gets
    // the same text as a bad signature from a trusted one.
    let description = |response: Value| response["error_description"].clone();
    let untrusted = untrusted_issuer().send(&server.http).await;
    let untrusted = description(untrusted.json().await.expect("JSON error"));
    let tampered = ctx.request(&idp::flip_signature_bit(&idp.mint(&ctx.claims())));
    let tampered = tampered.send(&server.http).await;
    let tampered = description(tampered.json().await.expect("JSON error"));
    assert_eq!(
        untrusted, tampered,
        "the error description tells an untrusted issuer apart"
    );
    server.stop().await;
}

fn issuer_and_audience_cases<'a>(ctx: &'a Ctx<'a>, other_proxy: i64) -> Vec<Case<'a>> {
    let server = ctx.server;
    let ours = server.issuer(ctx.proxy);
    vec![
        Case::new("iss missing", Expect::grant("iss_missing"), move || {
            ctx.with_claims(|claims| {
                claims.remove("iss");
            })
        }),
        Case::new("iss is a number", Expect::grant("iss_missing"), move || {
            ctx.with_claims(|claims| set(claims, "iss", json!(1)))
        }),
        Case::new(
            "iss is this proxy",
            Expect::grant("self_issued"),
            move || ctx.with_claims(|claims| set(claims, "iss", json!(server.issuer(ctx.proxy)))),
        ),
        Case::new(
            "aud is another authorization server",
            Expect::grant("audience_mismatch"),
            move || ctx.with_claims(|claims| set(claims, "aud", json!("https://as.other.example"))),
        ),
        Case::new(
            "aud is another proxy of this gateway",
            Expect::grant("audience_mismatch"),
            move || {
                let other = server.issuer(other_proxy);
                ctx.with_claims(|claims| set(claims, "aud", json!(other)))
            },
        ),
        Case::new(
            "aud is the token endpoint URL",
            Expect::grant("audience_mismatch"),
            move || {
                let endpoint = server.token_endpoint(ctx.proxy);
                ctx.with_claims(|claims| set(claims, "aud", json!(endpoint)))
            },
        ),
        Case::new(
            "aud with a trailing slash",
            Expect::grant("audience_mismatch"),
            {
                let ours = ours.clone();
                move || ctx.with_claims(|claims| set(claims, "aud", json!(format!("{ours}/"))))
            },
        ),
        Case::new("aud as a one-element array", Expect::issued(GRANTED), {
            let ours = ours.clone();
            move || ctx.with_claims(|claims| set(claims, "aud", json!([ours])))
        }),
        Case::new(
            "aud as a two-element array",
            Expect::grant("audience_mismatch"),
            move || {
                let both = json!([ours, "https://as.other.example"]);
                ctx.with_claims(|claims| set(claims, "aud", both))
            },
        ),
        Case::new(
            "aud as an empty array",
            Expect::grant("audience_mismatch"),
            move || ctx.with_claims(|claims| set(claims, "aud", json!([]))),
        ),
        Case::new(
            "aud missing",
            Expect::grant("audience_mismatch"),
            move || {
                ctx.with_claims(|claims| {
                    claims.remove("aud");
                })
            },
        ),
    ]
}

/// Time claims with the default 60 s leeway and 600 s maximum lifetime.
fn time_cases<'a>(ctx: &'a Ctx<'a>) -> Vec<Case<'a>> {
    let times = move |iat: Option<i64>, exp: Option<i64>, nbf: Option<i64>| {
        ctx.with_claims(|claims| {
            for (name, value) in [("iat", iat), ("exp", exp), ("nbf", nbf)] {
                match value {
                    Some(seconds) => set(claims, name, json!(seconds)),
                    None => {
                        claims.remove(name);
                    }
                }
            }
        })
    };
    vec![
        Case::new("exp missing", Expect::grant("exp_missing"), move || {
            times(Some(unix_now()), None, None)
        }),
        Case::new(
            "exp 61 s ago, 1 s beyond the leeway",
            Expect::grant("expired"),
            move || {
                let now = unix_now();
                times(Some(now - 300), Some(now - 61), None)
            },
        ),
        Case::new(
            "exp 59 s ago, inside the leeway",
            Expect::issued(GRANTED),
            move || {
                let now = unix_now();
                times(Some(now - 300), Some(now - 59), None)
            },
        ),
        Case::new(
            "exp is a string",
            Expect::grant("claim_type_invalid"),
            move || {
                ctx.with_claims(|claims| set(claims, "exp", json!((unix_now() + 300).to_string())))
            },
        ),
        Case::new("exp with a fraction", Expect::issued(GRANTED), move || {
            #[expect(clippy::cast_precision_loss, reason = "Unix seconds fit in 53 bits")]
            let exp = (unix_now() + 300) as f64 + 0.5;
            ctx.with_claims(|claims| set(claims, "exp", json!(exp)))
        }),
        Case::new(
            "exp beyond any date",
            Expect::grant("claim_type_invalid"),
            move || ctx.with_claims(|claims| set(claims, "exp", json!(1e300))),
        ),
        Case::new(
            "exp - iat of 3600 s",
            Expect::grant("lifetime_too_long"),
            move || {
                let now = unix_now();
                times(Some(now), Some(now + 3600), None)
            },
        ),
        Case::new(
            "exp before iat",
            Expect::grant("exp_before_iat"),
            move || {
                let now = unix_now();
                times(Some(now), Some(now - 10), None)
            },
        ),
        Case::new("iat missing", Expect::grant("iat_missing"), move || {
            times(None, Some(unix_now() + 300), None)
        }),
        Case::new(
            "iat 120 s in the future",
            Expect::grant("iat_in_future"),
            move || {
                let now = unix_now();
                times(Some(now + 120), Some(now + 400), None)
            },
        ),
        Case::new(
            "nbf 120 s in the future",
            Expect::grant("not_yet_valid"),
            move || {
                let now = unix_now();
                times(Some(now), Some(now + 300), Some(now + 120))
            },
        ),
        Case::new(
            "nbf 30 s in the future, inside the leeway",
            Expect::issued(GRANTED),
            move || {
                let now = unix_now();
                times(Some(now), Some(now + 300), Some(now + 30))
            },
        ),
    ]
}

// ---- Scope and resource narrowing ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_resource_narrowing() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = trusted_provider(&server, idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("llm", json!({})).await;
    let mcp_proxy = server
        .add_proxy("mcp", json!({ "kind": "mcp", "resource": MCP_RESOURCE }))
        .await;
    let (_, secret) = add_client(&server, proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    let (_, mcp_secret) =
        add_client(&server, mcp_proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let mcp = Ctx {
        proxy: mcp_proxy,
        secret: &mcp_secret,
        ..ctx
    };
    let scope_claim = |scope: &str| ctx.with_claims(|claims| set(claims, "scope", json!(scope)));
    let resource_claim =
        |resource: Value| mcp.with_claims(|claims| set(claims, "resource", resource));

    let cases = vec![
        Case::new(
            "ID-JAG scope wider than the client may hold",
            Expect::issued(GRANTED),
            || ctx.valid(),
        ),
        Case::new(
            "requested scope is a strict subset",
            Expect::issued("mcp:tools"),
            || ctx.valid().param("scope", "mcp:tools"),
        ),
        Case::new(
            "requested scope equals the grant",
            Expect::issued(GRANTED),
            || ctx.valid().param("scope", "mcp:tools openid"),
        ),
        Case::new(
            "requested scope absent from the ID-JAG",
            Expect::error("invalid_scope", "scope_not_granted"),
            || ctx.valid().param("scope", "admin"),
        ),
        Case::new(
            "requested scope in the ID-JAG but not allowed for the client",
            Expect::error("invalid_scope", "no_grantable_scope"),
            || ctx.valid().param("scope", "profile"),
        ),
        Case::new(
            "requested scope with a double quote",
            Expect::error("invalid_scope", "scope_syntax"),
            || ctx.valid().param("scope", "mcp:\"tools"),
        ),
        Case::new(
            "ID-JAG scope empty",
            Expect::error("invalid_scope", "no_grantable_scope"),
            || scope_claim(""),
        ),
        Case::new(
            "ID-JAG without scope",
            Expect::error("invalid_scope", "no_grantable_scope"),
            || {
                ctx.with_claims(|claims| {
                    claims.remove("scope");
                })
            },
        ),
        Case::new(
            "ID-JAG scope holds only scopes the client may not hold",
            Expect::error("invalid_scope", "no_grantable_scope"),
            || scope_claim("profile email"),
        ),
        Case::new(
            "ID-JAG scope with a repeated scope",
            Expect::issued(GRANTED),
            || scope_claim("openid openid mcp:tools"),
        ),
        Case::new(
            "authorization_details next to scopes",
            Expect::issued(GRANTED),
            || {
                ctx.with_claims(|claims| {
                    let details =
                        json!([{ "type": "payment_initiation", "actions": ["initiate"] }]);
                    set(claims, "authorization_details", details);
                })
            },
        ),
        Case::new(
            "resource claim at a proxy without a resource",
            Expect::grant("resource_not_ours"),
            || ctx.with_claims(|claims| set(claims, "resource", json!(MCP_RESOURCE))),
        ),
        Case::new(
            "resource parameter at a proxy without a resource",
            Expect::error("invalid_target", "resource_param_not_allowed"),
            || ctx.valid().param("resource", MCP_RESOURCE),
        ),
        Case::new(
            "resource claim equal to the proxy resource",
            Expect::issued_for(GRANTED, MCP_RESOURCE),
            || resource_claim(json!(MCP_RESOURCE)),
        ),
        Case::new(
            "resource claim with an upper-case host",
            Expect::issued_for(GRANTED, MCP_RESOURCE),
            || resource_claim(json!("https://MCP.example/api")),
        ),
        Case::new(
            "resource claim as a one-element array",
            Expect::issued_for(GRANTED, MCP_RESOURCE),
            || resource_claim(json!([MCP_RESOURCE])),
        ),
        Case::new(
            "resource claim not governed by this proxy",
            Expect::grant("resource_not_ours"),
            || resource_claim(json!("https://other.example/api")),
        ),
        Case::new(
            "resource claim array with a foreign member",
            Expect::grant("resource_not_ours"),
            || resource_claim(json!([MCP_RESOURCE, "https://other.example/api"])),
        ),
        Case::new(
            "resource claim as an empty array",
            Expect::grant("resource_invalid"),
            || resource_claim(json!([])),
        ),
        Case::new(
            "resource claim is a number",
            Expect::grant("resource_invalid"),
            || resource_claim(json!(5)),
        ),
        Case::new(
            "resource claim missing at an MCP proxy",
            Expect::grant("resource_missing"),
            || mcp.valid(),
        ),
        Case::new(
            "resource parameter outside the ID-JAG resource",
            Expect::error("invalid_target", "resource_param_not_allowed"),
            || resource_claim(json!(MCP_RESOURCE)).param("resource", "https://other.example/api"),
        ),
        Case::new(
            "resource parameter equal to the ID-JAG resource",
            Expect::issued_for(GRANTED, MCP_RESOURCE),
            || resource_claim(json!(MCP_RESOURCE)).param("resource", MCP_RESOURCE),
        ),
    ];
    check_cases(&server, cases).await;
    server.stop().await;
}

// ---- Replay, revocation and admin switches -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_revocation_and_admin_switches() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let single_use = trusted_provider(&server, idp.issuer(), json!({})).await;
    // A second provider for the same signing keys, under its own issuer and replay policy.
    let reuse_issuer = format!("{}/reuse", idp.issuer());
    let reuse = trusted_provider(
        &server,
        &reuse_issuer,
        json!({ "jwks_uri": idp.jwks_uri(), "replay_policy": "reuse-until-expiry" }),
    )
    .await;
    let proxy = server.add_proxy("tools", json!({})).await;
    let (_, secret) = add_client(&server, proxy, single_use, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    server
        .add_mapping(proxy, reuse, "0oa-c1", "c1", ALLOWED_SCOPES)
        .await;
    let (_, c2_secret) = add_client(&server, proxy, reuse, "0oa-c2", "c2", ALLOWED_SCOPES).await;
    // This mapping also matches ID-JAGs whose client_id is "c1", so c3 passes the mapping check
    // and only the replay record distinguishes it from the client that first presented one.
    let (_, c3_secret) = add_client(&server, proxy, reuse, "c1", "c3", ALLOWED_SCOPES).await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let reuse_claims = || ctx.edited(|claims| set(claims, "iss", json!(reuse_issuer)));

    let single_use_token = idp.mint(&ctx.claims());
    let reuse_claims_value = reuse_claims();
    let reuse_token = idp.mint(&reuse_claims_value);
    let reuse_jti = reuse_claims_value["jti"].as_str().expect("jti").to_owned();
    let single_use_jti = idp::decode_payload(&single_use_token)["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    check_cases(
        &server,
        vec![
            Case::new(
                "single-use: first presentation",
                Expect::issued(GRANTED),
                || ctx.request(&single_use_token),
            ),
            Case::new(
                "single-use: second presentation",
                Expect::grant("replayed"),
                || ctx.request(&single_use_token),
            ),
            Case::new(
                "reuse-until-expiry: first presentation",
                Expect::issued(GRANTED),
                || ctx.request(&reuse_token),
            ),
            Case::new(
                "reuse-until-expiry: second presentation by the same client",
                Expect::reissued(GRANTED),
                || ctx.request(&reuse_token),
            ),
            Case::new(
                "reuse-until-expiry: presentation by another client",
                Expect::grant("client_id_mismatch"),
                || ctx.request(&reuse_token).basic("c2", &c2_secret),
            ),
            Case::new(
                "reuse-until-expiry: another client whose mapping matches the client_id",
                Expect::grant("replayed"),
                || ctx.request(&reuse_token).basic("c3", &c3_secret),
            ),
        ],
    )
    .await;
    assert_eq!(access_tokens_for(&server, &single_use_jti).await, 1);
    assert_eq!(access_tokens_for(&server, &reuse_jti).await, 2);

    // Revoking the jti stops the re-presentation that reuse-until-expiry allowed.
    admin_json(
        &server,
        Method::POST,
        "/api/v1/xaa/revoke-token",
        Some(json!({ "jti": reuse_jti, "reason": "test" })),
    )
    .await;
    check_cases(
        &server,
        vec![Case::new(
            "revoked jti presented again",
            Expect::grant("jti_revoked"),
            || ctx.request(&reuse_token),
        )],
    )
    .await;
    assert_eq!(access_tokens_for(&server, &reuse_jti).await, 2);

    // Subject revocation rejects ID-JAGs issued up to the revocation second and accepts later
    // ones. The later ID-JAG claims an iat 2 s ahead, inside the leeway, so that it is strictly
    // after the revocation second.
    let bob = |iat: i64| {
        idp.mint(&ctx.edited(|claims| {
            set(claims, "sub", json!("bob@example.com"));
            set(claims, "iat", json!(iat));
            set(claims, "exp", json!(iat + 300));
        }))
    };
    let issued_before = bob(unix_now() - 5);
    admin_json(
        &server,
        Method::POST,
        "/api/v1/xaa/revoke-tokens-by-subject",
        Some(json!({ "idp_provider_id": single_use, "subject": "bob@example.com" })),
    )
    .await;
    check_cases(
        &server,
        vec![
            Case::new(
                "ID-JAG issued before the subject revocation",
                Expect::grant("subject_revoked"),
                || ctx.request(&issued_before),
            ),
            Case::new(
                "ID-JAG issued after the subject revocation",
                Expect::issued(GRANTED),
                || ctx.request(&bob(unix_now() + 2)),
            ),
            Case::new(
                "other subject of the same provider",
                Expect::issued(GRANTED),
                || ctx.valid(),
            ),
        ],
    )
    .await;

    // The issuance kill switch applies after client authentication, so a wrong secret still
    // gets invalid_client.
    let proxy_path = format!("/api/v1/proxies/{proxy}");
    admin_json(
        &server,
        Method::PATCH,
        &proxy_path,
        Some(json!({ "issuance_enabled": false })),
    )
    .await;
    check_cases(
        &server,
        vec![
            Case::new(
                "issuance switched off",
                Expect::error("unauthorized_client", "issuance_disabled"),
                || ctx.valid(),
            ),
            Case::new(
                "issuance switched off, wrong secret",
                Expect::invalid_client(Some("client_auth_failed")),
                || ctx.valid().basic("c1", "wrong-secret"),
            ),
        ],
    )
    .await;
    admin_json(
        &server,
        Method::PATCH,
        &proxy_path,
        Some(json!({ "issuance_enabled": true })),
    )
    .await;
    check_cases(
        &server,
        vec![Case::new(
            "issuance switched on again",
            Expect::issued(GRANTED),
            || ctx.valid(),
        )],
    )
    .await;

    // A disabled provider is not trusted, and enabling it again restores trust.
    let provider_path = format!("/api/v1/providers/{single_use}");
    admin_json(
        &server,
        Method::PATCH,
        &provider_path,
        Some(json!({ "enabled": false })),
    )
    .await;
    check_cases(
        &server,
        vec![Case::new(
            "provider disabled",
            Expect::grant("provider_disabled"),
            || ctx.valid(),
        )],
    )
    .await;
    admin_json(
        &server,
        Method::PATCH,
        &provider_path,
        Some(json!({ "enabled": true })),
    )
    .await;
    check_cases(
        &server,
        vec![Case::new(
            "provider enabled again",
            Expect::issued(GRANTED),
            || ctx.valid(),
        )],
    )
    .await;

    deleted_mappings(&ctx, single_use).await;
    server.stop().await;
}

/// Deleting a mapping stops its ID-JAGs at once. While the client has another mapping it still
/// authenticates and gets `invalid_grant`. Deleting its last mapping also deletes its
/// credential, so it gets `invalid_client`.
async fn deleted_mappings(ctx: &Ctx<'_>, provider: i64) {
    let server = ctx.server;
    let (first, secret) =
        add_client(server, ctx.proxy, provider, "0oa-c4a", "c4", ALLOWED_SCOPES).await;
    let second = server
        .add_mapping(ctx.proxy, provider, "0oa-c4b", "c4", ALLOWED_SCOPES)
        .await["id"]
        .as_i64()
        .expect("mapping id");

    let c4 = Ctx {
        client: "c4",
        secret: &secret,
        ..*ctx
    };
    let via = |client_at_idp: &'static str| {
        c4.with_claims(move |claims| set(claims, "client_id", json!(client_at_idp)))
    };
    let mappings = format!("/api/v1/proxies/{}/xaa/client-mappings", ctx.proxy);

    admin_json(
        server,
        Method::DELETE,
        &format!("{mappings}/{second}"),
        None,
    )
    .await;
    check_cases(
        server,
        vec![
            Case::new(
                "ID-JAG of a deleted mapping",
                Expect::grant("no_mapping"),
                || via("0oa-c4b"),
            ),
            Case::new(
                "ID-JAG of the mapping that remains",
                Expect::issued(GRANTED),
                || via("0oa-c4a"),
            ),
        ],
    )
    .await;

    admin_json(server, Method::DELETE, &format!("{mappings}/{first}"), None).await;
    check_cases(
        server,
        vec![Case::new(
            "client whose last mapping was deleted",
            Expect::invalid_client(Some("client_auth_failed")),
            || via("0oa-c4a"),
        )],
    )
    .await;
}

// ---- JWKS rotation and outage --------------------------------------------------------------

/// Runs one case and checks how many times xaa fetched the IdP's JWKS meanwhile.
async fn check_with_fetches(server: &TestServer, idp: &TestIdp, case: Case<'_>, fetches: usize) {
    let name = case.name.clone();
    let before = idp.jwks_fetches();
    check_cases(server, vec![case]).await;
    assert_eq!(
        idp.jwks_fetches() - before,
        fetches,
        "JWKS fetches during case {name:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_rotation_and_outage() {
    let idp = TestIdp::start().await;
    // Without a cooldown every unknown kid fetches, so each case's fetch count is exact. A
    // max-age of 0 served later is honoured, so a set can be made stale on purpose.
    let server = start_server(|config| {
        config.jwks.unknown_kid_cooldown_secs = 0;
        config.jwks.min_ttl_secs = 0;
    })
    .await;
    let provider = trusted_provider(&server, idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("tools", json!({})).await;
    let (_, secret) = add_client(&server, proxy, provider, "0oa-c1", "c1", ALLOWED_SCOPES).await;
    let ctx = Ctx {
        idp: &idp,
        server: &server,
        proxy,
        client: "c1",
        secret: &secret,
    };
    let without_kid = |key: KeyChoice| {
        let mut header = idp.header_for(&key);
        header
            .as_object_mut()
            .expect("the header is a JSON object")
            .remove("kid");
        ctx.request(&idp.sign_json(&header, &ctx.claims(), &key))
    };

    let cached = Case::new("key in the cached set", Expect::issued(GRANTED), || {
        ctx.valid()
    });
    check_with_fetches(&server, &idp, cached, 0).await;
    let single_rsa = Case::new(
        "no kid while the IdP has one RS256 key",
        Expect::issued(GRANTED),
        || without_kid(KeyChoice::Rsa),
    );
    check_with_fetches(&server, &idp, single_rsa, 0).await;

    let retired_kid = idp.rsa_kid();
    idp.rotate_rsa(false);
    let rotated = Case::new(
        "new kid after the IdP rotated",
        Expect::issued(GRANTED),
        || ctx.valid(),
    );
    check_with_fetches(&server, &idp, rotated, 1).await;
    let retired = Case::new(
        "kid the IdP removed from its set",
        Expect::grant("unknown_kid"),
        || ctx.signed_by(&KeyChoice::Kid(retired_kid.clone())),
    );
    check_with_fetches(&server, &idp, retired, 1).await;
    let unpublished = idp.add_unpublished_rsa_key();
    let unknown = Case::new(
        "kid absent from the refreshed set",
        Expect::grant("unknown_kid"),
        || ctx.signed_by(&KeyChoice::Kid(unpublished.clone())),
    );
    check_with_fetches(&server, &idp, unknown, 1).await;

    let second_rsa = idp.add_rsa_key();
    let added = Case::new(
        "second RS256 key found after a refresh",
        Expect::issued(GRANTED),
        || ctx.signed_by(&KeyChoice::Kid(second_rsa.clone())),
    );
    check_with_fetches(&server, &idp, added, 1).await;
    let ambiguous = Case::new(
        "no kid while the IdP has two RS256 keys",
        Expect::grant("kid_required"),
        || without_kid(KeyChoice::Rsa),
    );
    check_with_fetches(&server, &idp, ambiguous, 0).await;
    let single_ec = Case::new(
        "no kid on ES256 while the IdP has one P-256 key",
        Expect::issued(GRANTED),
        || without_kid(KeyChoice::Ec),
    );
    check_with_fetches(&server, &idp, single_ec, 0).await;

    // Make the cached set expire at once, then take the JWKS endpoint down.
    idp.set_cache_max_age(Some(0));
    let refresh = format!("/api/v1/providers/{provider}/refresh-keys");
    admin_json(&server, Method::POST, &refresh, None).await;
    idp.set_jwks_mode(Mode::Error500);
    let before = idp.jwks_fetches();
    check_cases(
        &server,
        vec![Case::new(
            "JWKS down, key in the expired cached set",
            Expect::issued(GRANTED),
            || ctx.valid(),
        )],
    )
    .await;
    assert!(
        idp.jwks_fetches() > before,
        "an expired set should be revalidated before its stale key is used"
    );
    let new_kid = idp.add_rsa_key();
    check_cases(
        &server,
        vec![Case::new(
            "JWKS down, new kid",
            Expect::Rejected {
                status: 503,
                error: "temporarily_unavailable",
                reason: Some("jwks_unavailable"),
            },
            || ctx.signed_by(&KeyChoice::Kid(new_kid.clone())),
        )],
    )
    .await;

    // A provider created while the endpoint is down has nothing cached.
    let cold_issuer = format!("{}/cold", idp.issuer());
    let cold = trusted_provider(&server, &cold_issuer, json!({ "jwks_uri": idp.jwks_uri() })).await;
    let (_, cold_secret) = add_client(&server, proxy, cold, "0oa-c9", "c9", ALLOWED_SCOPES).await;
    let cold_ctx = Ctx {
        client: "c9",
        secret: &cold_secret,
        ..ctx
    };
    let cold_request = || cold_ctx.with_claims(|claims| set(claims, "iss", json!(cold_issuer)));
    check_cases(
        &server,
        vec![Case::new(
            "JWKS down, nothing cached",
            Expect::Rejected {
                status: 503,
                error: "temporarily_unavailable",
                reason: Some("jwks_unavailable"),
            },
            cold_request,
        )],
    )
    .await;
    idp.set_jwks_mode(Mode::Normal);
    check_cases(
        &server,
        vec![Case::new(
            "JWKS back, provider with nothing cached before",
            Expect::issued(GRANTED),
            cold_request,
        )],
    )
    .await;
    server.stop().await;
}
