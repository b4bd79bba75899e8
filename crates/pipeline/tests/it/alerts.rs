//! An alert's webhook POST is retried until the receiver takes it, in the background.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use trawl_pipeline::{Alert, AlertKind, Alerts};

#[tokio::test]
async fn an_alert_is_retried_until_the_receiver_takes_it() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let counted = counted.clone();
            async move {
                // The first delivery finds the receiver down.
                match counted.fetch_add(1, Ordering::SeqCst) {
                    0 => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    _ => (axum::http::StatusCode::OK, body["text"].to_string()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let alerts = Alerts::new(Some(url.parse().unwrap()));
    let raised = std::time::Instant::now();
    alerts.raise(Alert {
        text: "Stage EXPORT failed with error: connection timeout".into(),
        alert: AlertKind::StageFailed,
        pipeline: "daily".into(),
        batch_id: uuid::Uuid::new_v4(),
        stage: Some("export".into()),
    });
    assert!(
        raised.elapsed() < Duration::from_millis(100),
        "raising never waits for the webhook"
    );
    test_support::eventually(Duration::from_secs(10), "the second delivery", || async {
        (calls.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "taken once, not posted again"
    );
}
