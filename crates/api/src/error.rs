//! The API's one error type and its JSON envelope:
//! `{"status":"error","error":{"code":"...","message":"..."}}`.
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use queue_core::{QueueError, StoreError, SubmitError};
use serde_json::json;
use trawl_scrape::error_chain as cause_chain;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A backing service (Redis, PostgreSQL) could not be reached: logged here with its cause
    /// chain, answered 503 without internals.
    pub fn unavailable(err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause_chain(err), "request failed: a backing service is unreachable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backing service is unreachable; try again later",
        )
    }

    /// A failure inside trawl, neither the client's fault nor a dependency's: logged here with
    /// its cause chain, answered 500 without internals.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause_chain(err), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "trawl failed to handle the request; see the server logs",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidSite(message) => {
                ApiError::bad_request(format!("invalid site definition: {message}"))
            }
            err @ StoreError::InvalidSchedule(_) => ApiError::bad_request(err.to_string()),
            other if other.is_unavailable() => ApiError::unavailable(&other),
            other => ApiError::internal(&other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        let reachable = !err.is_unavailable();
        if reachable {
            ApiError::internal(&err)
        } else {
            ApiError::unavailable(&err)
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::Busy { .. } => {
                ApiError::new(StatusCode::CONFLICT, "busy", err.to_string())
            }
            SubmitError::Store(err) => err.into(),
            SubmitError::Queue(err) => err.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_json",
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"status": "error", "error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// `{"status":"success","data":...}`.
pub fn success<T: serde::Serialize>(status: StatusCode, data: T) -> Response {
    let answer = crate::openapi::Success {
        status: crate::openapi::SuccessStatus::Success,
        data,
    };
    (status, Json(answer)).into_response()
}

/// Puts an error response that did not come from `ApiError` (axum's own rejections, the
/// method router's bare 405, the body limit's 413) in the JSON envelope, keeping its status and
/// its text as the message.
pub async fn envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    // The dashboard's own pages answer errors in HTML, for people.
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_html {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        status if status.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let mut enveloped = ApiError::new(status, code, message).into_response();
    // Headers such as `Allow` on a 405 stay.
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            enveloped.headers_mut().insert(name, value.clone());
        }
    }
    enveloped
}
