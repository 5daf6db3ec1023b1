//! Projects (the tenants) and their members, each with one [`Role`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{Error, ProjectId, Result, Tx, UserId};

/// A member's (or an API key's) role in a project, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, including deleting the project and managing owners.
    Owner,
    /// Manages members and settings.
    Admin,
    /// Deploys and invokes functions.
    Developer,
    /// Reads.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Self; 4] = [Self::Owner, Self::Admin, Self::Developer, Self::Viewer];

    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| Error::Invalid {
                what: "role",
                reason: format!("{text:?} is not owner, admin, developer or viewer"),
            })
    }
}

pub(crate) fn stored_role(table: &'static str, text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| Error::corrupt(table, format!("unknown role {text:?}")))
}

/// A project as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    /// The project's id.
    pub id: ProjectId,
    /// Unique, used in URLs.
    pub slug: String,
    /// Shown to people.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last updated.
    pub updated_at: DateTime<Utc>,
}

/// What [`Tx::create_project`] needs.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Unique across the coordinator.
    pub slug: String,
    /// Shown to people.
    pub name: String,
}

/// The fields [`Tx::update_project`] may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    /// A new display name.
    pub name: Option<String>,
}

/// A member of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The project.
    pub project_id: ProjectId,
    /// The user.
    pub user_id: UserId,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    pub display_name: String,
    /// The user's role in the project.
    pub role: Role,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    project_id: ProjectId,
    user_id: UserId,
    email: String,
    display_name: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for Member {
    type Error = Error;

    fn try_from(row: MemberRow) -> Result<Self> {
        Ok(Self {
            project_id: row.project_id,
            user_id: row.user_id,
            email: row.email,
            display_name: row.display_name,
            role: stored_role("project_members", &row.role)?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ProjectWithRoleRow {
    #[sqlx(flatten)]
    project: Project,
    role: String,
}

/// A project and, if the user is a member, the user's role.
#[derive(sqlx::FromRow)]
struct ProjectAndRoleRow {
    #[sqlx(flatten)]
    project: Project,
    role: Option<String>,
}

macro_rules! select_projects {
    ($condition:literal) => {
        concat!(
            "SELECT id, slug, name, created_at, updated_at FROM projects ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Creates a project with `owner` as its first owner. [`Error::Conflict`] if the slug is
    /// taken, [`Error::NotFound`] if the owner does not exist.
    pub async fn create_project(
        &mut self,
        new_project: &NewProject,
        owner: UserId,
    ) -> Result<Project> {
        // Fails with NotFound before the insert rather than with a foreign-key error after.
        self.get_user(owner).await?;
        let created_at = now();
        let project = Project {
            id: ProjectId::new(),
            slug: new_project.slug.clone(),
            name: new_project.name.clone(),
            created_at,
            updated_at: created_at,
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO projects (id, slug, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(project.id)
        .bind(&project.slug)
        .bind(&project.name)
        .bind(created_at)
        .execute(conn)
        .await
        .map(drop))?;
        self.insert_member(project.id, owner, Role::Owner).await?;
        Ok(project)
    }

    /// The project with this id.
    pub async fn get_project(&mut self, id: ProjectId) -> Result<Project> {
        let project: Option<Project> = on_tx!(self, conn => sqlx::query_as(
            select_projects!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        project.ok_or_else(|| Error::not_found("project"))
    }

    /// The project with this slug.
    pub async fn get_project_by_slug(&mut self, slug: &str) -> Result<Project> {
        let project: Option<Project> = on_tx!(self, conn => sqlx::query_as(
            select_projects!("WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(conn)
        .await)?;
        project.ok_or_else(|| Error::not_found("project"))
    }

    /// The project `slug` and `user_id`'s role in it (`None` when not a member), read at once.
    /// [`Error::NotFound`] if there is no such project.
    pub async fn get_project_and_role(
        &mut self,
        slug: &str,
        user_id: UserId,
    ) -> Result<(Project, Option<Role>)> {
        let row: Option<ProjectAndRoleRow> = on_tx!(self, conn => sqlx::query_as(
            "SELECT p.id, p.slug, p.name, p.created_at, p.updated_at, m.role \
             FROM projects p LEFT JOIN project_members m \
             ON m.project_id = p.id AND m.user_id = $2 WHERE p.slug = $1",
        )
        .bind(slug)
        .bind(user_id)
        .fetch_optional(conn)
        .await)?;
        let row = row.ok_or_else(|| Error::not_found("project"))?;
        let role = row
            .role
            .map(|role| stored_role("project_members", &role))
            .transpose()?;
        Ok((row.project, role))
    }

    /// The projects `user_id` is a member of, with the user's role, by slug.
    pub async fn list_projects_for_user(
        &mut self,
        user_id: UserId,
    ) -> Result<Vec<(Project, Role)>> {
        let rows: Vec<ProjectWithRoleRow> = on_tx!(self, conn => sqlx::query_as(
            "SELECT p.id, p.slug, p.name, p.created_at, p.updated_at, m.role \
             FROM projects p JOIN project_members m ON m.project_id = p.id \
             WHERE m.user_id = $1 ORDER BY p.slug",
        )
        .bind(user_id)
        .fetch_all(conn)
        .await)?;
        rows.into_iter()
            .map(|row| Ok((row.project, stored_role("project_members", &row.role)?)))
            .collect()
    }

    /// Applies `update` and returns the project as it now is.
    pub async fn update_project(
        &mut self,
        id: ProjectId,
        update: &ProjectUpdate,
    ) -> Result<Project> {
        let project: Option<Project> = on_tx!(self, conn => sqlx::query_as(
            "UPDATE projects SET name = COALESCE($1, name), updated_at = $2 WHERE id = $3 \
             RETURNING id, slug, name, created_at, updated_at",
        )
        .bind(&update.name)
        .bind(now())
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        project.ok_or_else(|| Error::not_found("project"))
    }

    /// Deletes the project and, by cascade, its members, keys, functions, agents and
    /// invocations. Audit entries stay.
    pub async fn delete_project(&mut self, id: ProjectId) -> Result<()> {
        let deleted = on_tx!(self, conn => sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|result| result.rows_affected()))?;
        if deleted == 0 {
            return Err(Error::not_found("project"));
        }
        Ok(())
    }

    /// Adds a member. [`Error::Conflict`] if the user already is one, [`Error::NotFound`] if
    /// the project or the user does not exist.
    pub async fn add_member(
        &mut self,
        project_id: ProjectId,
        user_id: UserId,
        role: Role,
    ) -> Result<()> {
        self.get_project(project_id).await?;
        self.get_user(user_id).await?;
        self.insert_member(project_id, user_id, role).await
    }

    /// Changes a member's role. Refuses ([`Error::Conflict`]) to demote the last owner.
    pub async fn set_member_role(
        &mut self,
        project_id: ProjectId,
        user_id: UserId,
        role: Role,
    ) -> Result<()> {
        let current = self
            .member_role(project_id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("project member"))?;
        if current == Role::Owner && role != Role::Owner {
            self.ensure_another_owner(project_id).await?;
        }
        on_tx!(self, conn => sqlx::query(
            "UPDATE project_members SET role = $1 WHERE project_id = $2 AND user_id = $3",
        )
        .bind(role.as_str())
        .bind(project_id)
        .bind(user_id)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Removes a member. Refuses ([`Error::Conflict`]) to remove the last owner.
    pub async fn remove_member(&mut self, project_id: ProjectId, user_id: UserId) -> Result<()> {
        let current = self
            .member_role(project_id, user_id)
            .await?
            .ok_or_else(|| Error::not_found("project member"))?;
        if current == Role::Owner {
            self.ensure_another_owner(project_id).await?;
        }
        on_tx!(self, conn => sqlx::query(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The project's members, by email.
    pub async fn list_members(&mut self, project_id: ProjectId) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow> = on_tx!(self, conn => sqlx::query_as(
            "SELECT m.project_id, m.user_id, u.email, u.display_name, m.role, m.created_at \
             FROM project_members m JOIN users u ON u.id = m.user_id \
             WHERE m.project_id = $1 ORDER BY u.email",
        )
        .bind(project_id)
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// The user's role in the project, `None` for a non-member (or a missing project).
    pub async fn member_role(
        &mut self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> Result<Option<Role>> {
        let role: Option<String> = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await)?;
        role.map(|role| stored_role("project_members", &role))
            .transpose()
    }

    async fn insert_member(
        &mut self,
        project_id: ProjectId,
        user_id: UserId,
        role: Role,
    ) -> Result<()> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now())
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }

    /// [`Error::Conflict`] unless the project has at least two owners. Under SERIALIZABLE,
    /// two transactions each removing "the other" owner cannot both commit.
    async fn ensure_another_owner(&mut self, project_id: ProjectId) -> Result<()> {
        let owners: i64 = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members WHERE project_id = $1 AND role = 'owner'",
        )
        .bind(project_id)
        .fetch_one(conn)
        .await)?;
        if owners < 2 {
            return Err(Error::Conflict {
                message: "a project keeps at least one owner".to_owned(),
            });
        }
        Ok(())
    }
}
