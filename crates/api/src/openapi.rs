//! The OpenAPI 3.1 description of the API, generated from the handlers' own annotations and
//! types (utoipa), served at `GET /openapi.json` and committed as `docs/openapi.json`.
//!
//! Every answer is an envelope: `{"status": "success", "data": ...}` or `{"status": "error",
//! "error": {"code", "message"}}`. Request parameters, bodies and each answer's `data` are typed
//! in full: handlers answer the very types described here.
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// A successful answer: `data` is the endpoint's own.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    pub status: SuccessStatus,
    pub data: T,
}

/// Always `success`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuccessStatus {
    Success,
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
    components(schemas(ErrorEnvelope, ErrorBody, trawl_pipeline::Stage)),
    modifiers(&BearerKey),
    tags(
        (name = "health"), (name = "runs"), (name = "scrapes"), (name = "queues"), (name = "schedules"),
        (name = "postings"), (name = "pipeline"), (name = "embeddings"), (name = "careers"),
        (name = "metrics")
    )
)]
pub struct ApiDoc;

/// The description `GET /openapi.json` serves: the generated one with the rules that tie
/// several fields together, which the derives cannot state, added as JSON Schema keywords, so
/// that a client (and schemathesis) knows every request the API refuses.
pub fn described(generated: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut spec = serde_json::to_value(generated).expect("the OpenAPI description serializes");
    split_nullable_formats(&mut spec);
    for (schema, keyword, rule) in cross_field_rules() {
        let target = spec
            .pointer_mut(&format!("/components/schemas/{schema}"))
            .and_then(serde_json::Value::as_object_mut)
            .unwrap_or_else(|| panic!("no schema {schema} to add `{keyword}` to"));
        target.insert(keyword.to_owned(), rule);
    }
    // A recurring task's kind is one trawl runs, its queue one of the kinds' (queue-core, where
    // the schema is derived, knows no kind).
    let catalog = trawl_kinds::catalog();
    for (field, values) in [("kind", catalog.kinds()), ("queue", catalog.queues())] {
        spec.pointer_mut(&format!(
            "/components/schemas/NewRecurringTask/properties/{field}"
        ))
        .and_then(serde_json::Value::as_object_mut)
        .unwrap_or_else(|| panic!("NewRecurringTask has a {field}"))
        .insert("enum".to_owned(), values.into());
    }
    spec
}

/// `{"type": [T, "null"], "format": F}` (utoipa's optional string or number) becomes
/// `{"oneOf": [{"type": T, "format": F}, {"type": "null"}]}`, the same set of values, spelled
/// so that generators and validators apply format F to a T only (schemathesis uses a custom
/// format only for a plain string, and reads a null as breaking `format: double`).
fn split_nullable_formats(value: &mut serde_json::Value) {
    use serde_json::{Value, json};
    match value {
        Value::Object(object) => {
            let nullable = match object.get("type") {
                Some(Value::Array(types)) if types.len() == 2 && types[1] == "null" => {
                    Some(types[0].clone())
                }
                _ => None,
            };
            if let Some(kind) = nullable
                && let Some(format) = object.remove("format")
            {
                object.remove("type");
                object.insert(
                    "oneOf".to_owned(),
                    json!([{"type": kind, "format": format}, {"type": "null"}]),
                );
            }
            object.values_mut().for_each(split_nullable_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(split_nullable_formats),
        _ => {}
    }
}

/// (schema, keyword, rule). A field that is null counts as absent, as it does for serde.
fn cross_field_rules() -> [(&'static str, &'static str, serde_json::Value); 3] {
    use serde_json::json;
    [
        // `is_remote: true` means the location "Remote".
        (
            "ScrapeBody",
            "not",
            json!({"required": ["location", "is_remote"],
                   "properties": {"location": {"type": "string"}, "is_remote": {"const": true}}}),
        ),
        // A recurring task runs on an interval or on a cron expression: exactly one.
        (
            "NewRecurringTask",
            "oneOf",
            // (`time_zone` is the cron expression's.)
            json!([
                {"required": ["interval_minutes"],
                 "properties": {"interval_minutes": {"type": "integer"}, "cron": {"type": "null"},
                                "time_zone": {"type": "null"}}},
                {"required": ["cron"],
                 "properties": {"cron": {"type": "string"}, "interval_minutes": {"type": "null"}}},
            ]),
        ),
        // A company is checked on an interval or on a cron expression, not both.
        (
            "NewCompany",
            "not",
            json!({"required": ["interval_minutes", "cron"],
                   "properties": {"interval_minutes": {"type": "integer"},
                                  "cron": {"type": "string"}}}),
        ),
    ]
}

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
