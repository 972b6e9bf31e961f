//! The `[auth]` section: where tokens are trusted from. Without it, tokens
//! are the engine's own, HS256 with `jwt_secret` (at least 32 bytes). With
//! it, an identity provider's (Keycloak, Auth0, Cognito): RS256 or ES256,
//! its keys from a JWKS or PEM file — read again on SIGHUP and whenever the
//! file changes ([`watch_keys`]) — its `iss` and `aud` checked, and its
//! claims mapped to the engine's role, user id and city.
//!
//! ```toml
//! [auth]
//! jwks_file = "/etc/dispatch/jwks.json"  # or pem_file + algorithm = "RS256" | "ES256"
//! issuer = "https://idp.example/realms/dispatch"
//! audience = "dispatch"
//! reload_secs = 10                      # how often the file is looked at
//! [auth.claims]
//! role = "https://dispatch.example/role"  # a string, or an array of strings
//! sub = "sub"
//! city = "https://dispatch.example/city"
//! sub_format = "hash"                   # "number": numeric ids; "hash": any string, hashed to an id
//! [auth.claims.roles]
//! "dispatch-ops" = "dispatcher"          # the provider's role names
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::auth::{Auth, Checks, ClaimMapping, KeySource};

/// The shortest shared secret taken (HS256 keys shorter than the hash are guessable).
pub const MIN_SECRET_BYTES: usize = 32;

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// The identity provider's signing keys as a JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// Or its one public key, PEM, for `algorithm`.
    pub pem_file: Option<PathBuf>,
    /// With `pem_file`: `RS256` or `ES256`.
    pub algorithm: Option<String>,
    /// The issuer tokens must name (`iss`).
    pub issuer: Option<String>,
    /// The audience tokens must name (`aud`).
    pub audience: Option<String>,
    /// Where the role, the user id and the city are in a token.
    pub claims: ClaimMapping,
    /// How often the key file is looked at for a change, seconds (SIGHUP reloads at once).
    pub reload_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            jwks_file: None,
            pem_file: None,
            algorithm: None,
            issuer: None,
            audience: None,
            claims: ClaimMapping::default(),
            reload_secs: 10,
        }
    }
}

impl AuthSection {
    /// Where the provider's keys are, if tokens come from one.
    pub fn key_source(&self) -> anyhow::Result<Option<KeySource>> {
        match (&self.jwks_file, &self.pem_file) {
            (Some(_), Some(_)) => anyhow::bail!("auth: set jwks_file or pem_file, not both"),
            (Some(path), None) => Ok(Some(KeySource::JwksFile { path: path.clone() })),
            (None, Some(path)) => {
                let algorithm = match self.algorithm.as_deref() {
                    Some("RS256") => crate::auth::Algorithm::RS256,
                    Some("ES256") => crate::auth::Algorithm::ES256,
                    other => anyhow::bail!("auth.algorithm must be \"RS256\" or \"ES256\" with pem_file, not {other:?}"),
                };
                Ok(Some(KeySource::PemFile { path: path.clone(), algorithm }))
            }
            (None, None) => Ok(None),
        }
    }

    /// Checks the section with the shared secret and `dev_auth` beside it.
    pub fn validate(&self, jwt_secret: &str, dev_auth: bool) -> anyhow::Result<()> {
        let claims = &self.claims;
        anyhow::ensure!(
            [&claims.role, &claims.sub, &claims.city].iter().all(|c| !c.is_empty()),
            "auth.claims: role, sub and city must name claims"
        );
        anyhow::ensure!((1..=3_600).contains(&self.reload_secs), "auth.reload_secs must be 1 to 3600, not {}", self.reload_secs);
        if self.key_source()?.is_some() {
            anyhow::ensure!(jwt_secret.is_empty(), "auth: tokens come from the identity provider's keys; remove jwt_secret");
            anyhow::ensure!(!dev_auth, "auth: --dev-auth issues tokens with a shared secret, which the identity provider's keys replace");
            return Ok(());
        }
        anyhow::ensure!(
            self.issuer.is_none() && self.audience.is_none(),
            "auth.issuer and auth.audience are checked on an identity provider's tokens: set jwks_file or pem_file"
        );
        if jwt_secret.is_empty() {
            anyhow::ensure!(
                dev_auth,
                "a JWT secret is required (--jwt-secret or DISPATCH_JWT_SECRET, at least {MIN_SECRET_BYTES} bytes), \
                 or [auth] keys from your identity provider, unless --dev-auth is on"
            );
        } else {
            anyhow::ensure!(
                jwt_secret.len() >= MIN_SECRET_BYTES,
                "the JWT secret is {} bytes; an HS256 secret must be at least {MIN_SECRET_BYTES} (for example `openssl rand -base64 48`), \
                 or configure [auth] keys from your identity provider",
                jwt_secret.len()
            );
        }
        Ok(())
    }

    /// The token checker: the provider's keys (read now), or `jwt_secret`.
    pub fn auth(&self, jwt_secret: &str) -> anyhow::Result<Auth> {
        let checks = Checks { issuer: self.issuer.clone(), audience: self.audience.clone(), claims: self.claims.clone() };
        match self.key_source()? {
            Some(source) => Auth::from_keys(source, checks).map_err(|e| anyhow::anyhow!("auth: {e}")),
            None => Ok(Auth::new(jwt_secret.as_bytes()).with_checks(checks)),
        }
    }
}

/// Reads the key file again on SIGHUP, and whenever its modification time
/// changes (looked at every `every`), until `stop` turns true. A file that
/// does not read keeps the keys read before, and is logged.
pub async fn watch_keys(auth: Auth, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(path) = auth.key_file().map(std::path::Path::to_path_buf) else { return };
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<Option<()>>();
        let forced = tokio::select! {
            _ = sighup => true,
            () = tokio::time::sleep(every) => false,
            _ = stop.changed() => return,
        };
        let now = modified(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match auth.reload() {
            Ok(keys) => {
                metrics::counter!("dispatch_auth_key_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!(file = %path.display(), keys, "token keys read again");
            }
            Err(e) => {
                metrics::counter!("dispatch_auth_key_reloads_total", "outcome" => "failed").increment(1);
                tracing::error!(file = %path.display(), %e, "token keys not read again; the keys read before stay");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "a-secret-of-at-least-thirty-two-bytes";

    #[test]
    fn a_short_shared_secret_is_refused_with_a_clear_message() {
        let section = AuthSection::default();
        let err = section.validate("abc", false).unwrap_err().to_string();
        assert!(err.contains("3 bytes") && err.contains("at least 32"), "{err}");
        section.validate(LONG, false).unwrap();
        assert!(section.validate("", false).unwrap_err().to_string().contains("JWT secret is required"));
        section.validate("", true).unwrap();
    }

    #[test]
    fn an_identity_provider_s_keys_replace_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let keys = AuthSection { jwks_file: Some(jwks.clone()), ..AuthSection::default() };
        keys.validate("", false).unwrap();
        assert!(keys.validate(LONG, false).unwrap_err().to_string().contains("remove jwt_secret"));
        assert!(keys.validate("", true).unwrap_err().to_string().contains("--dev-auth"));
        // The file is read when the checker is made: a missing one is named.
        let err = keys.auth("").unwrap_err().to_string();
        assert!(err.contains("jwks.json"), "{err}");
        let both = AuthSection { pem_file: Some(jwks.clone()), ..keys.clone() };
        assert!(both.validate("", false).unwrap_err().to_string().contains("not both"));
        let pem = AuthSection { pem_file: Some(jwks), algorithm: Some("HS256".into()), ..AuthSection::default() };
        assert!(pem.validate("", false).unwrap_err().to_string().contains("RS256"));
        let stray = AuthSection { issuer: Some("https://idp.example/".into()), ..AuthSection::default() };
        assert!(stray.validate(LONG, false).unwrap_err().to_string().contains("jwks_file or pem_file"));
        let unnamed = AuthSection { claims: ClaimMapping { city: String::new(), ..ClaimMapping::default() }, ..AuthSection::default() };
        assert!(unnamed.validate(LONG, false).is_err());
        // The section reads from TOML as documented.
        let parsed: AuthSection = toml::from_str(
            "jwks_file = \"/etc/dispatch/jwks.json\"\naudience = \"dispatch\"\n[claims]\nsub_format = \"hash\"\n[claims.roles]\n\"dispatch-ops\" = \"dispatcher\"\n",
        )
        .unwrap();
        assert_eq!(parsed.claims.roles.get("dispatch-ops"), Some(&crate::auth::Role::Dispatcher));
        assert!(toml::from_str::<AuthSection>("jwks = \"x\"\n").is_err(), "an unknown key");
    }
}
