//! Projects and their members, and who may do what in a project (RBAC).
//!
//! Every project-scoped call goes through [`ProjectService::authorize`]: a caller who is not a
//! member gets "project not found", exactly as for a project that does not exist, so project
//! names do not leak; a member whose role lacks the permission gets "forbidden".

use std::sync::Arc;

use nexus_store::{
    Member, NewAuditEntry, NewProject, Project, ProjectUpdate, Role, Store, Tx, UserId,
};

use crate::api_keys::KeyCaller;
use crate::auth::service::Caller;
use crate::error::ApiError;
use crate::trigger::CatalogChanges;

/// Who makes a project-scoped request: a user (by access token) or a machine (by API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user, with the role their membership gives.
    User(Caller),
    /// An API key, with the role it was created with, in its one project.
    ApiKey(KeyCaller),
}

impl Principal {
    /// How the audit log names it.
    pub fn actor(&self) -> String {
        match self {
            Self::User(caller) => format!("user:{}", caller.user),
            Self::ApiKey(key) => format!("api_key:{}", key.key),
        }
    }
}

impl From<Caller> for Principal {
    fn from(caller: Caller) -> Self {
        Self::User(caller)
    }
}

/// What a caller can ask to do in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the project and its members.
    View,
    /// Change the project's name.
    Update,
    /// Delete the project and everything in it.
    Delete,
    /// Add, change and remove members (only owners may touch owners).
    ManageMembers,
    /// Create, list and revoke the project's API keys.
    ManageApiKeys,
    /// Deploy function versions and move their aliases.
    Deploy,
    /// Create, suspend, resume and delete agents.
    ManageAgents,
    /// Run functions through the API: send agents messages.
    Invoke,
}

/// Whether `role` grants `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    match permission {
        Permission::View => true,
        Permission::Update | Permission::ManageMembers | Permission::ManageApiKeys => {
            matches!(role, Role::Owner | Role::Admin)
        }
        Permission::Delete => role == Role::Owner,
        Permission::Deploy | Permission::ManageAgents | Permission::Invoke => {
            matches!(role, Role::Owner | Role::Admin | Role::Developer)
        }
    }
}

/// Who asks to act on which project, and the audit row of the change: for a change to check
/// and record in its own transaction, so that the check, the change and its record commit
/// together, once.
pub struct Access<'a> {
    /// Who acts.
    pub principal: Principal,
    /// The project's name.
    pub project: &'a str,
    /// What the change needs.
    pub permission: Permission,
    /// The row to append when the change commits; `None` when the caller records it.
    pub audit: Option<NewAuditEntry>,
}

impl Access<'_> {
    /// The project and the principal's role in it, read in `tx`; `None` when the project
    /// does not exist or the principal is not a member.
    async fn role(&self, tx: &mut Tx<'_>) -> nexus_store::Result<Option<(Project, Role)>> {
        let found = match self.principal {
            Principal::User(caller) => tx.get_project_and_role(self.project, caller.user).await,
            Principal::ApiKey(key) => tx.get_project_by_slug(self.project).await.map(|project| {
                // A key knows one project; any other looks as if it did not exist.
                let role = (key.project == project.id).then_some(key.role);
                (project, role)
            }),
        };
        match found {
            Ok((project, role)) => Ok(role.map(|role| (project, role))),
            Err(nexus_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// What [`Access::role`] found, if it grants the permission.
    fn granted(&self, found: Option<(Project, Role)>) -> Result<(Project, Role), ApiError> {
        let Some((project, role)) = found else {
            return Err(ApiError::not_found("project"));
        };
        if !allows(role, self.permission) {
            return Err(ApiError::forbidden(format!(
                "a project {role} may not do this"
            )));
        }
        Ok((project, role))
    }

    /// The project and role, checked in `tx`; the outer error is the database's (the
    /// transaction is retried), the inner one the caller's.
    pub async fn check(
        &self,
        tx: &mut Tx<'_>,
    ) -> nexus_store::Result<Result<(Project, Role), ApiError>> {
        Ok(self.granted(self.role(tx).await?))
    }

    /// Appends the audit row, if the access carries one, in `tx`.
    pub async fn record(&self, tx: &mut Tx<'_>) -> nexus_store::Result<()> {
        if let Some(entry) = &self.audit {
            tx.append_audit(entry).await?;
        }
        Ok(())
    }
}

/// The projects service.
#[derive(Clone)]
pub struct ProjectService {
    store: Arc<Store>,
    changes: Arc<CatalogChanges>,
}

impl ProjectService {
    /// A service over `store` that records deletions in `changes`.
    pub fn new(store: Arc<Store>, changes: Arc<CatalogChanges>) -> Self {
        Self { store, changes }
    }

    /// The project `slug` and the caller's role in it, if the role grants `permission`.
    pub async fn authorize(
        &self,
        principal: impl Into<Principal>,
        slug: &str,
        permission: Permission,
    ) -> Result<(Project, Role), ApiError> {
        let access = Access {
            principal: principal.into(),
            project: slug,
            permission,
            audit: None,
        };
        let reader = &access;
        let found = self
            .store
            .with_retry(|tx| Box::pin(async move { reader.role(tx).await }))
            .await?;
        access.granted(found)
    }

    /// Creates a project owned by the caller.
    pub async fn create(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
    ) -> Result<Project, ApiError> {
        validate_slug(slug)?;
        let new_project = NewProject {
            slug: slug.to_owned(),
            name: name.to_owned(),
        };
        self.store
            .with_retry(|tx| {
                let new_project = new_project.clone();
                Box::pin(async move { tx.create_project(&new_project, caller.user).await })
            })
            .await
            .map_err(|error| match error {
                nexus_store::Error::Conflict { .. } => {
                    ApiError::conflict(format!("the project name {slug:?} is taken"))
                }
                other => ApiError::from(other),
            })
    }

    /// The caller's projects and their role in each.
    pub async fn list(&self, caller: Caller) -> Result<Vec<(Project, Role)>, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.list_projects_for_user(caller.user).await }))
            .await?)
    }

    /// Renames the project.
    pub async fn update(
        &self,
        principal: impl Into<Principal>,
        slug: &str,
        name: &str,
    ) -> Result<Project, ApiError> {
        let (project, _) = self.authorize(principal, slug, Permission::Update).await?;
        let update = ProjectUpdate {
            name: Some(name.to_owned()),
        };
        Ok(self
            .store
            .with_retry(|tx| {
                let update = update.clone();
                Box::pin(async move { tx.update_project(project.id, &update).await })
            })
            .await?)
    }

    /// Deletes the project.
    pub async fn delete(
        &self,
        principal: impl Into<Principal>,
        slug: &str,
    ) -> Result<(), ApiError> {
        let (project, _) = self.authorize(principal, slug, Permission::Delete).await?;
        self.store
            .with_retry(|tx| Box::pin(async move { tx.delete_project(project.id).await }))
            .await?;
        self.changes.bump();
        Ok(())
    }

    /// The project's members.
    pub async fn members(
        &self,
        principal: impl Into<Principal>,
        slug: &str,
    ) -> Result<Vec<Member>, ApiError> {
        let (project, _) = self.authorize(principal, slug, Permission::View).await?;
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.list_members(project.id).await }))
            .await?)
    }

    /// Adds the user with `email` as `role`.
    pub async fn add_member(
        &self,
        caller: Caller,
        slug: &str,
        email: &str,
        role: Role,
    ) -> Result<UserId, ApiError> {
        let (project, own_role) = self
            .authorize(caller, slug, Permission::ManageMembers)
            .await?;
        only_owners_touch_owners(own_role, [role])?;
        let email = email.to_owned();
        self.store
            .with_retry(|tx| {
                let email = email.clone();
                Box::pin(async move {
                    let user = tx
                        .find_user_by_email(&email)
                        .await?
                        .ok_or(nexus_store::Error::NotFound { what: "user" })?;
                    tx.add_member(project.id, user.id, role).await?;
                    Ok(user.id)
                })
            })
            .await
            .map_err(|error| match error {
                nexus_store::Error::Conflict { .. } => ApiError::conflict("already a member"),
                other => ApiError::from(other),
            })
    }

    /// Changes a member's role.
    pub async fn set_role(
        &self,
        caller: Caller,
        slug: &str,
        member: UserId,
        role: Role,
    ) -> Result<(), ApiError> {
        let (project, own_role) = self
            .authorize(caller, slug, Permission::ManageMembers)
            .await?;
        let current = self.role_of(project.id, member).await?;
        only_owners_touch_owners(own_role, [current, role])?;
        Ok(self
            .store
            .with_retry(|tx| {
                Box::pin(async move { tx.set_member_role(project.id, member, role).await })
            })
            .await?)
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        caller: Caller,
        slug: &str,
        member: UserId,
    ) -> Result<(), ApiError> {
        let (project, own_role) = self
            .authorize(caller, slug, Permission::ManageMembers)
            .await?;
        let current = self.role_of(project.id, member).await?;
        only_owners_touch_owners(own_role, [current])?;
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.remove_member(project.id, member).await }))
            .await?)
    }

    async fn role_of(
        &self,
        project: nexus_store::ProjectId,
        member: UserId,
    ) -> Result<Role, ApiError> {
        self.store
            .with_retry(|tx| Box::pin(async move { tx.member_role(project, member).await }))
            .await?
            .ok_or_else(|| ApiError::not_found("project member"))
    }
}

fn only_owners_touch_owners(
    own_role: Role,
    roles: impl IntoIterator<Item = Role>,
) -> Result<(), ApiError> {
    if own_role != Role::Owner && roles.into_iter().any(|role| role == Role::Owner) {
        return Err(ApiError::forbidden(
            "only an owner may grant, change or remove the owner role",
        ));
    }
    Ok(())
}

/// First path segments the coordinator serves itself, so no project may be named after one
/// (projects own `/{project}/…` through the HTTP trigger). `v` followed by digits is reserved
/// for API versions as well.
const RESERVED_SLUGS: &[&str] = &[
    "api",
    "assets",
    "dashboard",
    "healthz",
    "metrics",
    "readyz",
    "static",
    "ws",
];

/// Whether `slug` is reserved: a first path segment the coordinator serves itself.
fn is_reserved(slug: &str) -> bool {
    let api_version = slug
        .strip_prefix('v')
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_digit()));
    api_version || RESERVED_SLUGS.contains(&slug)
}

/// Lowercase letters, digits and `-`, 1 to 63 characters, starting with a letter.
fn is_well_formed(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Whether a project may be named `slug` (so `/{slug}/…` is the HTTP trigger's).
pub(crate) fn is_project_name(slug: &str) -> bool {
    is_well_formed(slug) && !is_reserved(slug)
}

/// Project names appear in URLs: well formed, and not a path the coordinator serves itself.
fn validate_slug(slug: &str) -> Result<(), ApiError> {
    if is_reserved(slug) {
        return Err(ApiError::conflict(format!(
            "the project name {slug:?} is reserved: the coordinator serves /{slug}/ itself"
        )));
    }
    if is_well_formed(slug) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid project name {slug:?}: use 1 to 63 lowercase letters, digits and '-', starting with a letter"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_table_says() {
        use Permission::*;
        let expected = [
            (Role::Owner, [true, true, true, true, true]),
            (Role::Admin, [true, true, false, true, true]),
            (Role::Developer, [true, false, false, false, true]),
            (Role::Viewer, [true, false, false, false, false]),
        ];
        for (role, grants) in expected {
            for (permission, granted) in [View, Update, Delete, ManageMembers, Deploy]
                .into_iter()
                .zip(grants)
            {
                assert_eq!(allows(role, permission), granted, "{role} {permission:?}");
            }
        }
    }

    #[test]
    fn slugs_are_url_safe() {
        assert!(validate_slug("my-app-2").is_ok());
        for bad in ["", "2app", "My-App", "a b", "a/b", &"a".repeat(64)] {
            assert!(validate_slug(bad).is_err(), "{bad:?}");
        }
    }
}
