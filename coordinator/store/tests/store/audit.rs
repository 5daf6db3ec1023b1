//! The hash-chained audit log.

use std::sync::Arc;

use nexus_store::{AuditVerification, NewAuditEntry, Store};
use tokio::sync::Barrier;

use crate::harness::TestDb;

const CONCURRENT_APPENDS: usize = 8;

fn entry(index: usize) -> NewAuditEntry {
    NewAuditEntry {
        actor: format!("user:{index}"),
        action: "project.create".to_owned(),
        target: format!("project:{index}"),
        result: "ok".to_owned(),
        request_id: index.is_multiple_of(2).then(|| format!("req-{index}")),
        project_id: None,
    }
}

async fn append(store: &Store, index: usize) {
    let new_entry = &entry(index);
    store
        .with_retry(|tx| Box::pin(async move { tx.append_audit(new_entry).await }))
        .await
        .unwrap();
}

async fn verify(store: &Store) -> AuditVerification {
    store
        .with_retry(|tx| Box::pin(async move { tx.verify_audit_chain().await }))
        .await
        .unwrap()
}

pub async fn appends_form_a_verified_chain(db: TestDb) {
    let store = &db.store;
    assert_eq!(
        verify(store).await,
        AuditVerification {
            rows_checked: 0,
            first_broken: None
        }
    );
    for index in 1..=5 {
        append(store, index).await;
    }
    let entries = store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await
        .unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(entries[0].prev_hash, vec![0; 32]);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(entries[1].request_id.as_deref(), Some("req-2"));
    assert_eq!(
        verify(store).await,
        AuditVerification {
            rows_checked: 5,
            first_broken: None
        }
    );
}

pub async fn an_edited_row_is_reported(db: TestDb) {
    let store = &db.store;
    for index in 1..=5 {
        append(store, index).await;
    }
    assert_eq!(
        db.execute("UPDATE audit_logs SET actor = 'user:mallory' WHERE seq = 3")
            .await,
        1
    );
    let verification = verify(store).await;
    let broken = verification
        .first_broken
        .expect("the edit must be detected");
    assert_eq!(broken.seq, 3, "{broken:?}");
    assert!(broken.reason.contains("contents"), "{broken:?}");
}

pub async fn a_removed_row_is_reported(db: TestDb) {
    let store = &db.store;
    for index in 1..=4 {
        append(store, index).await;
    }
    assert_eq!(db.execute("DELETE FROM audit_logs WHERE seq = 2").await, 1);
    let broken = verify(store)
        .await
        .first_broken
        .expect("the gap must be detected");
    assert_eq!(broken.seq, 3, "{broken:?}");
}

pub async fn concurrent_appends_keep_one_chain(db: TestDb) {
    let start = Arc::new(Barrier::new(CONCURRENT_APPENDS));
    let mut tasks = Vec::new();
    for index in 0..CONCURRENT_APPENDS {
        let store = db.store.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            append(&store, index).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        verify(&db.store).await,
        AuditVerification {
            rows_checked: CONCURRENT_APPENDS as u64,
            first_broken: None
        }
    );
}
