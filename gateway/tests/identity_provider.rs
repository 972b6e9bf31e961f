//! Tokens from an identity provider: ES256 tokens verified against a JWKS
//! file made in the test, with a string subject, a namespaced role and city,
//! the issuer and the audience; the provider rotates its keys and the server
//! reads the file again once it changes, without a restart.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use dispatch_gateway::auth::{ClaimMapping, SubFormat};
use dispatch_gateway::auth_config::AuthSection;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// An ES256 key made for the test, as the provider holds it.
fn provider_key() -> Result<EncodingKey> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    Ok(EncodingKey::from_ec_pem(secret.to_pkcs8_pem(LineEnding::LF)?.as_bytes())?)
}

/// The provider's published key set.
fn jwks(keys: &[(&EncodingKey, &str)]) -> Result<String> {
    let mut set = Vec::new();
    for (key, kid) in keys {
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(key, Algorithm::ES256)?;
        jwk.common.key_id = Some((*kid).into());
        set.push(serde_json::to_value(jwk)?);
    }
    Ok(json!({ "keys": set }).to_string())
}

/// A token the provider would issue to `sub` as a contractor of Des Moines.
fn token(key: &EncodingKey, kid: &str, sub: &str, audience: &str) -> Result<String> {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 600;
    let claims = json!({
        "sub": sub, "exp": exp, "iss": "https://idp.example/realms/dispatch", "aud": audience,
        "https://dispatch.example/roles": ["default-roles", "pro"], "https://dispatch.example/city": CITY,
    });
    let header = Header { kid: Some(kid.into()), ..Header::new(Algorithm::ES256) };
    Ok(jsonwebtoken::encode(&header, &claims, key)?)
}

/// Whether a WebSocket with `token` is let in.
async fn admitted(server: &Server, token: &str) -> bool {
    Client::connect(server.addr, token).await.is_ok()
}

#[tokio::test]
async fn tokens_from_an_identity_provider_verify_by_kid_and_rotated_keys_are_read_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("jwks.json");
    let (first, second) = (provider_key()?, provider_key()?);
    std::fs::write(&file, jwks(&[(&first, "k1")])?)?;
    let server = Server::start_with(|c| {
        c.jwt_secret.clear();
        c.dev_auth = false;
        c.auth = AuthSection {
            jwks_file: Some(file.clone()),
            issuer: Some("https://idp.example/realms/dispatch".into()),
            audience: Some("dispatch".into()),
            claims: ClaimMapping {
                role: "https://dispatch.example/roles".into(),
                city: "https://dispatch.example/city".into(),
                sub_format: SubFormat::Hash,
                roles: [("pro".to_owned(), dispatch_gateway::Role::Contractor)].into(),
                ..ClaimMapping::default()
            },
            reload_secs: 1,
            ..AuthSection::default()
        };
    })
    .await?;

    // The provider's contractor is in, as a contractor with an id from their subject.
    let mut pro = Client::connect(server.addr, &token(&first, "k1", "auth0|pat", "dispatch")?).await?;
    let registered = pro
        .call(json!({"type": "register", "name": "Pat", "trades": [{"trade": "hvac", "years": 3}], "hourly_rate": 5000, "service_radius_m": 9000.0}))
        .await?;
    assert_eq!(registered["registered"], Value::Bool(true), "{registered}");
    let again = Client::connect(server.addr, &token(&first, "k1", "auth0|pat", "dispatch")?).await?;
    assert!(pro.hello["sub"].as_u64().is_some_and(|id| id < 1 << 53), "{}", pro.hello);
    assert_eq!(again.hello["sub"], pro.hello["sub"], "the same subject, the same id");
    assert_eq!(pro.hello["role"], "contractor");

    // Another audience, an unknown kid, the engine's own HS256 token: not let in.
    assert!(!admitted(&server, &token(&first, "k1", "auth0|pat", "billing")?).await);
    assert!(!admitted(&server, &token(&first, "k9", "auth0|pat", "dispatch")?).await);
    let own = dispatch_gateway::Auth::new(b"test-secret-of-at-least-32-bytes").issue(dispatch_gateway::Role::Contractor, 1, CITY, 60)?;
    assert!(!admitted(&server, &own).await);

    // The provider rotates: k1 goes, k2 comes. The server reads the file again once it changes.
    std::fs::write(&file, jwks(&[(&second, "k2")])?)?;
    let rotated = token(&second, "k2", "auth0|pat", "dispatch")?;
    let mut read_again = false;
    for _ in 0..50 {
        if admitted(&server, &rotated).await {
            read_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(read_again, "the rotated key was never read");
    assert!(!admitted(&server, &token(&first, "k1", "auth0|pat", "dispatch")?).await, "k1 rotated out");
    server.stop().await
}
