use std::time::{Duration, Instant};

use trawl_embedder::{DIMENSIONS, EmbedError, Embedder, HttpEmbedder, HttpSettings, checked};

use test_support::embeddings::{Answer, EmbeddingsFixture as Fixture};

fn client(fixture: &Fixture, batch_size: usize, retries: u32) -> HttpEmbedder {
    HttpEmbedder::new(HttpSettings {
        url: fixture.url.parse().unwrap(),
        model: "fixture-model".into(),
        api_key: Some("sk-test".into()),
        batch_size,
        concurrency: 3,
        timeout: Duration::from_secs(5),
        retries,
        retry_base: Duration::from_millis(20),
    })
    .unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("posting number {i}")).collect()
}

#[tokio::test]
async fn batches_in_order_with_concurrency_and_the_key() {
    let fixture = Fixture::start().await;
    let embedder = client(&fixture, 4, 0);
    let input = texts(10);
    let vectors = embedder.embed(&input).await.unwrap();
    assert_eq!(vectors.len(), 10);
    // The fixture answers each request's items in reverse; the client restores the order.
    for (text, vector) in input.iter().zip(&vectors) {
        assert_eq!(vector, &trawl_embedder::HashingEmbedder::vector(text));
    }
    let mut sizes: Vec<usize> = fixture.requests().iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, [2, 4, 4]);
    let script = fixture.script.lock().unwrap();
    assert!(
        script
            .bearer
            .iter()
            .all(|b| b.as_deref() == Some("Bearer sk-test"))
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_5xx_is_retried() {
    let fixture = Fixture::start().await;
    fixture.then(Answer::TooMany {
        retry_after_secs: 1,
    });
    fixture.then(Answer::ServerError);
    let embedder = client(&fixture, 8, 3);
    let started = Instant::now();
    let vectors = embedder.embed(&texts(2)).await.unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(fixture.requests().len(), 3);
}

#[tokio::test]
async fn errors_say_whether_to_retry() {
    let fixture = Fixture::start().await;
    fixture.then(Answer::ServerError);
    fixture.then(Answer::ServerError);
    let error = client(&fixture, 8, 1).embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&error, EmbedError::Unavailable { message, .. } if message.contains("500")),
        "{error}"
    );
    assert!(error.is_retryable());

    fixture.then(Answer::BadRequest);
    let error = client(&fixture, 8, 3).embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&error, EmbedError::Refused(m) if m.contains("unknown model")),
        "{error}"
    );
    assert!(!error.is_retryable());

    fixture.then(Answer::NotJson);
    let error = client(&fixture, 8, 3).embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&error, EmbedError::Malformed(m) if m.contains("proxy error")),
        "{error}"
    );

    // Nobody listening.
    let closed = HttpEmbedder::new(HttpSettings {
        url: format!("http://127.0.0.1:{}/v1", test_support::procs::free_port())
            .parse()
            .unwrap(),
        model: "m".into(),
        api_key: None,
        batch_size: 8,
        concurrency: 1,
        timeout: Duration::from_secs(2),
        retries: 0,
        retry_base: Duration::from_millis(10),
    })
    .unwrap();
    assert!(closed.embed(&texts(1)).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn wrong_width_and_nan_fail_their_text_only() {
    let fixture = Fixture::start().await;
    let input = vec![
        "fine".to_owned(),
        "WRONGDIM".to_owned(),
        "NANVEC".to_owned(),
    ];
    let raw = client(&fixture, 8, 0).embed(&input).await.unwrap();
    let items = checked(raw, 3).unwrap();
    assert_eq!(items[0].as_ref().unwrap().len(), DIMENSIONS);
    assert!(
        items[1]
            .as_ref()
            .unwrap_err()
            .contains("wrong dimension: 3")
    );
    assert!(
        items[2]
            .as_ref()
            .unwrap_err()
            .contains("non-finite value at 5")
    );
}
