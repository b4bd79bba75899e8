//! A process cut off from the network in the middle of a transaction sends no FIN: PostgreSQL
//! would keep its session, and the locks its transaction holds, until it came back. With
//! `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT` set, PostgreSQL ends the session instead.
use std::time::Duration;

use sqlx::PgPool;
use test_support::{TestRedis, database_url};

/// Whether a transaction on a pool built with `timeout_s` still holds its lock after its
/// client has said nothing for two seconds (as a client cut off would).
async fn lock_held_after_silence(db: &PgPool, timeout_s: u64) -> anyhow::Result<bool> {
    let mut config = TestRedis::new().config(&database_url(db));
    config.database_idle_in_transaction_timeout = timeout_s;
    let services = config.services()?;
    let mut tx = services.db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(4242)")
        .execute(&mut *tx)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock(4242)")
        .fetch_one(db)
        .await?;
    let session_alive = sqlx::query("SELECT 1").execute(&mut *tx).await.is_ok();
    assert_eq!(held, session_alive, "the lock goes with the session");
    Ok(held)
}

#[sqlx::test(migrator = "queue_core::store::MIGRATOR")]
async fn a_session_left_in_a_transaction_is_ended_and_its_locks_come_back(
    db: PgPool,
) -> anyhow::Result<()> {
    assert!(
        lock_held_after_silence(&db, 0).await?,
        "with no limit, a silent client keeps its locks"
    );
    assert!(
        !lock_held_after_silence(&db, 1).await?,
        "after DATABASE_IDLE_IN_TRANSACTION_TIMEOUT, PostgreSQL ends the session"
    );
    Ok(())
}
