//! The dashboard's dead-letters panel: every queue's dead letters with the reason, and, for a
//! logged-in visitor, buttons to retry or delete one entry or every entry of a queue.
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use crate::dashboard::{csrf_vals, when};
use crate::session::{Button, MaybeSession, Session, refused};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/dead", get(dead))
        .route("/ui/dead/{queue}/{action}", post(dead_sweep))
        .route("/ui/dead/{queue}/{id}/{action}", post(dead_action))
}

async fn dead(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
) -> Result<Markup, ApiError> {
    dead_panel(&state, session.as_ref()).await
}

/// Every queue's dead letters, with retry and delete buttons for a logged-in visitor.
async fn dead_panel(state: &AppState, session: Option<&Session>) -> Result<Markup, ApiError> {
    let mut letters = Vec::new();
    let mut with_letters = Vec::new();
    for queue in state.services.known_queues().await? {
        let name = queue.keys().queue_name().to_owned();
        let listed = queue.dead_letters(50).await?;
        if !listed.is_empty() {
            with_letters.push(name.clone());
        }
        letters.extend(listed.into_iter().map(|letter| (name.clone(), letter)));
    }
    Ok(html! {
        @if letters.is_empty() { p { "none" } } @else {
            @if let Some(session) = session {
                @for queue in &with_letters {
                    p data-dead-queue=(queue) {
                        "Every dead letter of " (queue) ": "
                        button hx-post=(format!("/ui/dead/{queue}/retry-all"))
                            hx-vals=(csrf_vals(session)) hx-target="#dead" { "retry all" }
                        " "
                        button hx-post=(format!("/ui/dead/{queue}/delete-all"))
                            hx-confirm=(format!("Drop every dead letter of {queue} for good?"))
                            hx-vals=(csrf_vals(session)) hx-target="#dead" { "delete all" }
                    }
                }
            }
            table {
                tr { th { "queue" } th { "id" } th { "failed at" } th { "reason" } th { "task" } th {} }
                @for (queue, letter) in &letters {
                    tr data-dead=(letter.id) {
                        td { (queue) } td { (letter.id) } td { (when(Some(letter.failed_at))) }
                        td { (letter.reason) } td { code { (letter.task) } }
                        td {
                            @if let Some(session) = session {
                                @for action in ["retry", "delete"] {
                                    button hx-post=(format!("/ui/dead/{queue}/{}/{action}", letter.id))
                                        hx-vals=(csrf_vals(session)) hx-target="#dead" { (action) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `POST /ui/dead/{queue}/{retry-all|delete-all}`: every entry of the queue's dead-letter list;
/// answers the dead-letters panel as it now stands.
pub async fn dead_sweep(
    State(state): State<AppState>,
    Path((queue, action)): Path<(String, String)>,
    Button(session): Button,
) -> Response {
    let Some(queue) = dead_letters_of(&state, &queue) else {
        return refused("No such queue.");
    };
    let done = match action.as_str() {
        "retry-all" => queue.retry_all_dead_letters().await.map(|_| ()),
        "delete-all" => queue.delete_all_dead_letters().await.map(|_| ()),
        _ => return refused("No such action."),
    };
    dead_panel_after(&state, &session, done).await
}

/// `POST /ui/dead/{queue}/{id}/{retry|delete}`: answers the dead-letters panel as it now stands.
pub async fn dead_action(
    State(state): State<AppState>,
    Path((queue, id, action)): Path<(String, String, String)>,
    Button(session): Button,
) -> Response {
    let Some(queue) = dead_letters_of(&state, &queue) else {
        return refused("No such queue.");
    };
    let done = match action.as_str() {
        "retry" => queue.retry_dead_letter(&id).await.map(|_| ()),
        "delete" => queue.delete_dead_letter(&id).await.map(|_| ()),
        _ => return refused("No such action."),
    };
    dead_panel_after(&state, &session, done).await
}

/// The queue a dead-letter button names; None for a name that is not a queue's.
fn dead_letters_of(state: &AppState, name: &str) -> Option<queue_core::Queue> {
    queue_core::is_queue_name(name).then(|| state.services.queue_named(name))
}

/// The dead-letters panel as it stands after a button's action, or the action's error.
async fn dead_panel_after(
    state: &AppState,
    session: &Session,
    done: Result<(), queue_core::QueueError>,
) -> Response {
    if let Err(err) = done {
        return ApiError::from(err).into_response();
    }
    dead_panel(state, Some(session)).await.into_response()
}
