//! all-MiniLM-L6-v2 from the folder `deploy/model.sh` fills (the test command runs it first).
use trawl_embedder::{DIMENSIONS, Embedder, EmbedderChoice, EmbedderConfig, MiniLm};

fn model() -> MiniLm {
    let dir = std::env::var_os("EMBEDDINGS_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(trawl_embedder::default_model_dir);
    MiniLm::load(&dir, 256, 16).unwrap_or_else(|e| {
        panic!("the model is fetched by the test command (deploy/model.sh): {e}")
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn related_texts_are_close_and_unrelated_ones_far() {
    let model = model();
    let texts: Vec<String> = [
        "python web developer",
        "Backend engineer, Python, Flask, SQL",
        "Registered nurse for the night shift in a hospital ward",
    ]
    .map(str::to_owned)
    .to_vec();
    let vectors = model.embed(&texts).await.unwrap();
    assert!(vectors.iter().all(|v| v.len() == DIMENSIONS));
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
    }
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(related > 0.5, "{related}");
    assert!(unrelated < 0.2, "{unrelated}");
}

#[tokio::test]
async fn a_batch_gives_what_single_texts_give() {
    // Padding in a batch must not change a text's vector (mean over real tokens only).
    let model = model();
    let short = "Rust".to_owned();
    let long = "Senior platform engineer building internal tooling with Go, Terraform and Kubernetes on AWS".to_owned();
    let batch = model.embed(&[short.clone(), long.clone()]).await.unwrap();
    let alone = model.embed(&[short]).await.unwrap();
    assert!(cosine(&batch[0], &alone[0]) > 0.9999);
}

#[tokio::test]
async fn any_script_empty_and_huge_texts_give_finite_vectors() {
    let model = model();
    let texts: Vec<String> = vec![
        "Ingénieur logiciel à Paris".into(),
        "ソフトウェアエンジニア 東京".into(),
        "مهندس برمجيات في دبي".into(),
        "Программист 1С".into(),
        "🦀🚀 ship it".into(),
        "\u{200b}\u{0007}".into(),
        "word ".repeat(50_000),
    ];
    let vectors = model.embed(&texts).await.unwrap();
    let checked = trawl_embedder::checked(vectors, texts.len()).unwrap();
    for (text, item) in texts.iter().zip(checked) {
        assert!(
            item.is_ok(),
            "{:?}: {item:?}",
            text.chars().take(20).collect::<String>()
        );
    }
    // The long text was cut at the model's window.
    let counts = model.token_counts(&texts[6..]).unwrap();
    assert_eq!(counts, [256]);
}

#[test]
fn a_wrong_configuration_names_its_variable() {
    let base = EmbedderConfig {
        embedder: EmbedderChoice::Minilm,
        embeddings_model_dir: Some("/nonexistent/model".into()),
        embeddings_max_tokens: 256,
        embeddings_url: None,
        embeddings_model: None,
        embeddings_api_key: None,
        embeddings_batch: 32,
        embeddings_concurrency: 4,
        embeddings_timeout: 60,
        embeddings_retries: 3,
    };
    let error = |config: &EmbedderConfig| config.build().err().expect("refused").to_string();
    assert!(
        error(&base).starts_with("EMBEDDINGS_MODEL_DIR: "),
        "{}",
        error(&base)
    );
    let openai = EmbedderConfig {
        embedder: EmbedderChoice::Openai,
        ..base.clone()
    };
    assert!(error(&openai).starts_with("EMBEDDINGS_URL: "));
    let bad_url = EmbedderConfig {
        embeddings_url: Some("ftp://x".into()),
        ..openai.clone()
    };
    assert!(error(&bad_url).starts_with("EMBEDDINGS_URL: must be http"));
    let no_model = EmbedderConfig {
        embeddings_url: Some("http://127.0.0.1:1/v1".into()),
        ..openai.clone()
    };
    assert!(error(&no_model).starts_with("EMBEDDINGS_MODEL: "));
    let batch = EmbedderConfig {
        embeddings_batch: 0,
        ..base.clone()
    };
    assert!(error(&batch).starts_with("EMBEDDINGS_BATCH: "));
    let tokens = EmbedderConfig {
        embeddings_max_tokens: 100_000,
        embeddings_model_dir: None,
        ..base
    };
    assert!(error(&tokens).starts_with("EMBEDDINGS_MAX_TOKENS: "));
}

/// Our BERT pass (unpadded, own kernels) against candle's `BertModel` on the same weights,
/// padded as a batch the way candle runs it: the vectors must agree.
#[test]
fn our_pass_gives_what_candles_bert_gives() {
    let dir = std::env::var_os("EMBEDDINGS_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(trawl_embedder::default_model_dir);
    let texts: Vec<String> = vec![
        "Rust".into(),
        "Senior platform engineer building internal tooling with Go, Terraform and Kubernetes"
            .into(),
        "Ingénieur logiciel à Paris, ソフトウェアエンジニア 東京".into(),
        String::new(),
        "nurse ".repeat(400),
    ];
    let ours = model().embed_blocking(&texts).unwrap();
    let reference = trawl_embedder::CandleBert::load(&dir, 256)
        .unwrap()
        .embed_blocking(&texts)
        .unwrap();
    for ((text, a), b) in texts.iter().zip(&ours).zip(&reference) {
        let largest = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            cosine(a, b) > 0.99999 && largest < 1e-4,
            "{:?}: cosine {}, largest difference {largest}",
            text.chars().take(20).collect::<String>(),
            cosine(a, b)
        );
    }
}

#[test]
fn a_window_past_the_models_positions_is_refused_naming_its_variable() {
    let dir = std::env::var_os("EMBEDDINGS_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(trawl_embedder::default_model_dir);
    let err = MiniLm::load(&dir, 513, 16)
        .err()
        .expect("513 > 512 positions");
    let text = err.to_string();
    assert!(
        text.contains("EMBEDDINGS_MAX_TOKENS") && text.contains("512"),
        "{text}"
    );
}
