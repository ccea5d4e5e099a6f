//! Checks the test identity provider itself: what it serves, how its modes behave and that its
//! tokens verify. The tests double as usage examples.

mod common;

use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use common::idp::{
    self, GARBAGE_BODY, ID_JAG_TYP, KeyChoice, Mode, OVERSIZED_BODY_BYTES, RsaAlg, TestIdp,
};
use serde_json::Value;

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("failed to build the reqwest client")
}

async fn get_json(url: &str) -> Value {
    let response = http_client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("response body is not JSON")
}

/// Verifies `token` against the key in `jwks` named by its `kid`, the way a relying party
/// would, and reports whether the signature holds.
fn verifies(jwks: &Value, token: &str) -> bool {
    let header = idp::decode_header(token);
    let [encoded_header, encoded_payload, encoded_signature] = idp::split_token(token);
    let signing_input = format!("{encoded_header}.{encoded_payload}");
    let signature = idp::b64url_decode(encoded_signature);
    let Some(jwk) = jwks["keys"]
        .as_array()
        .expect("JWKS has a keys array")
        .iter()
        .find(|jwk| jwk["kid"] == header["kid"])
    else {
        return false;
    };
    let member = |name: &str| idp::b64url_decode(jwk[name].as_str().expect("JWK member"));
    match header["alg"].as_str().expect("header has an alg string") {
        "RS256" => {
            let key = RsaPublicKeyComponents {
                n: member("n"),
                e: member("e"),
            };
            key.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                signing_input.as_bytes(),
                &signature,
            )
            .is_ok()
        }
        "ES256" => {
            let mut point = vec![0x04];
            point.extend(member("x"));
            point.extend(member("y"));
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signing_input.as_bytes(), &signature)
                .is_ok()
        }
        other => panic!("unexpected alg {other}"),
    }
}

#[tokio::test]
async fn serves_discovery_and_jwks() {
    let idp = TestIdp::start().await;
    let port = idp.addr().port();
    assert_eq!(idp.issuer(), format!("http://127.0.0.1:{port}"));

    for url in [idp.oidc_discovery_url(), idp.oauth_metadata_url()] {
        let document = get_json(&url).await;
        assert_eq!(document["issuer"], idp.issuer());
        assert_eq!(document["jwks_uri"], idp.jwks_uri());
        assert_eq!(document["token_endpoint"], idp.token_endpoint());
    }
    assert_eq!(idp.oidc_discovery_fetches(), 1);
    assert_eq!(idp.oauth_metadata_fetches(), 1);
    assert_eq!(idp.discovery_fetches(), 2);
    assert_eq!(idp.jwks_fetches(), 0);

    let jwks = get_json(&idp.jwks_uri()).await;
    assert_eq!(idp.jwks_fetches(), 1);
    assert_eq!(jwks, idp.jwks());
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "one RSA and one P-256 key: {jwks}");
    let rsa = &keys[0];
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["kid"], idp.rsa_kid());
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(idp::b64url_decode(rsa["n"].as_str().unwrap()).len(), 256);
    assert_eq!(rsa["e"], "AQAB");
    let ec = &keys[1];
    assert_eq!(ec["kty"], "EC");
    assert_eq!(ec["kid"], idp.ec_kid());
    assert_eq!(ec["crv"], "P-256");
    assert_eq!(ec["alg"], "ES256");
    assert_eq!(idp::b64url_decode(ec["x"].as_str().unwrap()).len(), 32);
    assert_eq!(idp::b64url_decode(ec["y"].as_str().unwrap()).len(), 32);

    idp.reset_counters();
    assert_eq!(idp.jwks_fetches(), 0);
    assert_eq!(idp.discovery_fetches(), 0);
}

#[tokio::test]
async fn path_issuer_inserts_well_known() {
    let idp = TestIdp::start_at_path("/tenant1").await;
    let origin = format!("http://127.0.0.1:{}", idp.addr().port());
    assert_eq!(idp.issuer(), format!("{origin}/tenant1"));
    assert_eq!(
        idp.oauth_metadata_url(),
        format!("{origin}/.well-known/oauth-authorization-server/tenant1")
    );
    assert_eq!(
        idp.oidc_discovery_url(),
        format!("{origin}/tenant1/.well-known/openid-configuration")
    );

    let metadata = get_json(&idp.oauth_metadata_url()).await;
    assert_eq!(metadata["issuer"], idp.issuer());
    assert_eq!(metadata["jwks_uri"], format!("{origin}/tenant1/jwks"));
    let oidc = get_json(&idp.oidc_discovery_url()).await;
    assert_eq!(oidc["issuer"], idp.issuer());

    // The RFC 8414 suffix appended after the path is wrong for a path issuer, so it is not served.
    let appended = format!("{}/.well-known/oauth-authorization-server", idp.issuer());
    let response = http_client().get(&appended).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn discovery_can_be_edited() {
    let idp = TestIdp::start().await;
    idp.set_discovery_member("issuer", Value::from("https://impostor.test"));
    idp.set_discovery_member("jwks_uri", Value::Null);
    let document = get_json(&idp.oidc_discovery_url()).await;
    assert_eq!(document["issuer"], "https://impostor.test");
    assert!(document.get("jwks_uri").is_none());

    idp.clear_discovery_members();
    idp.set_oidc_discovery_enabled(false);
    let response = http_client()
        .get(idp.oidc_discovery_url())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        get_json(&idp.oauth_metadata_url()).await["jwks_uri"],
        idp.jwks_uri()
    );
}

#[tokio::test]
async fn modes_change_responses() {
    let idp = TestIdp::start().await;
    let http = http_client();

    idp.set_cache_max_age(Some(900));
    let response = http.get(idp.jwks_uri()).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "max-age=900");
    idp.set_cache_max_age(None);

    idp.set_mode(Mode::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    let response = http.get(idp.jwks_uri()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    idp.set_mode(Mode::Error500);
    for url in [
        idp.jwks_uri(),
        idp.oidc_discovery_url(),
        idp.oauth_metadata_url(),
    ] {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 500, "GET {url}");
    }

    idp.set_mode(Mode::Garbage);
    let body = http
        .get(idp.jwks_uri())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, GARBAGE_BODY);
    assert!(serde_json::from_str::<Value>(&body).is_err());

    idp.set_mode(Mode::Oversized);
    let body = http
        .get(idp.jwks_uri())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.len() > OVERSIZED_BODY_BYTES);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), idp.jwks());

    idp.set_mode(Mode::Normal);
    idp.set_jwks_mode(Mode::Error500);
    assert_eq!(
        get_json(&idp.oidc_discovery_url()).await["issuer"],
        idp.issuer()
    );

    idp.set_jwks_mode(Mode::Normal);
    idp.set_jwks_body(Some(
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.to_owned(),
    ));
    assert_eq!(get_json(&idp.jwks_uri()).await["keys"][0]["kty"], "oct");

    // Every request counts, whatever the mode returned.
    assert_eq!(idp.jwks_fetches(), 6);
    assert_eq!(idp.discovery_fetches(), 3);
}

#[tokio::test]
async fn minted_tokens_verify() {
    let idp = TestIdp::start().await;
    let jwks = get_json(&idp.jwks_uri()).await;
    let claims = idp.claims("https://as.test", "c1", "user-1");
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["scope"], "openid profile mcp:tools");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    let rs256 = idp.mint(&claims);
    let header = idp::decode_header(&rs256);
    assert_eq!(header["typ"], ID_JAG_TYP);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], idp.rsa_kid());
    assert_eq!(idp::decode_payload(&rs256), claims);
    assert!(verifies(&jwks, &rs256));

    let es256 = idp.mint_es256(&claims);
    assert_eq!(idp::decode_header(&es256)["alg"], "ES256");
    assert!(verifies(&jwks, &es256));

    assert!(!verifies(&jwks, &idp::flip_signature_bit(&rs256)));
    let tampered = idp::flip_payload_bit(&rs256);
    assert!(!verifies(&jwks, &tampered));
    assert_ne!(idp::decode_payload(&tampered), claims);

    // The DER form verifies only under the ASN.1 algorithm, never under ES256's fixed form.
    let der = idp::es256_der_variant(&es256);
    assert!(!verifies(&jwks, &der));
    let [header_segment, payload_segment, signature_segment] = idp::split_token(&der);
    let ec = &jwks["keys"][1];
    let mut point = vec![0x04];
    point.extend(idp::b64url_decode(ec["x"].as_str().unwrap()));
    point.extend(idp::b64url_decode(ec["y"].as_str().unwrap()));
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(
            format!("{header_segment}.{payload_segment}").as_bytes(),
            &idp::b64url_decode(signature_segment),
        )
        .unwrap();

    // Raw signing keeps the exact text, duplicate members included.
    let raw_header = r#"{"alg":"RS256","typ":"oauth-id-jag+jwt","typ":"JWT"}"#;
    let raw = idp.sign_raw(raw_header, &claims.to_string(), &KeyChoice::Rsa);
    let first_segment = idp::split_token(&raw)[0];
    assert_eq!(idp::b64url_decode(first_segment), raw_header.as_bytes());

    assert!(idp.mint_with(&KeyChoice::Unsigned, &claims).ends_with('.'));
    let rs512 = idp.mint_with(&KeyChoice::RsaAs(idp.rsa_kid(), RsaAlg::Rs512), &claims);
    assert_eq!(idp::decode_header(&rs512)["alg"], "RS512");
}

#[tokio::test]
async fn key_management_changes_jwks() {
    let idp = TestIdp::start().await;
    let claims = idp.claims("https://as.test", "c1", "user-1");
    let old_kid = idp.rsa_kid();
    let kids = || -> Vec<String> {
        idp.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|jwk| jwk["kid"].as_str().unwrap().to_owned())
            .collect()
    };

    let pending = idp.add_unpublished_rsa_key();
    let early = idp.mint_with(&KeyChoice::Kid(pending.clone()), &claims);
    assert!(!kids().contains(&pending));
    assert!(!verifies(&get_json(&idp.jwks_uri()).await, &early));
    idp.publish(&pending);
    assert!(verifies(&get_json(&idp.jwks_uri()).await, &early));

    let kept = idp.rotate_rsa(true);
    assert_eq!(idp.rsa_kid(), kept);
    assert!(kids().contains(&old_kid));
    let dropped = idp.rotate_rsa(false);
    assert!(kids().contains(&dropped));
    assert!(!kids().contains(&kept));
    assert!(verifies(&idp.jwks(), &idp.mint(&claims)));

    let second = idp.add_rsa_key();
    assert!(kids().contains(&second));
    let enc = idp.add_enc_key();
    let enc_jwk = idp.public_jwk(&enc);
    assert_eq!(enc_jwk["use"], "enc");
    assert!(enc_jwk.get("alg").is_none());

    assert!(!kids().contains(&idp.attacker_kid()));
    assert_eq!(idp.attacker_jwk()["kid"], idp.attacker_kid());
    assert!(
        idp.rsa_public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
}

#[tokio::test]
async fn weak_key_signs_with_openssl() {
    let idp = TestIdp::start().await;
    let Some(kid) = idp.add_weak_rsa_key() else {
        return;
    };
    let jwk = idp.public_jwk(&kid);
    let n = idp::b64url_decode(jwk["n"].as_str().unwrap());
    assert_eq!(n.len(), 128, "1024-bit modulus");

    let token = idp.mint_with(&KeyChoice::Kid(kid), &idp.claims("a", "c", "s"));
    let [header_segment, payload_segment, signature_segment] = idp::split_token(&token);
    let key = RsaPublicKeyComponents {
        n,
        e: idp::b64url_decode(jwk["e"].as_str().unwrap()),
    };
    key.verify(
        &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        format!("{header_segment}.{payload_segment}").as_bytes(),
        &idp::b64url_decode(signature_segment),
    )
    .unwrap();
}

#[tokio::test]
async fn attacker_urls_count_requests() {
    let idp = TestIdp::start().await;
    let Some(x5c) = idp.attacker_x5c() else {
        return;
    };
    assert_eq!(x5c.len(), 1);
    assert_eq!(idp.attacker_fetches(), 0);

    let jwks = get_json(&idp.attacker_jwks_url()).await;
    assert_eq!(jwks["keys"][0]["kid"], idp.attacker_kid());
    let response = http_client()
        .get(idp.attacker_cert_url())
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(idp.attacker_fetches(), 2);
}

#[tokio::test]
async fn shutdown_stops_server() {
    let idp = TestIdp::start().await;
    let url = idp.jwks_uri();
    get_json(&url).await;
    idp.shutdown().await;
    assert!(http_client().get(&url).send().await.is_err());

    let dropped = TestIdp::start().await;
    let url = dropped.jwks_uri();
    drop(dropped);
    tokio::task::yield_now().await;
    assert!(http_client().get(&url).send().await.is_err());
}
