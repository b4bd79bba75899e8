//! Bearer keys for mutating endpoints. Read-only GETs stay open.
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// The accepted keys; empty means the API was started open on purpose (`--allow-open`).
#[derive(Clone, Default)]
pub struct ApiKeys(pub Arc<Vec<String>>);

impl ApiKeys {
    pub fn parse(list: &str) -> Self {
        Self(Arc::new(
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn accepts(&self, presented: &str) -> bool {
        // Compare every key in full so the time taken does not reveal a matching prefix.
        self.0.iter().fold(false, |found, key| {
            found | constant_time_eq(key.as_bytes(), presented.as_bytes())
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Proof that the request carries a valid key (or that the API is open). An extractor, not a
/// middleware: it runs only once the route and method matched, so a wrong method answers 405
/// and an unknown path 404 whatever the credentials.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let keys = &state.keys;
        if keys.is_open() {
            return Ok(Authorized);
        }
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            Some(key) if keys.accepts(key.trim()) => Ok(Authorized),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the API key is not valid",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs an `Authorization: Bearer <key>` header with a key from API_KEYS",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_match_exactly() {
        let keys = ApiKeys::parse(" a1 , ,b2");
        assert!(keys.accepts("a1") && keys.accepts("b2"));
        assert!(!keys.accepts("a") && !keys.accepts("a12") && !keys.accepts(""));
        assert!(ApiKeys::parse("").is_open());
    }
}
