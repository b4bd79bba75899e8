//! The OpenAPI 3.1 description of the API, generated from the handlers' own annotations and
//! types (utoipa), served at `GET /openapi.json` and committed as `docs/openapi.json`.
//!
//! Every answer is an envelope: `{"status": "success", "data": ...}` or `{"status": "error",
//! "error": {"code", "message"}}`. Request parameters and bodies are typed in full; the `data`
//! of a success is described as a JSON object.
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// A successful answer.
#[derive(Serialize, ToSchema)]
pub struct Success {
    /// Always `success`.
    #[schema(example = "success")]
    pub status: String,
    /// What the endpoint returns.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Any error: axum's own (404, 405, 413, 415, 422) included.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `error`.
    #[schema(example = "error")]
    pub status: String,
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `invalid_request`, `unknown_run`, `unavailable`.
    pub code: String,
    /// What went wrong, for people; names the field for bad input.
    pub message: String,
}

/// `POST /schedules`: a recurring task (`queue_core::store::NewRecurringTask`, whose checks
/// answer 400 naming the field). Exactly one of `cron` and `interval_minutes`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScheduleBody {
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: String,
    /// The kind of the tasks it queues.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,31}$")]
    kind: String,
    /// The kind's queue.
    #[schema(pattern = r"^[a-z][a-z0-9_-]{0,31}$")]
    queue: String,
    /// The task's payload, checked by the kind's worker.
    #[schema(value_type = Option<Object>)]
    payload: Option<serde_json::Value>,
    enabled: Option<bool>,
    #[schema(minimum = 1)]
    interval_minutes: Option<i32>,
    /// Five fields, e.g. `30 0 * * *`.
    cron: Option<String>,
    /// An IANA zone `cron` is read in (default UTC), e.g. `Europe/Paris`.
    time_zone: Option<String>,
    #[schema(minimum = 0, maximum = 100)]
    max_retries: Option<i32>,
}

/// The errors any endpoint may answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// Bad input: a malformed or unknown parameter, named in the message.
    #[response(status = 400)]
    BadRequest(ErrorEnvelope),
    /// A fault of trawl's own (logged with its cause).
    #[response(status = 500)]
    Internal(ErrorEnvelope),
    /// Redis or PostgreSQL cannot be reached.
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
}

/// What a changing endpoint answers without a valid `Authorization: Bearer <key>` (beside
/// `ReadErrors`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NeedsKey {
    /// No key, or a key the API does not know.
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
}

/// The errors of a JSON body: not JSON (400), not `application/json` (415), the wrong shape
/// (422), too large (413).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(status = 413)]
    TooLarge(ErrorEnvelope),
    #[response(status = 415)]
    NotJson(ErrorEnvelope),
    #[response(status = 422)]
    WrongShape(ErrorEnvelope),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "trawl",
        description = "Queue depth, runs and their results, manual scrapes, dead letters, \
                       schedules, postings, the batch pipeline and its models, embeddings, \
                       companies' career pages, and metrics of trawl."
    ),
    components(schemas(Success, ErrorEnvelope, ErrorBody, ScheduleBody, trawl_pipeline::Stage)),
    modifiers(&BearerKey),
    tags(
        (name = "health"), (name = "scrapes"), (name = "queues"), (name = "schedules"),
        (name = "postings"), (name = "pipeline"), (name = "embeddings"), (name = "careers"),
        (name = "metrics")
    )
)]
pub struct ApiDoc;

/// The API key scheme the changing endpoints name.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
