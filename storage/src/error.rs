//! The storage crate's one error type.

/// What a store or the codec can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A blob shorter than the envelope header, or shorter than its header says.
    #[error("snapshot blob truncated: {len} bytes, need {need}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The blob does not start with the snapshot magic: not one of ours.
    #[error("not a dispatch snapshot (bad magic {found:02x?})")]
    BadMagic {
        /// The first bytes found.
        found: [u8; 4],
    },
    /// Written by a schema this build cannot read.
    #[error("snapshot schema version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// The version in the blob.
        found: u16,
        /// The version this build writes and reads.
        supported: u16,
    },
    /// The payload's checksum does not match: the blob was corrupted.
    #[error("snapshot checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload as read.
        computed: u32,
    },
    /// The payload is intact but does not decode as the expected type.
    #[error("snapshot payload does not decode: {0}")]
    Decode(String),
    /// The value could not be encoded.
    #[error("snapshot payload does not encode: {0}")]
    Encode(String),
    /// The backend failed (disk, database, a refused statement).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The backend could not be reached or did not answer in time: worth
    /// retrying (timeouts, lost connections, too few replicas up, overload).
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// The store is unreachable and its write buffer is full: the write was
    /// refused, not accepted and lost.
    #[error("storage backend unreachable and {buffered} writes are already buffered (the limit); refused")]
    BufferFull {
        /// Writes waiting in the buffer.
        buffered: usize,
    },
}

impl StorageError {
    /// Worth trying again after a pause (see [`RetryPolicy`](crate::RetryPolicy)).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// The backend failed, as opposed to the data (codec errors) being bad:
    /// a write that failed this way may succeed later, unchanged.
    #[must_use]
    pub fn is_backend_failure(&self) -> bool {
        matches!(self, StorageError::Backend(_) | StorageError::Unavailable(_))
    }
}

impl From<redb::Error> for StorageError {
    fn from(e: redb::Error) -> Self {
        StorageError::Backend(e.to_string())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::from(redb::Error::from(e))
            }
        }
    )*};
}
redb_errors!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// Shorthand for results whose error is [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
