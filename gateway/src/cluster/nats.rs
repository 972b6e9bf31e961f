//! Connecting to NATS: reconnects back off with full jitter, so a NATS
//! server restarting is not met by every process at the same instant (the
//! client's default delay has no jitter).

use std::time::Duration;

use async_nats::{Client, ConnectOptions};

/// The longest wait between reconnect attempts.
const MAX_DELAY: Duration = Duration::from_secs(8);

/// The wait before reconnect attempt `attempt`: uniformly random up to an exponential cap.
#[must_use]
pub(crate) fn reconnect_delay(attempt: usize, random: u64) -> Duration {
    let cap = Duration::from_millis(100).saturating_mul(1 << attempt.min(7)).min(MAX_DELAY);
    Duration::from_millis(random % (cap.as_millis() as u64 + 1))
}

/// Connects as `name` to the servers in `url` (comma-separated).
pub async fn connect(url: &str, name: &str) -> anyhow::Result<Client> {
    let servers: Vec<async_nats::ServerAddr> =
        url.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("cluster.nats_url {url:?}: {e}"))?;
    let client = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempt| reconnect_delay(attempt, random()))
        .connect(servers)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
    Ok(client)
}

/// Randomness for jitter: the clock's nanoseconds, spread.
pub(crate) fn random() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_are_jittered_under_a_growing_cap() {
        assert!(reconnect_delay(0, u64::MAX) <= Duration::from_millis(100));
        assert!(reconnect_delay(3, u64::MAX) <= Duration::from_millis(800));
        assert!(reconnect_delay(50, u64::MAX) <= MAX_DELAY);
        let spread: std::collections::HashSet<_> = (0..50u64).map(|r| reconnect_delay(6, r * 97)).collect();
        assert!(spread.len() > 40, "the same attempt waits differently each time");
    }
}
