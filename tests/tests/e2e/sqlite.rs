//! Spin SQLite through the guests, on every interface version: `fermyon:spin/sqlite@2.0.0`
//! (`sqlite-probe`, `spin_sdk::sqlite`), `spin:sqlite/sqlite@3.0.0` (`sqlite-probe?api=v3`,
//! spin-sdk 5's `spin_sdk::sqlite3`) and `spin:sqlite/sqlite@3.1.0` (`sqlite-probe-p3`,
//! spin-sdk 7, rows streamed).

use std::path::Path;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::{TestPlatform, TestResponse, component_path};
use serde_json::{Value as Json, json};

/// One interface version and the probe that speaks it.
#[derive(Debug, Clone, Copy)]
struct Api {
    /// The probe's path, without its query.
    path: &'static str,
    /// The query that selects the interface.
    query: &'static str,
    /// Whether answers carry `last_insert_rowid` and `changes` (3.x).
    has_counters: bool,
}

const V2: Api = Api {
    path: "/sqlite-probe",
    query: "api=v2",
    has_counters: false,
};
const V3_0: Api = Api {
    path: "/sqlite-probe",
    query: "api=v3",
    has_counters: true,
};
const V3_1: Api = Api {
    path: "/p3/sqlite-probe",
    query: "",
    has_counters: true,
};
const EVERY_API: [Api; 3] = [V2, V3_0, V3_1];

/// Runs `sql` with `params` on database `db` through `api`'s probe at `path`.
async fn run_at(
    platform: &TestPlatform,
    api: Api,
    path: &str,
    db: &str,
    sql: &str,
    params: &Json,
) -> TestResponse {
    let url = platform.url(&format!("{path}?db={db}&{}", api.query));
    let request = Request::post(url)
        .header("x-sqlite-params", params.to_string())
        .body(Full::new(Bytes::from(sql.to_owned())))
        .unwrap();
    platform.send(request).await
}

/// Runs `sql` on the `default` database and returns the answer, which must be a 200.
async fn run(platform: &TestPlatform, api: Api, sql: &str, params: &Json) -> Json {
    let response = run_at(platform, api, api.path, "default", sql, params).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{api:?} {sql}: {}",
        response.text()
    );
    response.json()
}

/// Runs `sql` and returns the error the guest got, which must be a 500: the `Debug` text of the
/// SDK's error, without the `Error::` that some wit-bindgen versions put before the variant.
async fn error(platform: &TestPlatform, api: Api, path: &str, db: &str, sql: &str) -> String {
    let response = run_at(platform, api, path, db, sql, &json!([])).await;
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{api:?} {path} {db} {sql}: {}",
        response.text()
    );
    let text = response.text();
    text.strip_prefix("Error::").unwrap_or(&text).to_owned()
}

#[tokio::test]
async fn values_of_every_type_round_trip_on_every_interface() {
    let platform = TestPlatform::builder().start().await;
    for (version, api) in EVERY_API.into_iter().enumerate() {
        let table = format!("every_type_{version}");
        run(
            &platform,
            api,
            &format!("CREATE TABLE {table} (i INTEGER, r REAL, t TEXT, b BLOB, n, converted TEXT)"),
            &json!([]),
        )
        .await;
        let inserted = run(
            &platform,
            api,
            &format!("INSERT INTO {table} VALUES (?, ?, :text, ?, ?, ?)"),
            &json!([-9_007_199_254_740_993_i64, 2.5, "zoë 😀", {"blob": [0, 1, 255]}, null, 42]),
        )
        .await;
        assert_eq!(inserted["columns"], json!([]), "{api:?}");
        assert_eq!(inserted["rows"], json!([]), "{api:?}");
        if api.has_counters {
            assert_eq!(inserted["last_insert_rowid"], 1, "{api:?}");
            assert_eq!(inserted["changes"], 1, "{api:?}");
        }

        let selected = run(
            &platform,
            api,
            &format!("SELECT i, r, t, b, n AS absent, converted, i + 1 FROM {table}"),
            &json!([]),
        )
        .await;
        assert_eq!(
            selected["columns"],
            json!(["i", "r", "t", "b", "absent", "converted", "i + 1"]),
            "{api:?}"
        );
        assert_eq!(
            selected["rows"],
            json!([[
                {"integer": -9_007_199_254_740_993_i64},
                {"real": 2.5},
                {"text": "zoë 😀"},
                {"blob": [0, 1, 255]},
                null,
                // The TEXT column's affinity stored the integer as text.
                {"text": "42"},
                {"integer": -9_007_199_254_740_992_i64},
            ]]),
            "{api:?}"
        );
        if api.has_counters {
            // A fresh connection per request: nothing inserted or changed on this one.
            assert_eq!(selected["last_insert_rowid"], 0, "{api:?}");
            assert_eq!(selected["changes"], 0, "{api:?}");
        }
    }
}

#[tokio::test]
async fn many_rows_arrive_in_order_on_every_interface() {
    let platform = TestPlatform::builder().start().await;
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
               SELECT i, printf('row %d', i) AS label FROM n";
    for api in EVERY_API {
        let answer = run(&platform, api, sql, &json!([1000])).await;
        let rows = answer["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1000, "{api:?}");
        for (index, row) in rows.iter().enumerate() {
            let number = index + 1;
            assert_eq!(
                row,
                &json!([{"integer": number}, {"text": format!("row {number}")}]),
                "{api:?}"
            );
        }
    }
}

#[tokio::test]
async fn only_the_first_statement_of_the_text_runs() {
    let platform = TestPlatform::builder().start().await;
    for (version, api) in EVERY_API.into_iter().enumerate() {
        let (first, second) = (format!("first_{version}"), format!("second_{version}"));
        run(
            &platform,
            api,
            &format!("CREATE TABLE {first} (a); CREATE TABLE {second} (a)"),
            &json!([]),
        )
        .await;
        let tables = run(
            &platform,
            api,
            "SELECT name FROM sqlite_master WHERE name IN (?, ?)",
            &json!([first, second]),
        )
        .await;
        assert_eq!(tables["rows"], json!([[{"text": first}]]), "{api:?}");
    }
}

#[tokio::test]
async fn labels_outside_sqlite_databases_are_access_denied() {
    let platform = TestPlatform::builder().start().await;
    for api in EVERY_API {
        let denied_path = format!("{}-denied", api.path);
        let allowed = run_at(&platform, api, api.path, "other", "SELECT 1", &json!([])).await;
        assert_eq!(
            allowed.status,
            StatusCode::OK,
            "{api:?}: {}",
            allowed.text()
        );
        assert_eq!(
            error(&platform, api, api.path, "secret", "SELECT 1").await,
            "AccessDenied",
            "{api:?}"
        );
        assert_eq!(
            error(&platform, api, &denied_path, "default", "SELECT 1").await,
            "AccessDenied",
            "{api:?}"
        );
    }
}

#[tokio::test]
async fn bad_statements_are_io_errors_with_sqlites_message() {
    let platform = TestPlatform::builder().start().await;
    for api in EVERY_API {
        let path = api.path;
        for (sql, expected) in [
            ("SELEC 1", r#"Io("near \"SELEC\": syntax error")"#),
            (
                "SELECT * FROM no_such_table",
                r#"Io("no such table: no_such_table")"#,
            ),
            (
                "SELECT ?",
                r#"Io("Wrong number of parameters passed to query. Got 0, needed 1")"#,
            ),
        ] {
            assert_eq!(
                error(&platform, api, path, "default", sql).await,
                expected,
                "{api:?} {sql}"
            );
        }
    }
    // A failure while stepping, after the columns were answered, reaches a 3.1 guest through
    // the outcome future.
    run(
        &platform,
        V3_1,
        "CREATE TABLE unique_values (v UNIQUE)",
        &json!([]),
    )
    .await;
    assert_eq!(
        error(
            &platform,
            V3_1,
            V3_1.path,
            "default",
            "INSERT INTO unique_values VALUES (1), (1) RETURNING v"
        )
        .await,
        r#"Io("UNIQUE constraint failed: unique_values.v")"#
    );
}

#[tokio::test]
async fn the_default_database_survives_a_restart() {
    let platform = TestPlatform::builder().start().await;
    run(&platform, V2, "CREATE TABLE notes (body TEXT)", &json!([])).await;
    run(
        &platform,
        V3_1,
        "INSERT INTO notes VALUES (?)",
        &json!(["before"]),
    )
    .await;
    let state = platform.shutdown().await;
    assert!(
        state
            .path()
            .join("sqlite/nexus-examples/default.db")
            .is_file(),
        "the database file is where the docs say"
    );

    let platform = TestPlatform::builder().state(state).start().await;
    run(
        &platform,
        V3_0,
        "INSERT INTO notes VALUES (?)",
        &json!(["after"]),
    )
    .await;
    for api in EVERY_API {
        let notes = run(
            &platform,
            api,
            "SELECT body FROM notes ORDER BY rowid",
            &json!([]),
        )
        .await;
        assert_eq!(
            notes["rows"],
            json!([[{"text": "before"}], [{"text": "after"}]]),
            "{api:?}"
        );
    }
}

/// A second app, named `name`, serving the probes from their built files.
fn write_other_app(directory: &Path, name: &str) -> std::path::PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "{name}"

[[trigger.http]]
route = "/sqlite-probe"
component = "sqlite-probe"

[[trigger.http]]
route = "/p3/sqlite-probe"
component = "sqlite-probe-p3"

[component.sqlite-probe]
source = {probe:?}
sqlite_databases = ["default"]

[component.sqlite-probe-p3]
source = {probe_p3:?}
sqlite_databases = ["default"]
"#,
        probe = component_path("sqlite-probe"),
        probe_p3 = component_path("sqlite-probe-p3"),
    );
    let path = directory.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

#[tokio::test]
async fn apps_never_see_each_others_databases() {
    let other_app = tempfile::tempdir().unwrap();
    let other_manifest = write_other_app(other_app.path(), "sqlite isolation/other");

    let examples = TestPlatform::builder().start().await;
    run(&examples, V2, "CREATE TABLE secrets (v TEXT)", &json!([])).await;
    run(
        &examples,
        V2,
        "INSERT INTO secrets VALUES ('examples')",
        &json!([]),
    )
    .await;
    let state = examples.shutdown().await;

    // Same state directory, same label, another app: its own, empty, database.
    let other = TestPlatform::builder()
        .manifest(other_manifest.clone())
        .state(state)
        .start()
        .await;
    for api in EVERY_API {
        assert_eq!(
            error(&other, api, api.path, "default", "SELECT v FROM secrets").await,
            r#"Io("no such table: secrets")"#,
            "{api:?}"
        );
    }
    run(&other, V3_1, "CREATE TABLE secrets (v TEXT)", &json!([])).await;
    run(
        &other,
        V3_1,
        "INSERT INTO secrets VALUES ('other')",
        &json!([]),
    )
    .await;
    let state = other.shutdown().await;
    assert!(
        state
            .path()
            .join("sqlite/sqlite%20isolation%2Fother/default.db")
            .is_file()
    );

    let examples = TestPlatform::builder().state(state).start().await;
    let secrets = run(&examples, V3_0, "SELECT v FROM secrets", &json!([])).await;
    assert_eq!(secrets["rows"], json!([[{"text": "examples"}]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_statement_ends_at_the_deadline_and_releases_the_database() {
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);
    let platform = TestPlatform::builder()
        .limits(|limits| limits.deadline = DEADLINE)
        .start()
        .await;
    run(
        &platform,
        V2,
        "CREATE TABLE numbers (i INTEGER)",
        &json!([]),
    )
    .await;
    // An endless INSERT holds the database's write lock for as long as it runs.
    let endless = "INSERT INTO numbers WITH RECURSIVE n(i) AS \
                   (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
    for api in EVERY_API {
        let started = std::time::Instant::now();
        let response = run_at(&platform, api, api.path, "default", endless, &json!([])).await;
        let elapsed = started.elapsed();
        assert!(
            response.status == StatusCode::GATEWAY_TIMEOUT
                || response.status == StatusCode::INTERNAL_SERVER_ERROR,
            "{api:?}: {} {}",
            response.status,
            response.text()
        );
        assert!(
            elapsed < DEADLINE + std::time::Duration::from_millis(500),
            "{api:?}: answered {elapsed:?} after the request"
        );
        // SQLite interrupted the statement and rolled it back: the next writer gets the lock
        // within its own deadline, and nothing of the endless insert remains.
        run(&platform, api, "INSERT INTO numbers VALUES (0)", &json!([])).await;
    }
    let count = run(
        &platform,
        V3_1,
        "SELECT count(*), max(i) FROM numbers",
        &json!([]),
    )
    .await;
    assert_eq!(count["rows"], json!([[{"integer": 3}, {"integer": 0}]]));
}
