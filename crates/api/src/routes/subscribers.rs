//! Digest subscribers (seed 004): subscribe (double opt-in: a confirmation mail is queued),
//! the links every mail carries (confirm, unsubscribe — also one-click POST, RFC 8058), a
//! digest now, and the mail ledger.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trawl_digests::mails::Mail;
use trawl_digests::subscribers::Subscriber;
use trawl_digests::{DigestsError, NewSubscriber, subscribers};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    subscriber: Subscriber,
    /// The run that sends the confirmation mail.
    confirmation_run_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Subscribers {
    subscribers: Vec<Subscriber>,
}

#[derive(Serialize, ToSchema)]
pub struct DigestQueued {
    run_id: String,
    subscriber: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Mails {
    mails: Vec<Mail>,
}

use super::{ApiJson, query};
use crate::auth::Authorized;
use crate::openapi::{BodyErrors, ErrorEnvelope, NeedsKey, ReadErrors, Success};
use crate::{ApiError, AppState, success};

impl From<DigestsError> for ApiError {
    fn from(err: DigestsError) -> Self {
        match err {
            DigestsError::Invalid(_) => ApiError::bad_request(err.to_string()),
            DigestsError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            DigestsError::UnknownSubscriber(_) | DigestsError::UnknownToken => {
                ApiError::not_found("subscriber_not_found", err.to_string())
            }
            DigestsError::Submit(err) => err.into(),
            DigestsError::Store(err) => err.into(),
            DigestsError::Db(err) => queue_core::StoreError::from(err).into(),
            other => ApiError::internal(&other),
        }
    }
}

/// Subscribes an address with its filters: it stays `pending` until the link in the
/// confirmation mail (queued now) is followed. A confirmed address is a 409.
#[utoipa::path(
    post, path = "/careers/subscribers", tag = "careers", request_body = NewSubscriber,
    responses(
        (status = 201, description = "Pending: the confirmation mail's run_id", body = Success<Subscribed>),
        (status = 409, description = "Already subscribed", body = ErrorEnvelope),
        ReadErrors, BodyErrors,
    )
)]
pub async fn subscribe(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewSubscriber>,
) -> Result<Response, ApiError> {
    let (subscriber, run_id) = subscribers::subscribe(&state.services, body).await?;
    Ok(success(
        StatusCode::CREATED,
        Subscribed {
            subscriber,
            confirmation_run_id: run_id,
        },
    ))
}

/// Every subscriber and its filters.
#[utoipa::path(
    get, path = "/careers/subscribers", tag = "careers", security(("api_key" = [])),
    responses((status = 200, description = "Every subscriber", body = Success<Subscribers>), ReadErrors, NeedsKey)
)]
pub async fn list(_: Authorized, State(state): State<AppState>) -> Result<Response, ApiError> {
    let all = subscribers::list(&state.services.db).await?;
    Ok(success(StatusCode::OK, Subscribers { subscribers: all }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The token of the mail's link.
    #[param(value_type = uuid::Uuid, required = true)]
    token: Option<String>,
}

fn token(params: Result<Query<TokenQuery>, QueryRejection>) -> Result<Uuid, ApiError> {
    let text = query(params)?
        .token
        .ok_or_else(|| ApiError::bad_request("token: required"))?;
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("token: {text:?} is not a link's token")))
}

/// A one-line HTML page (maud escapes what it shows).
fn page(title: &str, line: &str) -> Response {
    maud::html! {
        (maud::DOCTYPE)
        html {
            head { meta charset="utf-8"; title { (title) } }
            body style="font-family: sans-serif" { h1 { (title) } p { (line) } }
        }
    }
    .into_response()
}

/// The confirmation link: the subscription starts and digests follow its cron.
#[utoipa::path(
    get, path = "/careers/subscribers/confirm", tag = "careers", params(TokenQuery),
    responses(
        (status = 200, description = "Confirmed (an HTML page)", content_type = "text/html", body = String),
        (status = 404, description = "No subscription with this link", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    params: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let subscriber = subscribers::confirm(&state.services.db, token(params)?).await?;
    Ok(page(
        "Subscribed",
        &format!(
            "Job alerts for {} go out on \"{}\" ({}).",
            subscriber.email, subscriber.cron, subscriber.time_zone
        ),
    ))
}

/// The unsubscribe link of every digest (GET from a browser, POST one-click from a mail
/// client): no more digests.
#[utoipa::path(
    get, path = "/careers/unsubscribe", tag = "careers", params(TokenQuery),
    responses(
        (status = 200, description = "Unsubscribed (an HTML page)", content_type = "text/html", body = String),
        (status = 404, description = "No subscription with this link", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    params: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let subscriber = subscribers::unsubscribe(&state.services.db, token(params)?).await?;
    Ok(page(
        "Unsubscribed",
        &format!("{} will get no more job alerts.", subscriber.email),
    ))
}

/// One-click unsubscribe (RFC 8058: `List-Unsubscribe-Post`).
#[utoipa::path(
    post, path = "/careers/unsubscribe", tag = "careers", params(TokenQuery),
    responses(
        (status = 200, description = "Unsubscribed (an HTML page)", content_type = "text/html", body = String),
        (status = 404, description = "No subscription with this link", body = ErrorEnvelope),
        ReadErrors,
    )
)]
pub async fn unsubscribe_one_click(
    state: State<AppState>,
    params: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    unsubscribe(state, params).await
}

/// Sends a subscriber's digest now (its schedule does the same at its cron).
#[utoipa::path(
    post, path = "/careers/subscribers/{id}/digest", tag = "careers",
    params(("id" = i64, Path, description = "The subscriber's id", minimum = 1)),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued: its run_id", body = Success<DigestQueued>),
        (status = 404, description = "No such subscriber", body = ErrorEnvelope),
        (status = 409, description = "A digest of this subscriber is running", body = ErrorEnvelope),
        ReadErrors, NeedsKey,
    )
)]
pub async fn digest(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    if subscribers::get(&state.services.db, id).await?.is_none() {
        return Err(DigestsError::UnknownSubscriber(id).into());
    }
    let run_id = trawl_digests::digest::submit(&state.services, id).await?;
    Ok(success(
        StatusCode::ACCEPTED,
        DigestQueued {
            run_id,
            subscriber: id,
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailsQuery {
    /// How many (default 20, at most 200).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The latest mails: confirmations and digests, their Message-ID, state (prepared, sent,
/// failed), sends tried and the SMTP server's answer.
#[utoipa::path(
    get, path = "/careers/mails", tag = "careers", params(MailsQuery), security(("api_key" = [])),
    responses((status = 200, description = "The latest mails, newest first", body = Success<Mails>), ReadErrors, NeedsKey)
)]
pub async fn mails(
    _: Authorized,
    State(state): State<AppState>,
    params: Result<Query<MailsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let limit = query(params)?.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: expected 1 to 200, got {limit}"
        )));
    }
    let recent = trawl_digests::mails::recent(&state.services.db, limit).await?;
    Ok(success(StatusCode::OK, Mails { mails: recent }))
}
