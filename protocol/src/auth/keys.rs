//! The keys tokens are verified with when an identity provider signs them:
//! one public key in a PEM file, or a JWKS file of several (read again when
//! the provider rotates them), and which of them verifies a given token.
//!
//! Only RS256 and ES256 are taken here. A token's `alg` must be the key's,
//! so a token cannot pick a weaker algorithm than its key was published for
//! (and an HS256 token is never checked against a public key as a secret).

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header};

use super::AuthError;

/// Where the verifying keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// One public key, PEM, for `algorithm` (RS256 or ES256).
    PemFile {
        /// The file.
        path: PathBuf,
        /// Its algorithm.
        algorithm: Algorithm,
    },
    /// A JSON Web Key Set, as the provider publishes it (`/.well-known/jwks.json`).
    JwksFile {
        /// The file.
        path: PathBuf,
    },
}

/// One key that verifies tokens.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The keys read from a [`KeySource`].
pub(crate) struct KeySet(Vec<VerifyKey>);

impl KeySource {
    /// The file the keys are read from.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            KeySource::PemFile { path, .. } | KeySource::JwksFile { path } => path,
        }
    }

    /// Reads the keys; the error names the file and what is wrong with it.
    pub(crate) fn load(&self) -> Result<KeySet, AuthError> {
        let path = self.path();
        let bytes = std::fs::read(path).map_err(|e| AuthError(format!("{}: {e}", path.display())))?;
        let bad = |what: String| AuthError(format!("{}: {what}", path.display()));
        match self {
            KeySource::PemFile { algorithm, .. } => {
                let key = match algorithm {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&bytes),
                    Algorithm::ES256 => DecodingKey::from_ec_pem(&bytes),
                    other => return Err(bad(format!("{other:?} keys are not taken: RS256 or ES256"))),
                }
                .map_err(|e| bad(format!("not a {algorithm:?} public key in PEM: {e}")))?;
                Ok(KeySet(vec![VerifyKey { kid: None, algorithm: *algorithm, key }]))
            }
            KeySource::JwksFile { .. } => {
                let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JWKS: {e}")))?;
                let keys: Vec<VerifyKey> = set
                    .keys
                    .iter()
                    .filter(|jwk| jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature))
                    .filter_map(|jwk| {
                        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                            (Some(alg), _) => alg.to_string().parse().ok()?,
                            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
                            (None, _) => return None,
                        };
                        let taken = matches!(algorithm, Algorithm::RS256 | Algorithm::ES256);
                        let key = DecodingKey::from_jwk(jwk).ok().filter(|_| taken)?;
                        Some(VerifyKey { kid: jwk.common.key_id.clone(), algorithm, key })
                    })
                    .collect();
                if keys.is_empty() {
                    return Err(bad("no RS256 or ES256 signing key".into()));
                }
                Ok(KeySet(keys))
            }
        }
    }
}

impl KeySet {
    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The key that verifies a token with `header`: the one its `kid` names
    /// (for its `alg`), or the only one for its `alg` when it names none.
    pub(crate) fn select(&self, header: &Header) -> Result<&VerifyKey, AuthError> {
        let fits = |k: &&VerifyKey| k.algorithm == header.alg;
        match &header.kid {
            Some(kid) => self
                .0
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| AuthError(format!("no {:?} key {kid:?} is known (rotated out, or not this provider's)", header.alg))),
            None => {
                let mut fitting = self.0.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(AuthError(format!("no key verifies {:?} tokens", header.alg))),
                    (Some(_), Some(_)) => Err(AuthError("the token names no key (kid) and several could verify it".into())),
                }
            }
        }
    }
}
