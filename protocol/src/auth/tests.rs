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

/// A key pair made for the test: the private key as PKCS#8 PEM, the public one as PEM.
struct TestKey {
    algorithm: Algorithm,
    private_pem: String,
    public_pem: String,
}

fn es256() -> TestKey {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    TestKey {
        algorithm: Algorithm::ES256,
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: secret.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

fn rs256() -> TestKey {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    TestKey {
        algorithm: Algorithm::RS256,
        private_pem: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
    }
}

impl TestKey {
    fn encoding(&self) -> EncodingKey {
        match self.algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(self.private_pem.as_bytes()).unwrap(),
        }
    }

    /// Its public half as a JWKS entry under `kid`.
    fn jwk(&self, kid: &str) -> serde_json::Value {
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding(), self.algorithm).unwrap();
        jwk.common.key_id = Some(kid.into());
        serde_json::to_value(jwk).unwrap()
    }

    /// A token of `claims` signed with this key, naming `kid`.
    fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid.map(Into::into);
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }
}

fn in_an_hour() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3_600
}

/// An identity provider's token: a string subject, namespaced role and city, its issuer and audience.
fn provider_claims(sub: &str) -> serde_json::Value {
    serde_json::json!({
        "sub": sub, "exp": in_an_hour(), "iss": "https://idp.example/", "aud": "dispatch",
        "https://dispatch.example/role": ["offline_access", "contractor"], "https://dispatch.example/city": "des-moines",
    })
}

fn provider_checks() -> Checks {
    Checks {
        issuer: Some("https://idp.example/".into()),
        audience: Some("dispatch".into()),
        claims: ClaimMapping {
            role: "https://dispatch.example/role".into(),
            city: "https://dispatch.example/city".into(),
            sub_format: SubFormat::Hash,
            ..ClaimMapping::default()
        },
    }
}

#[test]
fn a_jwks_verifies_rs256_and_es256_tokens_by_kid_and_is_read_again_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (rsa, ec, later) = (rs256(), es256(), es256());
    let write = |keys: Vec<serde_json::Value>| std::fs::write(&path, serde_json::json!({ "keys": keys }).to_string()).unwrap();
    write(vec![rsa.jwk("r1"), ec.jwk("e1")]);
    let auth = Auth::from_keys(KeySource::JwksFile { path: path.clone() }, provider_checks()).unwrap();

    for (key, kid) in [(&rsa, "r1"), (&ec, "e1")] {
        let claims = auth.verify(&key.sign(Some(kid), &provider_claims("auth0|7"))).unwrap();
        assert_eq!((claims.role, claims.city.as_str()), (Role::Contractor, "des-moines"), "{kid}");
        assert_eq!(claims.sub, auth.verify(&key.sign(Some(kid), &provider_claims("auth0|7"))).unwrap().sub);
    }
    // The wrong kid, a kid of another algorithm, an unknown kid, and no kid among two keys: refused.
    assert!(auth.verify(&rsa.sign(Some("e1"), &provider_claims("a"))).is_err());
    assert!(auth.verify(&ec.sign(Some("r1"), &provider_claims("a"))).is_err());
    assert!(auth.verify(&ec.sign(Some("e9"), &provider_claims("a"))).is_err());
    assert!(auth.verify(&rsa.sign(None, &provider_claims("a"))).is_ok(), "the only RS256 key");
    // An HS256 token made with the public key as its secret (algorithm confusion): refused.
    let confused = jsonwebtoken::encode(
        &Header { kid: Some("r1".into()), ..Header::new(Algorithm::HS256) },
        &provider_claims("a"),
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    )
    .unwrap();
    assert!(auth.verify(&confused).is_err());

    // Issuer, audience and expiry are checked.
    for (claim, value) in
        [("iss", serde_json::json!("https://evil.example/")), ("aud", serde_json::json!("other")), ("exp", serde_json::json!(1))]
    {
        let mut claims = provider_claims("a");
        claims[claim] = value;
        assert!(auth.verify(&ec.sign(Some("e1"), &claims)).is_err(), "{claim}");
    }
    let mut no_issuer = provider_claims("a");
    no_issuer.as_object_mut().unwrap().remove("iss");
    assert!(auth.verify(&ec.sign(Some("e1"), &no_issuer)).is_err(), "an issuer is required once configured");

    // The provider rotates: e1 goes, e2 comes. Until the reload, the old set verifies.
    write(vec![rsa.jwk("r1"), later.jwk("e2")]);
    assert!(auth.verify(&later.sign(Some("e2"), &provider_claims("a"))).is_err());
    assert_eq!(auth.reload().unwrap(), 2);
    assert!(auth.verify(&later.sign(Some("e2"), &provider_claims("a"))).is_ok());
    assert!(auth.verify(&ec.sign(Some("e1"), &provider_claims("a"))).is_err(), "rotated out");
    // A broken file keeps the keys read before.
    std::fs::write(&path, "{not json").unwrap();
    assert!(auth.reload().is_err());
    assert!(auth.verify(&later.sign(Some("e2"), &provider_claims("a"))).is_ok());
    assert!(auth.issue(Role::Customer, 1, "x", 60).is_err(), "tokens come from the provider");
}

#[test]
fn a_pem_public_key_verifies_its_algorithm_only() {
    let dir = tempfile::tempdir().unwrap();
    let ec = es256();
    let path = dir.path().join("idp.pem");
    std::fs::write(&path, &ec.public_pem).unwrap();
    let auth = Auth::from_keys(KeySource::PemFile { path: path.clone(), algorithm: Algorithm::ES256 }, provider_checks()).unwrap();
    assert_eq!(auth.key_file(), Some(path.as_path()));
    assert!(auth.verify(&ec.sign(None, &provider_claims("a"))).is_ok());
    assert!(auth.verify(&es256().sign(None, &provider_claims("a"))).is_err(), "another key");
    // The same key read as RS256 does not load; a key file that is not one names itself.
    assert!(Auth::from_keys(KeySource::PemFile { path: path.clone(), algorithm: Algorithm::RS256 }, Checks::default()).is_err());
    std::fs::write(&path, "nothing").unwrap();
    let err = Auth::from_keys(KeySource::JwksFile { path: path.clone() }, Checks::default()).unwrap_err();
    assert!(err.to_string().contains("idp.pem"), "{err}");
    let none = dir.path().join("missing.json");
    assert!(Auth::from_keys(KeySource::JwksFile { path: none }, Checks::default()).is_err());
}
