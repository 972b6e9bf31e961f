//! Tokens: who is on a connection, in which role and city.
//!
//! Two ways to trust a token, one per deployment:
//! - **a shared secret** (HS256): the engine's own tokens, for development,
//!   tests and the load test ([`Auth::new`], which can also issue them);
//! - **an identity provider's keys** (RS256 or ES256, Keycloak, Auth0,
//!   Cognito): a PEM public key or a JWKS file ([`KeySource`]), read again
//!   on [`Auth::reload`] when the provider rotates its keys, the key chosen
//!   by the token's `kid` (`keys.rs`).
//!
//! Either way `iss` and `aud` are checked when configured ([`Checks`]), and
//! [`ClaimMapping`] says where the role, the user id and the city are
//! (`mapping.rs`).

mod keys;
mod mapping;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use jsonwebtoken::Algorithm;
pub use keys::KeySource;
pub use mapping::{ClaimMapping, SubFormat};

/// The three kinds of app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A tradesperson's phone.
    Contractor,
    /// A customer's app.
    Customer,
    /// A dispatcher's console.
    Dispatcher,
    /// An operator: the admin API of every city (not the WebSocket).
    Admin,
}

impl Role {
    /// The role's name on the wire and in metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Contractor => "contractor",
            Role::Customer => "customer",
            Role::Dispatcher => "dispatcher",
            Role::Admin => "admin",
        }
    }
}

/// What a token says, as the engine reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The role.
    pub role: Role,
    /// The contractor, customer or dispatcher id.
    pub sub: u64,
    /// The city (by configured name); an admin's may be empty (they act on every city).
    pub city: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// What a token must say besides its signature and expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// The issuer it must name (`iss`), if set.
    pub issuer: Option<String>,
    /// The audience it must name (`aud`), if set; without one, `aud` is not read.
    pub audience: Option<String>,
    /// Where its role, user id and city are.
    pub claims: ClaimMapping,
}

/// How tokens are verified.
#[derive(Clone)]
enum Verifying {
    Secret(DecodingKey),
    /// Clones share the keys: a reload through one is seen by all.
    Keys {
        source: KeySource,
        keys: Arc<RwLock<Arc<keys::KeySet>>>,
    },
}

/// Checks tokens (and, with a shared secret, issues them).
#[derive(Clone)]
pub struct Auth {
    issuing: Option<EncodingKey>,
    verifying: Verifying,
    checks: Checks,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

/// Why a token (or a key file) was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct AuthError(String);

impl Auth {
    /// Tokens signed with `secret` (HS256), read as the engine issues them.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self {
            issuing: Some(EncodingKey::from_secret(secret)),
            verifying: Verifying::Secret(DecodingKey::from_secret(secret)),
            checks: Checks::default(),
        }
    }

    /// Tokens an identity provider signs with the keys in `source`, read and checked as `checks` says.
    pub fn from_keys(source: KeySource, checks: Checks) -> Result<Self, AuthError> {
        let keys = Arc::new(RwLock::new(Arc::new(source.load()?)));
        Ok(Self { issuing: None, verifying: Verifying::Keys { source, keys }, checks })
    }

    /// The same, with `checks` instead.
    #[must_use]
    pub fn with_checks(self, checks: Checks) -> Self {
        Self { checks, ..self }
    }

    /// The key file, when an identity provider's keys verify.
    #[must_use]
    pub fn key_file(&self) -> Option<&Path> {
        match &self.verifying {
            Verifying::Keys { source, .. } => Some(source.path()),
            Verifying::Secret(_) => None,
        }
    }

    /// Reads the key file again (the provider rotated its keys): how many
    /// keys verify now. On an error the keys read before stay.
    pub fn reload(&self) -> Result<usize, AuthError> {
        let Verifying::Keys { source, keys } = &self.verifying else { return Ok(1) };
        let fresh = source.load()?;
        let count = fresh.len();
        *keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(count)
    }

    /// A token for `role` `sub` in `city`, valid for `ttl_secs` (with a shared secret only).
    pub fn issue(&self, role: Role, sub: u64, city: &str, ttl_secs: u64) -> Result<String, AuthError> {
        let key = self.issuing.as_ref().ok_or_else(|| AuthError("tokens come from the identity provider here".into()))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims { role, sub, city: city.to_owned(), exp: now + ttl_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).map_err(|e| AuthError(e.to_string()))
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError(e.to_string()))?;
        let keys;
        let (algorithm, key) = match &self.verifying {
            Verifying::Secret(key) => (Algorithm::HS256, key),
            Verifying::Keys { keys: current, .. } => {
                keys = Arc::clone(&current.read().unwrap_or_else(PoisonError::into_inner));
                let chosen = keys.select(&header)?;
                (chosen.algorithm, &chosen.key)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        let mut required = vec!["exp"];
        match &self.checks.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.checks.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, key, &validation)
            .map_err(|e| AuthError(e.to_string()))?;
        let (role, sub, city) = self.checks.claims.read(&data.claims)?;
        let exp = data.claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or_default();
        Ok(Claims { role, sub, city, exp })
    }
}

#[cfg(test)]
mod tests;
