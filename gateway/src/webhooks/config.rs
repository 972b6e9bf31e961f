//! The `[webhooks]` section: the endpoints events are posted to, and how
//! deliveries are retried.
//!
//! ```toml
//! [webhooks]
//! max_attempts = 8          # then the event goes to the endpoint's dead letters
//! backoff_first_ms = 1000   # the pause after the first failure, doubling up to…
//! backoff_max_ms = 300000   # …this, each with jitter
//! timeout_ms = 10000        # one request's time limit
//! concurrency = 8           # jobs delivered at once per endpoint (a job's events stay in order)
//! allow_networks = []       # private ranges an endpoint may reach, e.g. ["10.1.0.0/16"]
//! [[webhooks.endpoints]]
//! name = "crm"
//! url = "https://hooks.example.com/dispatch"
//! secrets = ["whsec_…"]     # at least 32 bytes each; two while one is rotated
//! events = ["offered", "accepted", "chat"]   # none: every event
//! cities = ["des-moines"]   # none: every city
//! ```

use serde::{Deserialize, Serialize};

use super::ssrf::Guard;

/// The shortest secret taken, bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest endpoint name.
const MAX_NAME: usize = 64;

/// One endpoint as configured.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Its name: 1 to 64 of `a-z`, `0-9`, `-` and `_`, unique.
    pub name: String,
    /// Where events are posted (`http` or `https`).
    pub url: String,
    /// The secrets requests are signed with: one, or two while one is rotated.
    pub secrets: Vec<String>,
    /// The events it takes, by name (`offered`, `chat`, …); none: every event.
    #[serde(default)]
    pub events: Vec<String>,
    /// The cities whose events it takes; none: every city.
    #[serde(default)]
    pub cities: Vec<String>,
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("events", &self.events)
            .field("cities", &self.cities)
            .finish()
    }
}

impl EndpointConfig {
    /// Whether it takes events of `city`.
    #[must_use]
    pub fn serves(&self, city: &str) -> bool {
        self.cities.is_empty() || self.cities.iter().any(|c| c == city)
    }

    /// Whether it takes the event named `kind`.
    #[must_use]
    pub fn takes(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind)
    }

    /// Checks the name, the URL (against `guard`), the secrets and the filters.
    pub fn validate(&self, guard: &Guard) -> Result<(), String> {
        check_name(&self.name)?;
        guard.check_url(&self.url).map_err(|e| format!("webhook {}: {e}", self.name))?;
        if self.secrets.is_empty() || self.secrets.len() > 2 {
            return Err(format!("webhook {}: one secret, or two while one is rotated, not {}", self.name, self.secrets.len()));
        }
        if let Some(short) = self.secrets.iter().find(|s| s.len() < MIN_SECRET_BYTES) {
            return Err(format!(
                "webhook {}: a secret of {} bytes is too short to sign with: use at least {MIN_SECRET_BYTES} random bytes",
                self.name,
                short.len()
            ));
        }
        if let Some(unknown) = self.events.iter().find(|e| !crate::protocol::Event::NAMES.contains(&e.as_str())) {
            return Err(format!(
                "webhook {}: no event is named {unknown:?}; events are {}",
                self.name,
                crate::protocol::Event::NAMES.join(", ")
            ));
        }
        Ok(())
    }
}

/// Checks an endpoint's name: 1 to 64 of `a-z`, `0-9`, `-` and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    let fits = (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fits { Ok(()) } else { Err(format!("a webhook's name is 1 to {MAX_NAME} of a-z, 0-9, '-' and '_', not {name:?}")) }
}

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSection {
    /// The endpoints.
    pub endpoints: Vec<EndpointConfig>,
    /// Attempts of one event before it goes to the dead letters.
    pub max_attempts: u32,
    /// The pause after the first failed attempt, ms; it doubles with each, up to `backoff_max_ms`.
    pub backoff_first_ms: u64,
    /// The longest pause between attempts, ms.
    pub backoff_max_ms: u64,
    /// One request's time limit, ms.
    pub timeout_ms: u64,
    /// Jobs whose events are delivered at once, per endpoint.
    pub concurrency: usize,
    /// Networks (CIDR) an endpoint may resolve to although they are loopback,
    /// private or link-local, e.g. `["127.0.0.0/8"]` for a receiver on this machine.
    pub allow_networks: Vec<String>,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            max_attempts: 8,
            backoff_first_ms: 1_000,
            backoff_max_ms: 300_000,
            timeout_ms: 10_000,
            concurrency: 8,
            allow_networks: Vec::new(),
        }
    }
}

impl WebhooksSection {
    /// The SSRF guard of `allow_networks`.
    pub fn guard(&self) -> Result<Guard, String> {
        Guard::allowing(&self.allow_networks)
    }

    /// Checks every endpoint and the limits; `cities`: the configured ones.
    pub fn validate(&self, cities: &[String]) -> anyhow::Result<()> {
        let guard = self.guard().map_err(anyhow::Error::msg)?;
        anyhow::ensure!((1..=100).contains(&self.max_attempts), "webhooks.max_attempts must be 1 to 100, not {}", self.max_attempts);
        anyhow::ensure!(
            self.backoff_first_ms > 0 && self.backoff_first_ms <= self.backoff_max_ms,
            "webhooks: backoff_first_ms must be positive and at most backoff_max_ms"
        );
        anyhow::ensure!((100..=120_000).contains(&self.timeout_ms), "webhooks.timeout_ms must be 100 to 120000, not {}", self.timeout_ms);
        anyhow::ensure!((1..=256).contains(&self.concurrency), "webhooks.concurrency must be 1 to 256, not {}", self.concurrency);
        let mut keys = std::collections::HashMap::new();
        for endpoint in &self.endpoints {
            endpoint.validate(&guard).map_err(anyhow::Error::msg)?;
            if let Some(unknown) = endpoint.cities.iter().find(|c| !cities.contains(c)) {
                anyhow::bail!("webhook {}: no city {unknown} is configured", endpoint.name);
            }
            let key = dispatch_actors::outbox::endpoint_key(&endpoint.name);
            if let Some(other) = keys.insert(key, endpoint.name.clone()) {
                anyhow::bail!("webhooks {other} and {}: the same name twice, or names whose keys collide: rename one", endpoint.name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> EndpointConfig {
        EndpointConfig {
            name: "crm".into(),
            url: url.into(),
            secrets: vec!["s".repeat(32)],
            events: vec!["offered".into()],
            cities: vec!["omaha".into()],
        }
    }

    #[test]
    fn endpoints_are_checked_with_a_reason() {
        let cities = vec!["omaha".to_owned()];
        let ok = WebhooksSection { endpoints: vec![endpoint("https://93.184.215.14/hook")], ..WebhooksSection::default() };
        ok.validate(&cities).unwrap();
        type Change = Box<dyn Fn(&mut EndpointConfig)>;
        let cases: [(Change, &str); 7] = [
            (Box::new(|e| e.name = "CRM!".into()), "name"),
            (Box::new(|e| e.secrets = vec!["short".into()]), "too short"),
            (Box::new(|e| e.secrets = vec![]), "one secret"),
            (Box::new(|e| e.events = vec!["offerd".into()]), "offerd"),
            (Box::new(|e| e.cities = vec!["paris".into()]), "paris"),
            (Box::new(|e| e.url = "http://127.0.0.1:9/hook".into()), "loopback"),
            (Box::new(|e| e.url = "ftp://93.184.215.14/".into()), "http"),
        ];
        for (change, expected) in cases {
            let mut bad = ok.clone();
            change(&mut bad.endpoints[0]);
            let error = bad.validate(&cities).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} should mention {expected}");
        }
        let twice = WebhooksSection { endpoints: vec![ok.endpoints[0].clone(), ok.endpoints[0].clone()], ..ok.clone() };
        assert!(twice.validate(&cities).unwrap_err().to_string().contains("twice"));
        let allowed = WebhooksSection {
            endpoints: vec![endpoint("http://127.0.0.1:9/hook")],
            allow_networks: vec!["127.0.0.0/8".into()],
            ..WebhooksSection::default()
        };
        allowed.validate(&cities).unwrap();
        assert!(!format!("{:?}", ok.endpoints[0]).contains("ssss"), "secrets are not logged");
    }
}
