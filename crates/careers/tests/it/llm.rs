//! The LLM path against a local OpenAI-compatible stub: used only when the rules find nothing,
//! its good answers kept, its malformed and hallucinated ones discarded with the reason.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use trawl_careers::llm::{Llm, LlmSettings};
use trawl_careers::read_experience;

/// A chat endpoint answering `content` to every request; counts requests.
async fn stub(content: &'static str) -> (Llm, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<serde_json::Value>| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                assert_eq!(body["response_format"]["type"], "json_object");
                Json(serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let llm = Llm::new(LlmSettings {
        url: format!("http://{addr}/v1"),
        model: "stub".into(),
        api_key: Some("k".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    (llm, calls)
}

const POSTING: &str = "Platform lead. You have spent a decade running production systems.";

#[tokio::test]
async fn a_good_answer_is_kept_and_marked_as_the_llms() {
    let (llm, calls) =
        stub(r#"{"min_years": 10, "max_years": null, "quote": "spent a decade running production systems"}"#)
            .await;
    let reading = read_experience(Some(&llm), POSTING).await;
    assert_eq!((reading.method, reading.min_years), ("llm", Some(10.0)));
    // The rules answer first: the endpoint is not asked.
    let reading = read_experience(Some(&llm), "5+ years of experience in Go").await;
    assert_eq!((reading.method, reading.min_years), ("rules", Some(5.0)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_and_hallucinated_answers_are_discarded_with_the_reason() {
    for (content, why) in [
        ("I think about ten years.", "not the JSON"),
        (
            r#"{"min_years": 10, "quote": "10+ years of Kubernetes"}"#,
            "does not appear",
        ),
        (r#"{"min_years": 99, "quote": "a decade"}"#, "out of range"),
    ] {
        let (llm, _) = stub(content).await;
        let reading = read_experience(Some(&llm), POSTING).await;
        assert_eq!(
            (reading.method, reading.min_years),
            ("none", None),
            "{content}"
        );
        assert!(
            reading.note.as_deref().unwrap_or_default().contains(why),
            "{content}: {:?}",
            reading.note
        );
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_recorded_reason_not_a_silent_gap() {
    let llm = Llm::new(LlmSettings {
        url: "http://127.0.0.1:1/v1".into(),
        model: "stub".into(),
        api_key: None,
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let reading = read_experience(Some(&llm), POSTING).await;
    assert_eq!(reading.method, "none");
    assert!(reading.note.unwrap().contains("llm request failed"));
}
