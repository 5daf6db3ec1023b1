//! `nexus audit verify` on a real SQLite database: intact, then after a row is edited by hand.
#![expect(clippy::unwrap_used, reason = "a test reports failures by panicking")]

use nexus_store::{NewAuditEntry, Store};
use sqlx::{AssertSqlSafe, Connection as _};
use tokio::process::Command;

async fn verify(url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["audit", "verify", "--database-url", url])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn verify_reports_the_first_row_edited_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nexus.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    for action in ["project.create", "member.add", "project.delete"] {
        let entry = NewAuditEntry {
            actor: "user:test".to_owned(),
            action: action.to_owned(),
            target: "project:shop".to_owned(),
            result: "ok".to_owned(),
            request_id: None,
            project_id: None,
        };
        store
            .with_retry(|tx| {
                let entry = entry.clone();
                Box::pin(async move { tx.append_audit(&entry).await })
            })
            .await
            .unwrap();
    }
    store.close().await;

    let (ok, text) = verify(&url).await;
    assert!(ok, "{text}");
    assert!(text.contains("audit log intact: 3 rows verified"), "{text}");

    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(AssertSqlSafe(
        "UPDATE audit_logs SET actor = 'user:someone-else' WHERE seq = 2".to_owned(),
    ))
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();

    let (ok, text) = verify(&url).await;
    assert!(!ok, "an edited row must fail verification: {text}");
    assert!(text.contains("audit log broken at row 2"), "{text}");
}
