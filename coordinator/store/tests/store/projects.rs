//! Projects, members and API keys.

use nexus_store::{
    Error, NewApiKey, NewProject, Project, ProjectId, ProjectUpdate, Role, Store, TokenHash, UserId,
};

use crate::harness::TestDb;
use crate::users::create_user;

pub async fn create_project(store: &Store, slug: &str, owner: UserId) -> Project {
    let new_project = &NewProject {
        slug: slug.to_owned(),
        name: format!("The {slug} project"),
    };
    store
        .with_retry(|tx| Box::pin(async move { tx.create_project(new_project, owner).await }))
        .await
        .unwrap()
}

async fn role(store: &Store, project_id: ProjectId, user_id: UserId) -> Option<Role> {
    store
        .with_retry(|tx| Box::pin(async move { tx.member_role(project_id, user_id).await }))
        .await
        .unwrap()
}

pub async fn create_makes_the_creator_owner(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let stranger = create_user(store, "stranger@example.com").await;
    let project = create_project(store, "alpha", owner.id).await;
    let beta = create_project(store, "beta", owner.id).await;

    assert_eq!(role(store, project.id, owner.id).await, Some(Role::Owner));
    assert_eq!(role(store, project.id, stranger.id).await, None);

    let id = project.id;
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_project(id).await }))
        .await
        .unwrap();
    assert_eq!(fetched, project);
    let by_slug = store
        .with_retry(|tx| Box::pin(async move { tx.get_project_by_slug("alpha").await }))
        .await
        .unwrap();
    assert_eq!(by_slug, project);

    let owner_id = owner.id;
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_projects_for_user(owner_id).await }))
        .await
        .unwrap();
    assert_eq!(listed, vec![(project, Role::Owner), (beta, Role::Owner)]);
    let stranger_id = stranger.id;
    let none = store
        .with_retry(|tx| Box::pin(async move { tx.list_projects_for_user(stranger_id).await }))
        .await
        .unwrap();
    assert!(none.is_empty());

    // A project cannot be created for a user who does not exist.
    let orphan = &NewProject {
        slug: "orphan".to_owned(),
        name: "Orphan".to_owned(),
    };
    let result = store
        .with_retry(|tx| Box::pin(async move { tx.create_project(orphan, UserId::new()).await }))
        .await;
    assert!(
        matches!(result, Err(Error::NotFound { what: "user" })),
        "{result:?}"
    );
}

pub async fn slugs_are_unique(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    create_project(store, "taken", owner.id).await;
    let duplicate = &NewProject {
        slug: "taken".to_owned(),
        name: "Another".to_owned(),
    };
    let owner_id = owner.id;
    let result = store
        .with_retry(|tx| Box::pin(async move { tx.create_project(duplicate, owner_id).await }))
        .await;
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    // The failed transaction left no membership behind.
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_projects_for_user(owner_id).await }))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

pub async fn update_and_delete(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "gamma", owner.id).await;
    let id = project.id;

    let update = &ProjectUpdate {
        name: Some("Renamed".to_owned()),
    };
    let updated = store
        .with_retry(|tx| Box::pin(async move { tx.update_project(id, update).await }))
        .await
        .unwrap();
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.slug, "gamma");
    assert!(updated.updated_at >= project.updated_at);
    let unchanged = store
        .with_retry(|tx| {
            Box::pin(async move { tx.update_project(id, &ProjectUpdate::default()).await })
        })
        .await
        .unwrap();
    assert_eq!(unchanged.name, "Renamed");

    store
        .with_retry(|tx| Box::pin(async move { tx.delete_project(id).await }))
        .await
        .unwrap();
    for result in [
        store
            .with_retry(|tx| Box::pin(async move { tx.get_project(id).await }))
            .await
            .map(drop),
        store
            .with_retry(|tx| Box::pin(async move { tx.delete_project(id).await }))
            .await,
        store
            .with_retry(|tx| Box::pin(async move { tx.update_project(id, update).await }))
            .await
            .map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::NotFound { what: "project" })),
            "{result:?}"
        );
    }
    // Memberships went with the project.
    assert_eq!(role(store, id, owner.id).await, None);
}

pub async fn members_are_added_changed_and_removed(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let dev = create_user(store, "dev@example.com").await;
    let project = create_project(store, "delta", owner.id).await;
    let (project_id, dev_id) = (project.id, dev.id);

    store
        .with_retry(|tx| {
            Box::pin(async move { tx.add_member(project_id, dev_id, Role::Viewer).await })
        })
        .await
        .unwrap();
    assert_eq!(role(store, project_id, dev_id).await, Some(Role::Viewer));
    let again = store
        .with_retry(|tx| {
            Box::pin(async move { tx.add_member(project_id, dev_id, Role::Admin).await })
        })
        .await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    let ghost = store
        .with_retry(|tx| {
            Box::pin(async move { tx.add_member(project_id, UserId::new(), Role::Admin).await })
        })
        .await;
    assert!(
        matches!(ghost, Err(Error::NotFound { what: "user" })),
        "{ghost:?}"
    );

    store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.set_member_role(project_id, dev_id, Role::Developer)
                    .await
            })
        })
        .await
        .unwrap();
    let members = store
        .with_retry(|tx| Box::pin(async move { tx.list_members(project_id).await }))
        .await
        .unwrap();
    let summary: Vec<_> = members
        .iter()
        .map(|member| (member.email.as_str(), member.role))
        .collect();
    assert_eq!(
        summary,
        [
            ("dev@example.com", Role::Developer),
            ("owner@example.com", Role::Owner)
        ]
    );

    store
        .with_retry(|tx| Box::pin(async move { tx.remove_member(project_id, dev_id).await }))
        .await
        .unwrap();
    assert_eq!(role(store, project_id, dev_id).await, None);
    let gone = store
        .with_retry(|tx| Box::pin(async move { tx.remove_member(project_id, dev_id).await }))
        .await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
}

pub async fn the_last_owner_stays(db: TestDb) {
    let store = &db.store;
    let first = create_user(store, "first@example.com").await;
    let second = create_user(store, "second@example.com").await;
    let project = create_project(store, "epsilon", first.id).await;
    let (project_id, first_id, second_id) = (project.id, first.id, second.id);

    for result in [
        store
            .with_retry(|tx| {
                Box::pin(async move { tx.set_member_role(project_id, first_id, Role::Admin).await })
            })
            .await,
        store
            .with_retry(|tx| Box::pin(async move { tx.remove_member(project_id, first_id).await }))
            .await,
    ] {
        assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    }
    assert_eq!(role(store, project_id, first_id).await, Some(Role::Owner));

    // With a second owner, the first may step down.
    store
        .with_retry(|tx| {
            Box::pin(async move { tx.add_member(project_id, second_id, Role::Owner).await })
        })
        .await
        .unwrap();
    store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_member_role(project_id, first_id, Role::Viewer).await })
        })
        .await
        .unwrap();
    assert_eq!(role(store, project_id, first_id).await, Some(Role::Viewer));
}

pub async fn api_keys_are_found_by_hash_until_revoked(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "zeta", owner.id).await;
    let new_key = &NewApiKey {
        project_id: project.id,
        name: "ci".to_owned(),
        prefix: "nx_ab12".to_owned(),
        key_hash: TokenHash::of("nx_ab12-secret"),
        role: Role::Developer,
        created_by: Some(owner.id),
    };
    let key = store
        .with_retry(|tx| Box::pin(async move { tx.create_api_key(new_key).await }))
        .await
        .unwrap();
    assert_eq!(key.role, Role::Developer);

    let duplicate = store
        .with_retry(|tx| Box::pin(async move { tx.create_api_key(new_key).await }))
        .await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { .. })),
        "{duplicate:?}"
    );

    let hash = &new_key.key_hash;
    let found = store
        .with_retry(|tx| Box::pin(async move { tx.find_active_api_key(hash).await }))
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&key));
    let wrong = &TokenHash::of("nx_ab12-guess");
    let not_found = store
        .with_retry(|tx| Box::pin(async move { tx.find_active_api_key(wrong).await }))
        .await
        .unwrap();
    assert_eq!(not_found, None);

    let (project_id, key_id) = (project.id, key.id);
    store
        .with_retry(|tx| Box::pin(async move { tx.touch_api_key(key_id).await }))
        .await
        .unwrap();
    store
        .with_retry(|tx| Box::pin(async move { tx.revoke_api_key(project_id, key_id).await }))
        .await
        .unwrap();
    let revoked = store
        .with_retry(|tx| Box::pin(async move { tx.find_active_api_key(hash).await }))
        .await
        .unwrap();
    assert_eq!(revoked, None);
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_api_keys(project_id).await }))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
    assert!(listed[0].last_used_at.is_some());
    let twice = store
        .with_retry(|tx| Box::pin(async move { tx.revoke_api_key(project_id, key_id).await }))
        .await;
    assert!(matches!(twice, Err(Error::NotFound { .. })), "{twice:?}");
}
