//! Changing things from the dashboard: a login form that takes an API key and sets an
//! HttpOnly, SameSite=Strict session cookie, and buttons (queue pause and resume here; the
//! dead letters' in `dead_ui.rs`) that need that session and its CSRF token. Reading needs
//! neither.
use std::time::Duration;

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::{ApiError, AppState};

const COOKIE_NAME: &str = "trawl_session";
/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A logged-in visitor: the session id and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    pub csrf: String,
}

/// The session of the request, if it carries a live one (None: not logged in).
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE_NAME}=")))
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        let Some(id) = id else {
            return Ok(Self(None));
        };
        let csrf = state.services.queue.session_csrf(&id).await?;
        Ok(Self(csrf.map(|csrf| Session { id, csrf })))
    }
}

fn html_page(status: StatusCode, body: Markup) -> Response {
    (status, crate::dashboard::page("log in", body)).into_response()
}

fn login_form(message: Option<&str>) -> Markup {
    html! {
        h2 { "Log in" }
        p { "Reading needs nothing; the buttons need one of the API's keys (API_KEYS)." }
        @if let Some(message) = message { p.failed { (message) } }
        form method="post" action="/ui/login" {
            input type="password" name="key" placeholder="API key" autocomplete="current-password";
            button type="submit" { "log in" }
        }
    }
}

pub async fn login_page() -> Response {
    html_page(StatusCode::OK, login_form(None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    if !state.keys.is_open() && !state.keys.accepts(form.key.trim()) {
        return html_page(
            StatusCode::UNAUTHORIZED,
            login_form(Some("That is not a valid key.")),
        );
    }
    let id = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let csrf = uuid::Uuid::new_v4().simple().to_string();
    if let Err(err) = state
        .services
        .queue
        .store_session(&id, &csrf, SESSION_TTL)
        .await
    {
        return ApiError::from(err).into_response();
    }
    let cookie = format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    see_other(Some(cookie))
}

/// Back to the dashboard (303), setting or clearing the cookie.
fn see_other(cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// A button's request: a live session, and a form carrying that session's CSRF token. Any
/// other request is refused with a 403 page.
pub struct Button(pub Session);

impl FromRequest<AppState> for Button {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let MaybeSession(session) = MaybeSession::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Form(form) = Form::<CsrfForm>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        match session {
            Some(session) if session.csrf == form.csrf => Ok(Button(session)),
            Some(_) => Err(refused("The form's CSRF token does not match the session.")),
            None => Err(refused("Log in first (/ui/login).")),
        }
    }
}

pub(crate) fn refused(message: &str) -> Response {
    html_page(StatusCode::FORBIDDEN, html! { p.failed { (message) } })
}

pub async fn logout(State(state): State<AppState>, Button(session): Button) -> Response {
    let _ = state.services.queue.drop_session(&session.id).await;
    see_other(Some(format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    )))
}

/// `POST /ui/queues/{queue}/{pause|resume}`: answers the queues panel as it now stands.
pub async fn queue_action(
    State(state): State<AppState>,
    Path((queue, action)): Path<(String, String)>,
    Button(session): Button,
) -> Response {
    if !queue_core::is_queue_name(&queue) {
        return refused("No such queue.");
    }
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return refused("No such action."),
    };
    let done = state.services.queue_named(&queue).set_paused(paused).await;
    if let Err(err) = done {
        return ApiError::from(err).into_response();
    }
    crate::dashboard::queues_panel(&state, Some(&session))
        .await
        .into_response()
}
