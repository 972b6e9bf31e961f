//! [`WriterRoles`]: each owner of a city writes as a CQL role of its own
//! epoch, and the next owner drops that role, so the store itself refuses a
//! write the last owner still had on its way.
//!
//! An owner stops writing when its lease is no longer trusted (the
//! [`Fence`]), but a write already handed to the driver when the process
//! was paused reaches the store whenever the process runs again. Its
//! timestamp is older than anything the next owner writes, so it loses on
//! every row the next owner writes; on a row the next owner has not written
//! yet it would still show. The store refuses it instead:
//!
//! 1. A city's owner at epoch `e` writes as role `<keyspace>_e<e>`, with a
//!    fresh random password and `SELECT` and `MODIFY` on the city's
//!    keyspace only ([`WriterRoles::admit`]); the engine's own login keeps
//!    the leases and the schema.
//! 2. The next owner, once its lease is taken, drops every older role of
//!    the city ([`WriterRoles::retire`]), which removes their permissions.
//! 3. It waits for the nodes' permission caches to forget them
//!    ([`WriterRoles::settle_time`]: the longest of the server's
//!    `permissions_validity` and `roles_validity`, plus [`MARGIN`]) before it
//!    reads the city. From then on a write under an older role is refused
//!    with `Unauthorized`, on any connection, however late it arrives.
//!
//! Each role statement is sent only while the owner's fence is open: a
//! paused owner can let at most one through, and no role gains a permission
//! after its successor has retired it (the grant comes after the creation,
//! and the successor drops whatever it finds).
//!
//! This needs the store to authenticate and authorize (Cassandra:
//! `PasswordAuthenticator` and `CassandraAuthorizer`; ScyllaDB: the same
//! names), and the engine's login to create, grant and drop roles (a
//! superuser, or a role with `CREATE`, `DROP` and `AUTHORIZE` on `ALL ROLES`
//! and `AUTHORIZE` on the keyspaces). [`WriterRoles::open`] checks both.

use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::value::{CqlValue, Row};

use super::{ScyllaConfig, ScyllaStore};
use crate::error::{Result, StorageError};
use crate::fenced::Fence;

/// Added to the servers' cache validity: a permission check that began
/// before the drop, and a mutation it let through on its way to replicas.
pub const MARGIN: Duration = Duration::from_millis(500);

/// The login of one epoch's writer.
#[derive(Clone, PartialEq, Eq)]
pub struct Writer {
    /// The role's name: `<keyspace>_e<epoch>`.
    pub role: String,
    /// The keyspace it writes.
    pub keyspace: String,
    password: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("role", &self.role).finish_non_exhaustive()
    }
}

/// Creates, grants and drops the writer roles of a cluster's cities.
pub struct WriterRoles {
    session: Arc<Session>,
    config: ScyllaConfig,
    settle: Duration,
}

impl std::fmt::Debug for WriterRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterRoles").field("settle", &self.settle).finish_non_exhaustive()
    }
}

/// The role of `keyspace`'s owner at `epoch`.
#[must_use]
pub fn role_name(keyspace: &str, epoch: u64) -> String {
    format!("{keyspace}_e{epoch}")
}

/// The epoch of a role of `keyspace`, if `role` is one.
#[must_use]
pub fn epoch_of(keyspace: &str, role: &str) -> Option<u64> {
    let digits = role.strip_prefix(keyspace)?.strip_prefix("_e")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Milliseconds of a server setting as the servers print it: Cassandra's
/// `500ms`, `2s`, `1m` (or a bare number of milliseconds), ScyllaDB's `10000`.
#[must_use]
pub fn setting_ms(value: &str) -> Option<u64> {
    let value = value.trim().trim_matches('"');
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "millis" | "milliseconds" => 1,
        "s" | "seconds" => 1_000,
        "m" | "minutes" => 60_000,
        "h" | "hours" => 3_600_000,
        "us" | "µs" | "micros" => return Some(number.div_ceil(1_000)),
        _ => return None,
    };
    number.checked_mul(scale)
}

impl WriterRoles {
    /// Checks that the store authenticates and authorizes this login, and
    /// learns how long its nodes cache permissions.
    pub async fn open(session: Arc<Session>, config: &ScyllaConfig) -> Result<Self> {
        let needs = "a cluster engine needs the store to authenticate and authorize clients (PasswordAuthenticator and CassandraAuthorizer) and a login that can create, grant and drop roles";
        if config.user.is_none() {
            return Err(StorageError::Backend(format!("{needs}; no user is configured (scylla.user, or user:password@ in the URI)")));
        }
        let validity = match server_validity_ms(&session).await {
            Some(ms) => ms,
            None => config.permissions_validity_ms.ok_or_else(|| {
                StorageError::Backend(
                    "cannot read the store's permissions_validity (system_views.settings or system.config): set scylla.permissions_validity_ms".into(),
                )
            })?,
        };
        let roles = Self { session, config: config.clone(), settle: Duration::from_millis(validity) + MARGIN };
        // A role made, granted and dropped: each step fails on a store that does not enforce them.
        let probe = format!("{}_probe_{:016x}", config.keyspace_prefix, random_u64()?);
        let steps = [
            format!("CREATE ROLE IF NOT EXISTS {probe} WITH PASSWORD = '{}' AND LOGIN = false", password()?),
            format!("GRANT SELECT ON ALL KEYSPACES TO {probe}"),
            format!("DROP ROLE IF EXISTS {probe}"),
        ];
        for step in steps {
            roles.run(&step, None).await.map_err(|e| StorageError::Backend(format!("{needs}: {e}")))?;
        }
        tracing::info!(settle_ms = roles.settle.as_millis() as u64, "writer roles checked");
        Ok(roles)
    }

    /// How long after [`Self::retire`] a write under a retired role may still pass.
    #[must_use]
    pub fn settle_time(&self) -> Duration {
        self.settle
    }

    /// Drops every role of `city` from an epoch before `epoch`; the dropped roles' names.
    pub async fn retire(&self, city: &str, epoch: u64, fence: &Fence) -> Result<Vec<String>> {
        let keyspace = self.config.keyspace_for(city)?;
        let listed = self.session.query_unpaged("LIST ROLES", ()).await.map_err(|e| StorageError::Backend(format!("LIST ROLES: {e}")))?;
        // The first column is the role's name; the rest differ between servers.
        let roles = ScyllaStore::rows::<Row>(listed)?.into_iter().filter_map(|row| match row.columns.into_iter().next() {
            Some(Some(CqlValue::Text(name) | CqlValue::Ascii(name))) => Some(name),
            _ => None,
        });
        let mut dropped = Vec::new();
        for role in roles {
            if epoch_of(&keyspace, &role).is_some_and(|e| e < epoch) {
                self.run(&format!("DROP ROLE IF EXISTS {role}"), Some(fence)).await?;
                dropped.push(role);
            }
        }
        if !dropped.is_empty() {
            tracing::info!(%city, epoch, roles = ?dropped, "the city's earlier writers are retired");
        }
        Ok(dropped)
    }

    /// Creates `city`'s writer role for `epoch`, allowed to read and write its keyspace only.
    pub async fn admit(&self, city: &str, epoch: u64, fence: &Fence) -> Result<Writer> {
        let keyspace = self.config.keyspace_for(city)?;
        let writer = Writer { role: role_name(&keyspace, epoch), keyspace: keyspace.clone(), password: password()? };
        let role = &writer.role;
        // A role left by an attempt of this epoch that failed half-way gets a password this process knows.
        self.run(&format!("DROP ROLE IF EXISTS {role}"), Some(fence)).await?;
        self.run(&format!("CREATE ROLE {role} WITH PASSWORD = '{}' AND LOGIN = true", writer.password), Some(fence)).await?;
        self.run(&format!("GRANT SELECT ON KEYSPACE {keyspace} TO {role}"), Some(fence)).await?;
        self.run(&format!("GRANT MODIFY ON KEYSPACE {keyspace} TO {role}"), Some(fence)).await?;
        Ok(writer)
    }

    /// Drops `writer`'s role: its owner has flushed and is giving the city up.
    pub async fn dismiss(&self, writer: &Writer) -> Result<()> {
        self.run(&format!("DROP ROLE IF EXISTS {}", writer.role), None).await
    }

    /// A session logged in as `writer`, to the same nodes as the engine's.
    pub async fn connect(&self, writer: &Writer) -> Result<Arc<Session>> {
        let config = ScyllaConfig { user: Some(writer.role.clone()), password: Some(writer.password.clone()), ..self.config.clone() };
        ScyllaStore::connect_for(&config, Some(&writer.keyspace)).await
    }

    /// Runs one role statement, only while `fence` (if any) is open.
    async fn run(&self, text: &str, fence: Option<&Fence>) -> Result<()> {
        if let Some(fence) = fence {
            fence.check()?;
        }
        self.session.query_unpaged(text, ()).await.map(drop).map_err(|e| {
            let shown = text.split(" WITH PASSWORD").next().unwrap_or(text);
            StorageError::Backend(format!("`{shown}`: {e}"))
        })
    }
}

/// The longest permission and role cache validity the server reports, ms.
async fn server_validity_ms(session: &Session) -> Option<u64> {
    let queries = [
        // Cassandra 4.1 and later.
        "SELECT name, value FROM system_views.settings WHERE name IN ('permissions_validity', 'roles_validity')",
        // ScyllaDB.
        "SELECT name, value FROM system.config WHERE name IN ('permissions_validity_in_ms', 'roles_validity_in_ms')",
    ];
    for query in queries {
        let Ok(result) = session.query_unpaged(query, ()).await else { continue };
        let Ok(rows) = ScyllaStore::rows::<(String, Option<String>)>(result) else { continue };
        let longest = rows.iter().filter_map(|(_, value)| value.as_deref().and_then(setting_ms)).max();
        if longest.is_some() {
            return longest;
        }
    }
    None
}

/// 64 random bits from the operating system.
fn random_u64() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StorageError::Backend(format!("no randomness: {e}")))?;
    Ok(u64::from_le_bytes(bytes))
}

/// A fresh password: 128 random bits in hex (nothing to escape in CQL).
fn password() -> Result<String> {
    Ok(format!("{:016x}{:016x}", random_u64()?, random_u64()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_named_by_keyspace_and_epoch_and_read_back() {
        assert_eq!(role_name("dispatch_des_moines", 12), "dispatch_des_moines_e12");
        assert_eq!(epoch_of("dispatch_des_moines", "dispatch_des_moines_e12"), Some(12));
        for other in ["dispatch_des_moines_e", "dispatch_des_moines_e1x", "dispatch_des_moines_x_e3", "dispatch_omaha_e3", "cassandra"] {
            assert_eq!(epoch_of("dispatch_des_moines", other), None, "{other}");
        }
        // A city whose name extends another's is not mistaken for it.
        assert_eq!(epoch_of("dispatch_a", "dispatch_a_b_e3"), None);
    }

    #[test]
    fn server_settings_read_as_milliseconds() {
        for (value, ms) in
            [("500ms", Some(500)), ("2s", Some(2_000)), ("2000", Some(2_000)), ("1m", Some(60_000)), ("\"10000\"", Some(10_000))]
        {
            assert_eq!(setting_ms(value), ms, "{value}");
        }
        for bad in ["", "ms", "fast", "5 parsecs"] {
            assert_eq!(setting_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn passwords_differ_and_are_plain_hex() {
        let (a, b) = (password().unwrap(), password().unwrap());
        assert_ne!(a, b);
        assert!(a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(
            !format!("{:?}", Writer { role: "r".into(), keyspace: "k".into(), password: a.clone() }).contains(&a),
            "Debug hides the password"
        );
    }
}
