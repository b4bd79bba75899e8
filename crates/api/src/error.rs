//! The API's one error type and its JSON envelope:
//! `{"status":"error","error":{"code":"...","message":"..."}}`.
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use queue_core::{QueueError, StoreError, SubmitError};
use serde_json::json;

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

    /// A failure inside trawl: logged here with its cause chain, answered without internals.
    pub fn internal(err: &dyn std::error::Error) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backing service failed; see the server logs",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidSite(message) => {
                ApiError::bad_request(format!("invalid site definition: {message}"))
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        ApiError::internal(&err)
    }
}

impl From<SubmitError> for ApiError {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::SiteBusy { .. } => {
                ApiError::new(StatusCode::CONFLICT, "site_busy", err.to_string())
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
pub fn success(status: StatusCode, data: serde_json::Value) -> Response {
    (status, Json(json!({"status": "success", "data": data}))).into_response()
}
