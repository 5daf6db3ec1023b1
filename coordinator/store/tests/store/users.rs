//! Users.

use nexus_store::{Error, NewSession, NewUser, Store, TokenHash, User, UserId};

use crate::harness::TestDb;

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        display_name: format!("{email} display"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
    }
}

pub async fn create_user(store: &Store, email: &str) -> User {
    let new = &new_user(email);
    store
        .with_retry(|tx| Box::pin(async move { tx.create_user(new).await }))
        .await
        .unwrap()
}

pub async fn create_and_get_round_trip(db: TestDb) {
    let store = &db.store;
    let created = create_user(store, "  Ada@Example.COM ").await;
    assert_eq!(created.email, "ada@example.com");
    assert_eq!(created.erased_at, None);

    let id = created.id;
    let by_id = store
        .with_retry(|tx| Box::pin(async move { tx.get_user(id).await }))
        .await
        .unwrap();
    assert_eq!(by_id, created);

    let by_email = store
        .with_retry(|tx| Box::pin(async move { tx.find_user_by_email("ADA@example.com").await }))
        .await
        .unwrap();
    assert_eq!(by_email, Some(created));
}

pub async fn emails_are_unique_in_any_case(db: TestDb) {
    let store = &db.store;
    create_user(store, "grace@example.com").await;
    let duplicate = &new_user("Grace@Example.com");
    let result = store
        .with_retry(|tx| Box::pin(async move { tx.create_user(duplicate).await }))
        .await;
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");

    let invalid = &new_user("not an address");
    let result = store
        .with_retry(|tx| Box::pin(async move { tx.create_user(invalid).await }))
        .await;
    assert!(
        matches!(result, Err(Error::Invalid { what: "email", .. })),
        "{result:?}"
    );
}

pub async fn missing_users_are_not_found(db: TestDb) {
    let store = &db.store;
    let result = store
        .with_retry(|tx| Box::pin(async move { tx.get_user(UserId::new()).await }))
        .await;
    assert!(
        matches!(result, Err(Error::NotFound { what: "user" })),
        "{result:?}"
    );
    let found = store
        .with_retry(|tx| Box::pin(async move { tx.find_user_by_email("nobody@example.com").await }))
        .await
        .unwrap();
    assert_eq!(found, None);
}

pub async fn erasing_frees_the_email_and_ends_sessions(db: TestDb) {
    let store = &db.store;
    let user = create_user(store, "erase@example.com").await;
    let new_session = &NewSession {
        user_id: user.id,
        token_hash: TokenHash::of("first"),
        user_agent: None,
        ip: None,
    };
    let session = store
        .with_retry(|tx| Box::pin(async move { tx.create_session(new_session).await }))
        .await
        .unwrap();

    store
        .with_retry(|tx| Box::pin(async move { tx.erase_user(user.id).await }))
        .await
        .unwrap();

    let erased = store
        .with_retry(|tx| Box::pin(async move { tx.get_user(user.id).await }))
        .await
        .unwrap();
    assert!(erased.erased_at.is_some());
    assert!(erased.password_hash.is_empty());
    let found = store
        .with_retry(|tx| Box::pin(async move { tx.find_user_by_email("erase@example.com").await }))
        .await
        .unwrap();
    assert_eq!(found, None);
    let session = store
        .with_retry(|tx| Box::pin(async move { tx.get_session(session.id).await }))
        .await
        .unwrap();
    assert_eq!(session.revoked_reason.as_deref(), Some("user_erased"));

    // The address can be registered again, and erasing twice finds nothing to erase.
    create_user(store, "erase@example.com").await;
    let again = store
        .with_retry(|tx| Box::pin(async move { tx.erase_user(user.id).await }))
        .await;
    assert!(matches!(again, Err(Error::NotFound { .. })), "{again:?}");
}
