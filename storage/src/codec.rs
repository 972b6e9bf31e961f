//! Snapshot codec: `bincode` 2 (serde) inside a versioned, checksummed envelope.
//!
//! ```text
//! offset 0   4 bytes  magic "DSPS"
//!        4   u16 LE   schema version (SCHEMA_VERSION)
//!        6   u32 LE   payload length
//!       10   u32 LE   CRC-32 of the version and the payload (of the payload
//!                     alone before schema version 3)
//!       14   …        payload: bincode, standard config
//! ```
//!
//! The version is under the checksum since version 3: a flipped version bit
//! could otherwise turn a blob into another valid version, read as the wrong layout.
//!
//! Every stored type implements [`Versioned`]: it names the schema version
//! that introduced its current layout, and reads payloads of earlier versions
//! through its upcaster. Bincode stores field order and variant indexes, not
//! names, so a layout change read as the new layout would mis-decode silently
//! (the CRC still passes); a change therefore bumps [`SCHEMA_VERSION`], sets
//! the type's [`Versioned::LAYOUT_SINCE`] to it and adds an upcaster from the
//! old layout. The golden files under `actors/tests/golden/` keep every
//! version's blobs decoding.
//!
//! A blob from a newer schema version (written by a later build) fails with
//! [`StorageError::UnsupportedVersion`]; a truncated or corrupted blob fails
//! with [`StorageError::Truncated`] or [`StorageError::Checksum`]; nothing
//! here panics on any input. Decoding is capped at [`MAX_PAYLOAD`] bytes so a
//! forged length cannot make it allocate without bound.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StorageError};

/// The first four bytes of every snapshot.
pub const MAGIC: [u8; 4] = *b"DSPS";
/// The schema version this build writes; it reads this one and every earlier one.
///
/// | version | what changed |
/// |---|---|
/// | 1 | first layout |
/// | 2 | ratings: a job records its rating, a contractor keeps a rating tally; the log gains `Rated` and is its own record type |
/// | 3 | payments: a job keeps its payment and payee, a contractor their earnings; the log gains `PaymentCall` and `Payment` |
pub const SCHEMA_VERSION: u16 = 3;
/// Envelope header length in bytes.
pub const HEADER_LEN: usize = 14;
/// The largest payload accepted, bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// A type stored through the codec, and how it reads older schema versions.
pub trait Versioned: Serialize + DeserializeOwned {
    /// The schema version that introduced this type's current layout; blobs
    /// of this version or later decode as the type itself.
    const LAYOUT_SINCE: u16 = 1;

    /// Reads `payload`, written by schema `version` (older than
    /// [`Self::LAYOUT_SINCE`]): decode it as the old layout
    /// ([`decode_payload`]) and convert. The default refuses.
    fn upcast(version: u16, payload: &[u8]) -> Result<Self> {
        let _ = payload;
        Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION })
    }
}

/// Encodes `value` in the envelope.
pub fn encode<T: Versioned>(value: &T) -> Result<Vec<u8>> {
    let payload = bincode::serde::encode_to_vec(value, config()).map_err(|e| StorageError::Encode(e.to_string()))?;
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::Encode(format!("payload of {} bytes", payload.len())))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(SCHEMA_VERSION, &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a blob written by [`encode`] of this build or an earlier one,
/// checking magic, version, length and checksum, upcasting older layouts.
pub fn decode<T: Versioned>(blob: &[u8]) -> Result<T> {
    let header: &[u8; HEADER_LEN] =
        blob.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(StorageError::Truncated { len: blob.len(), need: HEADER_LEN })?;
    let magic = [header[0], header[1], header[2], header[3]];
    if magic != MAGIC {
        return Err(StorageError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version == 0 || version > SCHEMA_VERSION {
        return Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION });
    }
    let len = u32::from_le_bytes([header[6], header[7], header[8], header[9]]) as usize;
    let stored = u32::from_le_bytes([header[10], header[11], header[12], header[13]]);
    let need = HEADER_LEN.saturating_add(len);
    let payload = &blob[HEADER_LEN..];
    if payload.len() < len {
        return Err(StorageError::Truncated { len: blob.len(), need });
    }
    if payload.len() > len {
        return Err(StorageError::Decode(format!("{} bytes after the payload", payload.len() - len)));
    }
    let computed = checksum(version, payload);
    if computed != stored {
        return Err(StorageError::Checksum { stored, computed });
    }
    if version < T::LAYOUT_SINCE { T::upcast(version, payload) } else { decode_payload(payload) }
}

/// The envelope's checksum of a blob of schema `version`.
fn checksum(version: u16, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if version >= 3 {
        hasher.update(&version.to_le_bytes());
    }
    hasher.update(payload);
    hasher.finalize()
}

/// Decodes a bare payload (no envelope) as `T`, all of it: for upcasters,
/// which read the old layout's type with it.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(payload, config()).map_err(|e| StorageError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(StorageError::Decode(format!("{} payload bytes left undecoded", payload.len() - used)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        points: Vec<(f64, f64)>,
        state: State,
    }

    impl Versioned for Sample {}

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum State {
        Idle,
        Busy { job: u64 },
    }

    /// `Sample` as schema version 1 laid it out: no name yet.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct SampleV1 {
        id: u64,
        points: Vec<(f64, f64)>,
        state: State,
    }

    impl Versioned for SampleV1 {}

    /// `Sample` whose layout changed in this version, read from version 1 by an upcaster.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Renamed {
        id: u64,
        name: String,
        points: Vec<(f64, f64)>,
        state: State,
    }

    impl Versioned for Renamed {
        const LAYOUT_SINCE: u16 = SCHEMA_VERSION;

        fn upcast(version: u16, payload: &[u8]) -> Result<Self> {
            match version {
                1 => {
                    let old: SampleV1 = decode_payload(payload)?;
                    Ok(Renamed { id: old.id, name: format!("#{}", old.id), points: old.points, state: old.state })
                }
                _ => Err(StorageError::UnsupportedVersion { found: version, supported: SCHEMA_VERSION }),
            }
        }
    }

    /// `blob` with its envelope's version set to `version`.
    /// `blob` as a build writing schema `version` would have written it.
    fn with_version(mut blob: Vec<u8>, version: u16) -> Vec<u8> {
        blob[4..6].copy_from_slice(&version.to_le_bytes());
        let sum = checksum(version, &blob[HEADER_LEN..]);
        blob[10..14].copy_from_slice(&sum.to_le_bytes());
        blob
    }

    fn sample() -> Sample {
        Sample { id: 7, name: "Ada".into(), points: vec![(41.5, -93.6), (41.6, -93.7)], state: State::Busy { job: 9 } }
    }

    #[test]
    fn roundtrip() {
        let blob = encode(&sample()).unwrap();
        assert_eq!(&blob[..4], b"DSPS");
        assert_eq!(decode::<Sample>(&blob).unwrap(), sample());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let blob = encode(&sample()).unwrap();
        for cut in 0..blob.len() {
            let err = decode::<Sample>(&blob[..cut]).unwrap_err();
            assert!(matches!(err, StorageError::Truncated { .. }), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn every_single_byte_corruption_is_an_error() {
        let blob = encode(&sample()).unwrap();
        for at in 0..blob.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = blob.clone();
                bad[at] ^= flip;
                assert!(decode::<Sample>(&bad).is_err(), "byte {at} ^ {flip:#x} went unnoticed");
            }
        }
    }

    #[test]
    fn a_newer_or_zero_schema_version_is_named_in_the_error() {
        for version in [0, SCHEMA_VERSION + 1] {
            let err = decode::<Sample>(&with_version(encode(&sample()).unwrap(), version)).unwrap_err();
            assert!(matches!(err, StorageError::UnsupportedVersion { found, supported: SCHEMA_VERSION } if found == version));
            assert!(err.to_string().contains(&format!("version {version}")));
        }
    }

    #[test]
    fn an_older_layout_is_read_through_the_upcaster() {
        let old = SampleV1 { id: 7, points: vec![(1.0, 2.0)], state: State::Idle };
        let blob = with_version(encode(&old).unwrap(), 1);
        assert_eq!(decode::<Renamed>(&blob).unwrap(), Renamed { id: 7, name: "#7".into(), points: vec![(1.0, 2.0)], state: State::Idle });
        // A type whose layout did not change reads older versions as itself.
        assert_eq!(decode::<SampleV1>(&blob).unwrap(), old);
        // Without an upcaster, an older layout is refused rather than misread.
        #[derive(Debug, Serialize, Deserialize)]
        struct NoUpcaster(u64);
        impl Versioned for NoUpcaster {
            const LAYOUT_SINCE: u16 = SCHEMA_VERSION;
        }
        let err = decode::<NoUpcaster>(&with_version(encode(&NoUpcaster(1)).unwrap(), 1)).unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedVersion { found: 1, .. }), "{err}");
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct NoName(u8);
    impl Versioned for NoName {}

    #[test]
    fn trailing_bytes_and_wrong_types_are_errors() {
        let mut blob = encode(&sample()).unwrap();
        blob.push(0);
        assert!(matches!(decode::<Sample>(&blob), Err(StorageError::Decode(_))));
        let blob = encode(&NoName(3)).unwrap();
        assert!(matches!(decode::<Sample>(&blob), Err(StorageError::Decode(_))));
    }

    #[test]
    fn a_forged_length_prefix_does_not_allocate_without_bound() {
        // A valid envelope whose payload claims a vector of 2^62 elements.
        let mut payload = vec![0u8; 8]; // id
        payload.push(255); // varint marker: u64 follows
        payload.extend_from_slice(&(1u64 << 62).to_le_bytes());
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC);
        blob.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
        blob.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        blob.extend_from_slice(&checksum(SCHEMA_VERSION, &payload).to_le_bytes());
        blob.extend_from_slice(&payload);
        assert!(decode::<Sample>(&blob).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Sample>(&bytes);
            // With a valid header in front, the payload is still checked.
            let mut blob = MAGIC.to_vec();
            blob.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
            blob.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            blob.extend_from_slice(&checksum(SCHEMA_VERSION, &bytes).to_le_bytes());
            blob.extend_from_slice(&bytes);
            let _ = decode::<Sample>(&blob);
        }
    }
}
