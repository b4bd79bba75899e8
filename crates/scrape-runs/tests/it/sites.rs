use queue_core::StoreError;
use sqlx::PgPool;
use trawl_scrape_runs::sites::{self, NewSite};

fn site(name: &str, payload: serde_json::Value) -> NewSite {
    test_support::unpaused_site(name, payload, 0)
}

/// Issue 7, finding 1's sibling at the CLI's door: a NUL in a site's name or definition is
/// refused naming what is wrong, before PostgreSQL sees it.
#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_site_with_a_nul_is_refused_as_invalid(db: PgPool) -> anyhow::Result<()> {
    let board = serde_json::json!({"source": "demo_board", "base_url": "http://127.0.0.1:1/"});
    let err = sites::upsert_site(&db, &site("demo\0", board.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidSite(m) if m == "site_name contains a NUL character"),
        "{err:?}"
    );
    let bad = serde_json::json!({"source": "demo_board", "base_url": "http://127.0.0.1:1/",
        "search_term": "a\u{0}b"});
    let err = sites::upsert_site(&db, &site("demo", bad))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidSite(m) if m.contains("NUL")),
        "{err:?}"
    );
    sites::upsert_site(&db, &site("demo", board)).await?;
    Ok(())
}
