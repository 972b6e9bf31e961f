//! A city's webhook endpoints over the admin API: list them (with how far
//! each has been delivered), add and remove those not in the configuration,
//! read an endpoint's dead letters, and send them again. Reads for admins
//! and the city's dispatchers; changes for admins, each in the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery, WebhooksView};
use super::{ApiError, ErrorBody, admin, ask, checked_id, mismatched, operator, page_limit};
use crate::server::Gateway;
use crate::webhooks::config::{EndpointConfig, check_name};

/// An endpoint as the API shows it (never its secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookRow {
    /// Its name.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// The events it takes (none: all).
    pub events: Vec<String>,
    /// `config` (the configuration file) or `api` (added here).
    pub source: String,
    /// How many secrets it signs with (two while one is rotated).
    pub secrets: usize,
    /// The outbox position delivered through (none: not started yet).
    pub delivered_through: Option<u64>,
    /// Events logged and not yet delivered, dead-lettered or filtered out.
    pub lag: Option<u64>,
}

/// A city's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// The city.
    pub city: String,
    /// Its endpoints, configured ones first.
    pub endpoints: Vec<WebhookRow>,
}

/// An endpoint to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Its name, unique in the city.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Where events are posted: `http` or `https`; loopback, private and link-local addresses are refused (400) unless allowed in the configuration.
    #[schema(
        min_length = 8,
        max_length = 2000,
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9-]+\.)*[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub url: String,
    /// The secrets it signs with: one, or two while one is rotated; at least 32 characters each.
    #[schema(schema_with = secrets_schema)]
    pub secrets: Vec<String>,
    /// The events it takes (none: all).
    #[serde(default)]
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
}

/// One or two secrets of 32 to 256 printable ASCII characters.
fn secrets_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let secret =
        ObjectBuilder::new().schema_type(Type::String).min_length(Some(32)).max_length(Some(256)).pattern(Some("^[!-~]{32,256}$")).build();
    ArrayBuilder::new().items(secret).min_items(Some(1)).max_items(Some(2)).build()
}

/// Event names, each once.
fn events_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let name = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(crate::protocol::Event::NAMES.to_vec())).build();
    ArrayBuilder::new().items(name).unique_items(true).build()
}

/// Which dead letters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterParams {
    /// The last position of the page before (none: from the first).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// How many at most (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// An event an endpoint did not take.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The event's id (as its `Dispatch-Event-Id`).
    pub id: String,
    /// Its position in the city's outbox: the page cursor.
    pub position: u64,
    /// The job.
    pub job: u64,
    /// The event's place in the job's log.
    pub seq: u64,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, or why it was set aside.
    pub error: String,
    /// Set aside unattempted behind an earlier dead letter of the same job.
    pub behind: bool,
    /// When it was set aside, ms since the Unix epoch.
    pub at: i64,
}

/// A page of an endpoint's dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    /// The city.
    pub city: String,
    /// The endpoint.
    pub endpoint: String,
    /// The dead letters, in the order the events happened.
    pub dead_letters: Vec<DeadLetter>,
    /// The cursor of the next page (`?after=`), when this one is full.
    pub next: Option<u64>,
}

/// What a replay request did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayAsked {
    /// The city.
    pub city: String,
    /// The endpoint.
    pub endpoint: String,
    /// Always `asked`: the endpoint's delivery sends the dead letters in order, removing each delivered one.
    pub status: String,
}

fn configured<'a>(gw: &'a Gateway, city: &'a str) -> impl Iterator<Item = &'a EndpointConfig> {
    gw.config.webhooks.endpoints.iter().filter(move |e| e.serves(city))
}

fn list(gw: &Gateway, city: String, view: WebhooksView) -> WebhookList {
    let cursor = |name: &str| view.cursors.iter().find(|(n, _)| n == name).map(|&(_, p)| p);
    let row = |name: &str, url: &str, events: &[String], source: &str, secrets: usize| {
        let through = cursor(name);
        WebhookRow {
            name: name.to_owned(),
            url: url.to_owned(),
            events: events.to_vec(),
            source: source.to_owned(),
            secrets,
            delivered_through: through,
            lag: through.map(|p| view.settled.saturating_sub(p)),
        }
    };
    let mut endpoints: Vec<WebhookRow> =
        configured(gw, &city).map(|e| row(&e.name, &e.url, &e.events, "config", e.secrets.len())).collect();
    endpoints.extend(view.added.iter().map(|e| row(&e.name, &e.url, &e.events, "api", e.secrets.len())));
    WebhookList { city, endpoints }
}

/// The city's webhook endpoints.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/webhooks",
    tag = "webhooks",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines")),
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn webhooks(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WebhookList>, ApiError> {
    let Path(city) = path?;
    operator(&headers, &gw, &city)?;
    let AdminAnswer::Webhooks(view) = ask(&gw, &city, AdminQuery::Webhooks).await? else { return Err(mismatched()) };
    Ok(Json(list(&gw, city, view)))
}

/// Adds an endpoint (admins only); its deliveries start from the next event.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/webhooks",
    tag = "webhooks",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines")),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Added", body = WebhookList),
        (status = 400, description = "A malformed endpoint, or a URL it may not reach", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn add(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<NewWebhook>, JsonRejection>,
) -> Result<(StatusCode, Json<WebhookList>), ApiError> {
    let Path(city) = path?;
    let by = admin(&headers, &gw, &city)?;
    let Json(new) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let endpoint = EndpointConfig { name: new.name, url: new.url, secrets: new.secrets, events: new.events, cities: vec![city.clone()] };
    shaped(&endpoint)?;
    let guard = gw.config.webhooks.guard().map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))?;
    endpoint.validate(&guard).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let key = dispatch_actors::outbox::endpoint_key(&endpoint.name);
    if let Some(taken) = configured(&gw, &city).find(|e| dispatch_actors::outbox::endpoint_key(&e.name) == key) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("the name {:?} is taken (by configured {:?}): choose another", endpoint.name, taken.name),
        ));
    }
    let query =
        AdminQuery::AddWebhook { admin: by, name: endpoint.name, url: endpoint.url, secrets: endpoint.secrets, events: endpoint.events };
    let AdminAnswer::Webhooks(view) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    Ok((StatusCode::CREATED, Json(list(&gw, city, view))))
}

/// Removes an endpoint added through the API (admins only); configured ones are removed from the configuration.
#[utoipa::path(
    delete,
    path = "/v1/admin/cities/{city}/webhooks/{name}",
    tag = "webhooks",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("name" = String, Path, description = "The endpoint's name", example = "crm")
    ),
    responses(
        (status = 200, description = "Removed", body = WebhookList),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city, or no such endpoint added through the API", body = ErrorBody),
        (status = 409, description = "A configured endpoint: change the configuration", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<WebhookList>, ApiError> {
    let Path((city, name)) = path?;
    let by = admin(&headers, &gw, &city)?;
    check_name(&name).map_err(|e| ApiError(StatusCode::NOT_FOUND, e))?;
    if configured(&gw, &city).any(|e| e.name == name) {
        return Err(ApiError(StatusCode::CONFLICT, format!("{name} is configured: remove it from the configuration file")));
    }
    let AdminAnswer::Webhooks(view) = ask(&gw, &city, AdminQuery::RemoveWebhook { admin: by, name }).await? else {
        return Err(mismatched());
    };
    Ok(Json(list(&gw, city, view)))
}

/// What the document promises of a new endpoint beyond its types: the URL's
/// shape (scheme, host, port, a plain path), printable secrets, events once each.
fn shaped(e: &EndpointConfig) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError(StatusCode::BAD_REQUEST, why));
    let Some(rest) = e.url.strip_prefix("https://").or_else(|| e.url.strip_prefix("http://")) else {
        return bad(format!("url must start with http:// or https://, not {:?}", e.url));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
    // A dotted quad, or a name whose last label has a letter (the URL parser
    // takes a name ending in digits for an IPv4 address).
    let labels: Vec<&str> = host.split('.').collect();
    let name_ok = labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels.last().is_some_and(|l| l.bytes().any(|b| b.is_ascii_alphabetic()));
    let host_ok = host.parse::<std::net::Ipv4Addr>().is_ok() || name_ok;
    let port_ok = port.is_none_or(|p| !p.starts_with('0') && p.parse::<u16>().is_ok_and(|n| n > 0));
    let path_ok = path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b));
    if !(8..=2000).contains(&e.url.len()) || !host_ok || !port_ok || !path_ok {
        return bad(format!("url must be http(s)://host[:port][/path] with a plain path (letters, digits, . _ ~ / -), not {:?}", e.url));
    }
    if e.secrets.iter().any(|s| s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic())) {
        return bad("secrets are 32 to 256 printable ASCII characters, no spaces".into());
    }
    if e.events.iter().enumerate().any(|(i, name)| e.events[..i].contains(name)) {
        return bad("each event is named once".into());
    }
    Ok(())
}

/// Whether `name` is an endpoint of `city`: configured, or added through the API.
async fn exists(gw: &Gateway, city: &str, name: &str) -> Result<(), ApiError> {
    // A name no endpoint can have names none.
    check_name(name).map_err(|e| ApiError(StatusCode::NOT_FOUND, e))?;
    if configured(gw, city).any(|e| e.name == name) {
        return Ok(());
    }
    let AdminAnswer::Webhooks(view) = ask(gw, city, AdminQuery::Webhooks).await? else { return Err(mismatched()) };
    if view.added.iter().any(|e| e.name == name) {
        Ok(())
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no webhook endpoint {name} in {city}")))
    }
}

/// An endpoint's dead letters, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/webhooks/{name}/dead-letters",
    tag = "webhooks",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("name" = String, Path, description = "The endpoint's name", example = "crm"),
        DeadLetterParams
    ),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 400, description = "A malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city or endpoint", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn dead_letters(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<DeadLetterParams>, QueryRejection>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let Path((city, name)) = path?;
    let Query(p) = params?;
    let after = p.after.map(|a| checked_id(a, "after")).transpose()?;
    operator(&headers, &gw, &city)?;
    let limit = page_limit(p.limit)?;
    exists(&gw, &city, &name).await?;
    let query = AdminQuery::DeadLetters { name: name.clone(), after, limit };
    let AdminAnswer::DeadLetters(letters) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    let dead_letters: Vec<DeadLetter> = letters
        .into_iter()
        .map(|l| DeadLetter {
            id: crate::protocol::webhook::event_id(&city, l.event.job.0, l.event.seq),
            position: l.event.position,
            job: l.event.job.0,
            seq: l.event.seq,
            attempts: l.attempts,
            error: l.error,
            behind: l.behind,
            at: l.at.0,
        })
        .collect();
    let next = dead_letters.last().map(|l| l.position).filter(|_| dead_letters.len() == limit as usize);
    Ok(Json(DeadLetterPage { city, endpoint: name, dead_letters, next }))
}

/// Sends an endpoint's dead letters again, in order (admins only): each delivered one is removed; a job whose letter fails again keeps it and its later ones.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/webhooks/{name}/replay",
    tag = "webhooks",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("name" = String, Path, description = "The endpoint's name", example = "crm")
    ),
    responses(
        (status = 202, description = "Asked of the endpoint's delivery", body = ReplayAsked),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or endpoint", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn replay(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(StatusCode, Json<ReplayAsked>), ApiError> {
    let Path((city, name)) = path?;
    let by = admin(&headers, &gw, &city)?;
    exists(&gw, &city, &name).await?;
    let AdminAnswer::ReplayAsked = ask(&gw, &city, AdminQuery::Replay { admin: by, name: name.clone() }).await? else {
        return Err(mismatched());
    };
    Ok((StatusCode::ACCEPTED, Json(ReplayAsked { city, endpoint: name, status: "asked".into() })))
}
