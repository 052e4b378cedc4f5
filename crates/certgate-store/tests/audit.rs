//! The store's side of the audit log (SPEC §14): retention pruning in the write
//! transaction (on a table pre-filled to the limit) and dry runs leaving no record.

#[allow(unused_macros)]
#[path = "support/backend.rs"]
mod backend;
#[path = "support/pg.rs"]
mod pg;

use certgate_store::audit::RETENTION;
use certgate_store::views::ApiBody;
use certgate_store::Store;

fn url(dir: &std::path::Path) -> String {
    backend::store_url(dir, "certgate.db")
}

fn api(name: &str) -> ApiBody {
    ApiBody {
        name: name.into(),
        base_path: format!("/{name}"),
        upstream: "http://127.0.0.1:1".into(),
    }
}

/// Runs `sql` on the store's database directly (outside the store).
async fn raw(url: &str, sql: &str) -> i64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        v
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        v
    }
}

async fn a_write_prunes_to_the_latest_100000_records() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(dir.path());
    let store = Store::open(&url).await.unwrap();
    // Fill the log to exactly the limit (ids 1..=RETENTION).
    let insert = format!(
        "INSERT INTO audit_log (id, at, actor, action, target, before_json, after_json, generation) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {RETENTION}) \
         SELECT i, 0, 'token', 'filler', 'x:y', 'null', 'null', 1 FROM n"
    );
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), \
             (SELECT MAX(id) FROM audit_log))",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    assert_eq!(raw(&url, "SELECT COUNT(*) FROM audit_log").await, RETENTION);

    store.create_api(&api("a")).await.unwrap();
    assert_eq!(raw(&url, "SELECT COUNT(*) FROM audit_log").await, RETENTION);
    assert_eq!(raw(&url, "SELECT MIN(id) FROM audit_log").await, 2);
    assert_eq!(
        raw(&url, "SELECT MAX(id) FROM audit_log").await,
        RETENTION + 1
    );
    let newest = store.audit_log(1, None).await.unwrap();
    assert_eq!(newest[0].action, "api.create");
    assert_eq!(newest[0].id, RETENTION + 1);
    store.close().await;
}

async fn a_dry_run_leaves_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(dir.path())).await.unwrap();
    let store = store.acting_as("token");
    store.create_api(&api("a")).await.unwrap();
    let before = store.audit_log(1000, None).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].actor, "token");
    let (_, after) = store
        .rehearse(|s| async move { s.create_api(&api("b")).await })
        .await
        .unwrap();
    assert_eq!(after.apis.len(), 2);
    assert_eq!(store.audit_log(1000, None).await.unwrap(), before);
    store.close().await;
}

both_backends!(
    a_write_prunes_to_the_latest_100000_records,
    a_dry_run_leaves_no_record,
);
