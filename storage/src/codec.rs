//! Snapshot codec: `bincode` 2 (serde) inside a versioned, checksummed envelope.
//!
//! ```text
//! offset 0   4 bytes  magic "DSPS"
//!        4   u16 LE   schema version (SCHEMA_VERSION)
//!        6   u32 LE   payload length
//!       10   u32 LE   CRC-32 of the payload
//!       14   …        payload: bincode, standard config
//! ```
//!
//! A blob from another schema version fails with
//! [`StorageError::UnsupportedVersion`]; a truncated or corrupted blob fails
//! with [`StorageError::Truncated`] or [`StorageError::Checksum`]; nothing
//! here panics on any input. Decoding is capped at [`MAX_PAYLOAD`] bytes so a
//! forged length cannot make it allocate without bound.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StorageError};

/// The first four bytes of every snapshot.
pub const MAGIC: [u8; 4] = *b"DSPS";
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u16 = 1;
/// Envelope header length in bytes.
pub const HEADER_LEN: usize = 14;
/// The largest payload accepted, bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// Encodes `value` in the envelope.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let payload = bincode::serde::encode_to_vec(value, config()).map_err(|e| StorageError::Encode(e.to_string()))?;
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::Encode(format!("payload of {} bytes", payload.len())))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a blob written by [`encode`], checking magic, version, length and checksum.
pub fn decode<T: DeserializeOwned>(blob: &[u8]) -> Result<T> {
    let header: &[u8; HEADER_LEN] =
        blob.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(StorageError::Truncated { len: blob.len(), need: HEADER_LEN })?;
    let magic = [header[0], header[1], header[2], header[3]];
    if magic != MAGIC {
        return Err(StorageError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != SCHEMA_VERSION {
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
    let computed = crc32fast::hash(payload);
    if computed != stored {
        return Err(StorageError::Checksum { stored, computed });
    }
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum State {
        Idle,
        Busy { job: u64 },
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
    fn another_schema_version_is_named_in_the_error() {
        let mut blob = encode(&sample()).unwrap();
        blob[4..6].copy_from_slice(&0u16.to_le_bytes());
        let err = decode::<Sample>(&blob).unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedVersion { found: 0, supported: SCHEMA_VERSION }));
        assert!(err.to_string().contains("version 0"));
    }

    #[test]
    fn trailing_bytes_and_wrong_types_are_errors() {
        let mut blob = encode(&sample()).unwrap();
        blob.push(0);
        assert!(matches!(decode::<Sample>(&blob), Err(StorageError::Decode(_))));
        let blob = encode(&"just a string").unwrap();
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
        blob.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
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
            blob.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            blob.extend_from_slice(&bytes);
            let _ = decode::<Sample>(&blob);
        }
    }
}
