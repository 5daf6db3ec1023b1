//! Functions, versions and aliases.

use nexus_store::{Error, NewFunctionVersion};
use serde_json::json;

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::create_user;

pub async fn functions_versions_and_aliases(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "fn", owner.id).await;
    let project_id = project.id;

    let function = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "hello").await }))
        .await
        .unwrap();
    let duplicate = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "hello").await }))
        .await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { .. })),
        "{duplicate:?}"
    );
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, "hello").await }))
        .await
        .unwrap();
    assert_eq!(fetched, function);

    let function_id = function.id;
    let mut versions = Vec::new();
    for index in 1..=2 {
        let new_version = &NewFunctionVersion {
            spec: json!({ "routes": ["/..."], "index": index }),
            component_digests: vec![format!("sha256:{index:064}")],
        };
        versions.push(
            store
                .with_retry(|tx| {
                    Box::pin(
                        async move { tx.create_function_version(function_id, new_version).await },
                    )
                })
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    let second = store
        .with_retry(|tx| Box::pin(async move { tx.get_function_version(function_id, 2).await }))
        .await
        .unwrap();
    assert_eq!(second, versions[1]);
    assert_eq!(second.spec["index"], 2);
    assert_eq!(
        second.component_digests,
        json!([format!("sha256:{:064}", 2)])
    );
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_function_versions(function_id).await }))
        .await
        .unwrap();
    assert_eq!(listed, versions);

    // live → 2 with 10 % on 1, then rolled back to 1 alone.
    let canary = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_alias(function_id, "live", 2, Some((1, 10))).await })
        })
        .await
        .unwrap();
    assert_eq!(
        (canary.version_a, canary.version_b, canary.weight_b),
        (2, Some(1), 10)
    );
    store
        .with_retry(|tx| Box::pin(async move { tx.set_alias(function_id, "live", 1, None).await }))
        .await
        .unwrap();
    let live = store
        .with_retry(|tx| Box::pin(async move { tx.get_alias(function_id, "live").await }))
        .await
        .unwrap();
    assert_eq!(
        (live.version_a, live.version_b, live.weight_b),
        (1, None, 0)
    );

    let missing = store
        .with_retry(|tx| Box::pin(async move { tx.set_alias(function_id, "live", 3, None).await }))
        .await;
    assert!(
        matches!(
            missing,
            Err(Error::NotFound {
                what: "function version"
            })
        ),
        "{missing:?}"
    );
    let bad_weight = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_alias(function_id, "live", 1, Some((2, 101))).await })
        })
        .await;
    assert!(
        matches!(bad_weight, Err(Error::Invalid { .. })),
        "{bad_weight:?}"
    );
}
