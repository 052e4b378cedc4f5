//! SPEC §2's reload contract on a real node: a write is acknowledged only when it is live.
//! When the node cannot apply the store's configuration (here: a DN pattern written into
//! the database behind the admin API's back, which the data plane refuses to compile), the
//! write answers 503 `reload_failed`, `/readyz` answers 503 until the node catches up, and
//! the node keeps serving its previous configuration.

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::json;

/// Runs one SQL statement on the node's SQLite file, as another writer would.
fn sql(db: &std::path::Path, statement: &str) {
    let url = format!("sqlite://{}", db.display());
    let statement = statement.to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::ConnectOptions;
            let mut conn = url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        });
}

#[test]
fn a_write_that_cannot_be_made_live_answers_503_and_the_node_is_not_ready_until_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let db = tmp.path().join("certgate.db");
    let cfg = write_config(&dir, &format!("sqlite://{}", db.display()), "");
    let node = NodeProc::start(&dir, &cfg);
    let api = |name: &str| json!({"name": name, "base_path": format!("/{name}"), "upstream": "http://127.0.0.1:9"});

    let (s, v) = node.call("POST", "/api/v1/apis", Some(&api("first")));
    assert_eq!(s, 201, "{v}");
    let (s, v) = node.call("GET", "/readyz", None);
    assert_eq!(s, 200, "{v}");

    // A pattern the admin API would refuse (422), written directly into the database.
    sql(
        &db,
        "INSERT INTO gateway_trusted_dns (position, pattern) VALUES (1000, 'CN=a,,O=b')",
    );
    let (s, v) = node.call("POST", "/api/v1/apis", Some(&api("second")));
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "reload_failed", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("The change is stored but not live on this node: ")
            && message.contains("CN=a,,O=b"),
        "{message}"
    );
    let (s, v) = node.call("GET", "/readyz", None);
    assert_eq!(s, 503, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("the store's configuration is not live on this node: "),
        "{v}"
    );

    // Repaired behind the API's back too: the node catches up by itself (change feed
    // or retry) and is ready again; the next write is acknowledged.
    sql(&db, "DELETE FROM gateway_trusted_dns WHERE position = 1000");
    let ready = within(Duration::from_secs(20), || {
        node.call("GET", "/readyz", None).0 == 200
    });
    assert!(ready.is_some(), "the node did not become ready again");
    let (s, v) = node.call("POST", "/api/v1/apis", Some(&api("third")));
    assert_eq!(s, 201, "{v}");
}
