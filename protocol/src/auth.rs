//! JWT (HS256) authentication: who is on a connection, in which role and city.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

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
}

impl Role {
    /// The role's name on the wire and in metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Contractor => "contractor",
            Role::Customer => "customer",
            Role::Dispatcher => "dispatcher",
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The role.
    pub role: Role,
    /// The contractor, customer or dispatcher id.
    pub sub: u64,
    /// The city (by configured name).
    pub city: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Signs and checks tokens with one shared secret.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct AuthError(String);

impl Auth {
    /// Tokens signed with `secret`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    /// A token for `role` `sub` in `city`, valid for `ttl_secs`.
    pub fn issue(&self, role: Role, sub: u64, city: &str, ttl_secs: u64) -> Result<String, AuthError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims { role, sub, city: city.to_owned(), exp: now + ttl_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| AuthError(e.to_string()))
    }

    /// The claims of a valid, unexpired HS256 token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|t| t.claims).map_err(|e| AuthError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forged_or_expired_ones_do_not() {
        let auth = Auth::new(b"secret");
        let token = auth.issue(Role::Customer, 42, "des-moines", 60).unwrap();
        let claims = auth.verify(&token).unwrap();
        assert_eq!((claims.role, claims.sub, claims.city.as_str()), (Role::Customer, 42, "des-moines"));
        assert!(Auth::new(b"other").verify(&token).is_err(), "forged");
        assert!(auth.verify("not.a.token").is_err());
        let expired = {
            let claims = Claims { role: Role::Customer, sub: 1, city: "x".into(), exp: 1 };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"secret")).unwrap()
        };
        assert!(auth.verify(&expired).is_err(), "expired");
    }
}
