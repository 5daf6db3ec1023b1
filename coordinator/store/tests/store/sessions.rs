//! Sessions: refresh-token rotation, reuse detection, listing and revocation.

use std::sync::Arc;

use nexus_store::{Error, NewSession, Rotation, Session, Store, TokenHash, UserId};
use tokio::sync::Barrier;

use crate::harness::TestDb;
use crate::users::create_user;

const CONCURRENT_ROTATIONS: usize = 8;

async fn log_in(store: &Store, user_id: UserId, token: &str) -> Session {
    let new_session = &NewSession {
        user_id,
        token_hash: TokenHash::of(token),
        user_agent: Some("test-agent/1.0".to_owned()),
        ip: Some("127.0.0.1".to_owned()),
    };
    store
        .with_retry(|tx| Box::pin(async move { tx.create_session(new_session).await }))
        .await
        .unwrap()
}

async fn rotate(store: &Store, presented: &str, next: &str) -> Rotation {
    let presented = &TokenHash::of(presented);
    let next = &TokenHash::of(next);
    store
        .with_retry(|tx| Box::pin(async move { tx.rotate_refresh_token(presented, next).await }))
        .await
        .unwrap()
}

async fn session(store: &Store, session: &Session) -> Session {
    let id = session.id;
    store
        .with_retry(|tx| Box::pin(async move { tx.get_session(id).await }))
        .await
        .unwrap()
}

pub async fn rotation_moves_the_family_to_the_next_token(db: TestDb) {
    let store = &db.store;
    let user = create_user(store, "rotate@example.com").await;
    let login = log_in(store, user.id, "token-1").await;
    assert_eq!(login.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(login.rotated_at, None);

    let Rotation::Rotated(first) = rotate(store, "token-1", "token-2").await else {
        panic!("the current token must rotate");
    };
    assert_eq!(first.id, login.id);
    assert_eq!(first.user_id, user.id);
    assert!(first.rotated_at.is_some());
    assert!(first.last_used_at >= login.last_used_at);

    let Rotation::Rotated(second) = rotate(store, "token-2", "token-3").await else {
        panic!("the next token must rotate in turn");
    };
    assert_eq!(second.id, login.id);
    assert_eq!(session(store, &login).await, second);
}

pub async fn reusing_a_superseded_token_revokes_the_family(db: TestDb) {
    let store = &db.store;
    let user = create_user(store, "reuse@example.com").await;
    let login = log_in(store, user.id, "old").await;
    let other = log_in(store, user.id, "other-device").await;
    assert!(matches!(
        rotate(store, "old", "new").await,
        Rotation::Rotated(_)
    ));

    assert_eq!(
        rotate(store, "old", "attacker").await,
        Rotation::Reused {
            session_id: login.id,
            user_id: user.id
        }
    );
    let revoked = session(store, &login).await;
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        revoked.revoked_reason.as_deref(),
        Some("refresh_token_reused")
    );

    // The legitimate client's current token is dead too, and so is the attacker's.
    for token in ["new", "attacker", "old"] {
        let outcome = rotate(store, token, "whatever").await;
        let expected = if token == "attacker" {
            Rotation::Unknown
        } else {
            Rotation::Revoked {
                session_id: login.id,
            }
        };
        assert_eq!(outcome, expected, "{token}");
    }
    // Other families of the same user are untouched.
    assert!(matches!(
        rotate(store, "other-device", "other-2").await,
        Rotation::Rotated(_)
    ));
    assert_eq!(session(store, &other).await.revoked_at, None);
}

pub async fn unknown_tokens_are_reported(db: TestDb) {
    assert_eq!(
        rotate(&db.store, "never-issued", "next").await,
        Rotation::Unknown
    );
}

pub async fn concurrent_rotations_of_one_token_have_one_winner(db: TestDb) {
    let store = &db.store;
    let user = create_user(store, "race@example.com").await;
    let login = log_in(store, user.id, "contended").await;

    let start = Arc::new(Barrier::new(CONCURRENT_ROTATIONS));
    let mut tasks = Vec::new();
    for index in 0..CONCURRENT_ROTATIONS {
        let store = store.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            rotate(&store, "contended", &format!("next-{index}")).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    let winners: Vec<_> = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Rotation::Rotated(_)))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:#?}");
    // Every loser saw its token superseded (and revoked the family) or the family revoked.
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Rotation::Rotated(_) | Rotation::Reused { .. } | Rotation::Revoked { .. }
            ),
            "{outcome:?}"
        );
    }
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, Rotation::Reused { .. })),
        "{outcomes:#?}"
    );
    let family = session(store, &login).await;
    assert_eq!(
        family.revoked_reason.as_deref(),
        Some("refresh_token_reused")
    );
}

pub async fn sessions_are_listed_and_revoked_per_user(db: TestDb) {
    let store = &db.store;
    let alice = create_user(store, "alice@example.com").await;
    let bob = create_user(store, "bob@example.com").await;
    let laptop = log_in(store, alice.id, "laptop").await;
    let phone = log_in(store, alice.id, "phone").await;
    let bobs = log_in(store, bob.id, "bob").await;

    let list = |user_id: UserId| async move {
        store
            .with_retry(|tx| Box::pin(async move { tx.list_sessions(user_id).await }))
            .await
            .unwrap()
    };
    let mut ids: Vec<_> = list(alice.id).await.iter().map(|s| s.id).collect();
    ids.sort();
    let mut expected = vec![laptop.id, phone.id];
    expected.sort();
    assert_eq!(ids, expected);

    // Alice cannot revoke Bob's session: it is not found among hers.
    let (alice_id, bobs_id) = (alice.id, bobs.id);
    let result = store
        .with_retry(|tx| {
            Box::pin(async move { tx.revoke_session(alice_id, bobs_id, "logout").await })
        })
        .await;
    assert!(
        matches!(result, Err(Error::NotFound { what: "session" })),
        "{result:?}"
    );
    assert_eq!(session(store, &bobs).await.revoked_at, None);

    let phone_id = phone.id;
    store
        .with_retry(|tx| {
            Box::pin(async move { tx.revoke_session(alice_id, phone_id, "logout").await })
        })
        .await
        .unwrap();
    let remaining: Vec<_> = list(alice.id).await.iter().map(|s| s.id).collect();
    assert_eq!(remaining, vec![laptop.id]);
    assert_eq!(
        rotate(store, "phone", "phone-2").await,
        Rotation::Revoked {
            session_id: phone.id
        }
    );

    let revoked = store
        .with_retry(|tx| {
            Box::pin(async move { tx.revoke_all_sessions(alice_id, "logout_all").await })
        })
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert!(list(alice.id).await.is_empty());
    assert_eq!(list(bob.id).await.len(), 1);
}
