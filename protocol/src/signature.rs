//! Signed HTTP deliveries: `t=<unix seconds>,v1=<hex>[,v1=<hex>]`, each
//! `v1` an HMAC-SHA256 of `<t>.<body>` under one secret.
//!
//! The scheme the card processor signs its webhooks with (Stripe's), and the
//! one the engine signs its own outbound webhooks with (`Dispatch-Signature`,
//! see [`crate::webhook`]). The timestamp is signed with the body, so a
//! captured delivery replayed after the tolerance is refused; the receiver
//! compares in constant time ([`Mac::verify_slice`]); a sender holding two
//! secrets while one is rotated sends a `v1` for each, and a receiver holding
//! two accepts either.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The usual tolerance between a delivery's timestamp and the receiver's clock, seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` in the header.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("signed at {signed_at}, {skew} s from now (tolerance {tolerance} s)")]
    Stale {
        /// The delivery's timestamp.
        signed_at: i64,
        /// How far from now.
        skew: i64,
        /// The tolerance.
        tolerance: i64,
    },
    /// No signature matches under any secret.
    #[error("no signature matches")]
    BadSignature,
}

fn mac(secret: &[u8], signed_at: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(signed_at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header for `body` signed at `signed_at` (unix seconds): one `v1` per secret.
#[must_use]
pub fn sign(secrets: &[&[u8]], signed_at: i64, body: &[u8]) -> String {
    let mut header = format!("t={signed_at}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, signed_at, body).finalize().into_bytes()));
    }
    header
}

/// Checks `header` against `body`: signed under one of `secrets`, at most
/// `tolerance` seconds from `now` (unix seconds). The signing time.
pub fn verify(header: &str, body: &[u8], secrets: &[&[u8]], now: i64, tolerance: i64) -> Result<i64, SignatureError> {
    let mut signed_at = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => signed_at = t.parse::<i64>().ok(),
            Some(("v1", hex)) => signatures.extend(hex::decode(hex).ok()),
            _ => {}
        }
    }
    let (Some(signed_at), false) = (signed_at, signatures.is_empty()) else { return Err(SignatureError::Malformed) };
    let skew = now.saturating_sub(signed_at).saturating_abs();
    if skew > tolerance {
        return Err(SignatureError::Stale { signed_at, skew, tolerance });
    }
    for secret in secrets {
        for signature in &signatures {
            // Constant time.
            if mac(secret, signed_at, body).verify_slice(signature).is_ok() {
                return Ok(signed_at);
            }
        }
    }
    Err(SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"id": "evt_1", "type": "charge.dispute.created"}"#;
    /// HMAC-SHA256 of `1796270000.<BODY>` under `whsec_test_secret`, computed apart (Python's `hmac`).
    const KNOWN: &str = "5d946253d72d1da5102098bf0219720d301e458bf66bed99e488755002431ebf";
    const AT: i64 = 1_796_270_000;

    #[test]
    fn a_known_signature_is_what_sign_makes() {
        assert_eq!(sign(&[b"whsec_test_secret"], AT, BODY), format!("t={AT},v1={KNOWN}"));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in ["", "t=1", "v1=ab", "t=x,v1=ab", &format!("t={AT},v1=zz")] {
            assert_eq!(verify(bad, BODY, &[b"s"], AT, TOLERANCE_SECS), Err(SignatureError::Malformed), "{bad:?}");
        }
        // A timestamp at the edge of i64 does not overflow the skew.
        let header = sign(&[b"s"], i64::MIN, BODY);
        assert!(matches!(verify(&header, BODY, &[b"s"], i64::MAX, TOLERANCE_SECS), Err(SignatureError::Stale { .. })));
    }

    proptest! {
        /// What is signed verifies under either secret of a rotation, within the
        /// tolerance; a changed byte of the body, a moved timestamp, a stale
        /// one or a wrong secret does not.
        #[test]
        fn signatures_verify_only_what_was_signed(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            old in proptest::collection::vec(any::<u8>(), 1..40),
            new in proptest::collection::vec(any::<u8>(), 1..40),
            at in 0i64..4_000_000_000,
            skew in -300i64..=300,
            flip in any::<prop::sample::Index>(),
        ) {
            prop_assume!(old != new);
            let header = sign(&[&old, &new], at, &body);
            prop_assert_eq!(verify(&header, &body, &[&old], at + skew, TOLERANCE_SECS), Ok(at));
            prop_assert_eq!(verify(&header, &body, &[&new], at - skew, TOLERANCE_SECS), Ok(at));
            let only_old = sign(&[&old], at, &body);
            prop_assert_eq!(verify(&only_old, &body, &[&new], at, TOLERANCE_SECS), Err(SignatureError::BadSignature));
            let stale = matches!(verify(&header, &body, &[&old], at + 301, TOLERANCE_SECS), Err(SignatureError::Stale { .. }));
            prop_assert!(stale);
            let moved = header.replacen(&format!("t={at}"), &format!("t={}", at + 1), 1);
            prop_assert_eq!(verify(&moved, &body, &[&old, &new], at, TOLERANCE_SECS), Err(SignatureError::BadSignature));
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[flip.index(body.len())] ^= 1;
                prop_assert_eq!(verify(&header, &changed, &[&old, &new], at, TOLERANCE_SECS), Err(SignatureError::BadSignature));
            }
        }
    }
}
