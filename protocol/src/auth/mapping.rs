//! [`ClaimMapping`]: where a token's role, user id and city are, and how a
//! string subject becomes the engine's numeric id. Identity providers put a
//! string in `sub` and namespace their own claims
//! (`https://dispatch.example/role`); the engine's own tokens carry `role`,
//! a numeric `sub` and `city`, which the default mapping reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AuthError, Role};

/// How the user id claim becomes the engine's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubFormat {
    /// A JSON number, or a string of decimal digits.
    #[default]
    Number,
    /// Any string, hashed to a stable id below 2^53 (so JavaScript apps read
    /// it exactly): the same subject is the same id on every node and build.
    Hash,
}

/// Where the engine's claims are in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The claim holding the role: a string, or an array of strings (the first that names a role).
    pub role: String,
    /// The claim holding the user id.
    pub sub: String,
    /// The claim holding the city.
    pub city: String,
    /// How the user id becomes the engine's id.
    pub sub_format: SubFormat,
    /// The identity provider's role names and the engine's roles they are
    /// (`contractor`, `customer` and `dispatcher` are always themselves).
    pub roles: BTreeMap<String, Role>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self { role: "role".into(), sub: "sub".into(), city: "city".into(), sub_format: SubFormat::Number, roles: BTreeMap::new() }
    }
}

impl ClaimMapping {
    /// The role, user id and city `claims` carry.
    pub fn read(&self, claims: &Map<String, Value>) -> Result<(Role, u64, String), AuthError> {
        let missing = |claim: &str| AuthError(format!("the token has no {claim:?} claim"));
        let role = match claims.get(&self.role).ok_or_else(|| missing(&self.role))? {
            Value::String(name) => self.role_named(name),
            Value::Array(names) => names.iter().filter_map(Value::as_str).find_map(|n| self.role_named(n)),
            _ => None,
        }
        .ok_or_else(|| AuthError(format!("the {:?} claim names no role of this engine", self.role)))?;
        let sub = claims.get(&self.sub).ok_or_else(|| missing(&self.sub))?;
        let sub = match (self.sub_format, sub) {
            (SubFormat::Number, Value::Number(n)) => n.as_u64(),
            (SubFormat::Number, Value::String(s)) => s.parse().ok(),
            (SubFormat::Hash, Value::String(s)) if !s.is_empty() => Some(hashed(s)),
            _ => None,
        }
        .ok_or_else(|| AuthError(format!("the {:?} claim is not a {:?} user id", self.sub, self.sub_format)))?;
        // An admin acts on every city: their token need not name one.
        let city = match (claims.get(&self.city).and_then(Value::as_str), role) {
            (Some(city), _) => city.to_owned(),
            (None, Role::Admin) => String::new(),
            (None, _) => return Err(missing(&self.city)),
        };
        Ok((role, sub, city))
    }

    fn role_named(&self, name: &str) -> Option<Role> {
        self.roles.get(name).copied().or_else(|| serde_json::from_value(Value::String(name.to_owned())).ok())
    }
}

/// A string subject's id: rapidhash (v3, fixed on every platform) below 2^53.
fn hashed(subject: &str) -> u64 {
    rapidhash::v3::rapidhash_v3(subject.as_bytes()) & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_default_reads_the_engine_s_own_tokens() {
        let mapping = ClaimMapping::default();
        let read = mapping.read(&claims(json!({"role": "customer", "sub": 42, "city": "ames"}))).unwrap();
        assert_eq!(read, (Role::Customer, 42, "ames".to_owned()));
        assert_eq!(mapping.read(&claims(json!({"role": "customer", "sub": "42", "city": "ames"}))).unwrap().1, 42);
        for bad in [
            json!({"sub": 42, "city": "ames"}),
            json!({"role": "superuser", "sub": 42, "city": "ames"}),
            json!({"role": "customer", "sub": "auth0|42", "city": "ames"}),
            json!({"role": "customer", "sub": -1, "city": "ames"}),
            json!({"role": "customer", "sub": 42}),
        ] {
            assert!(mapping.read(&claims(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_admin_s_token_need_not_name_a_city() {
        let read = ClaimMapping::default().read(&claims(json!({"role": "admin", "sub": 1}))).unwrap();
        assert_eq!(read, (Role::Admin, 1, String::new()));
    }

    #[test]
    fn an_identity_provider_s_claims_map_by_name_and_a_string_subject_hashes_stably() {
        let mapping = ClaimMapping {
            role: "https://dispatch.example/roles".into(),
            city: "https://dispatch.example/city".into(),
            sub_format: SubFormat::Hash,
            roles: BTreeMap::from([("dispatch-ops".to_owned(), Role::Dispatcher)]),
            ..ClaimMapping::default()
        };
        let token = |sub: &str| {
            claims(json!({
                "sub": sub,
                "https://dispatch.example/roles": ["offline_access", "dispatch-ops"],
                "https://dispatch.example/city": "des-moines",
            }))
        };
        let (role, id, city) = mapping.read(&token("auth0|5f1c2b")).unwrap();
        assert_eq!((role, city.as_str()), (Role::Dispatcher, "des-moines"));
        // Fixed: a changed hash would turn every user into someone else.
        assert_eq!(id, 0x3711_9d5b_3cfc, "{id:#x}");
        assert!(id < 1 << 53);
        assert_eq!(mapping.read(&token("auth0|5f1c2b")).unwrap().1, id);
        assert_ne!(mapping.read(&token("auth0|5f1c2c")).unwrap().1, id);
        assert!(mapping.read(&token("")).is_err(), "an empty subject");
    }
}
