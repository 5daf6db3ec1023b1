//! Projects and their members: `/v1/projects` and `/v1/projects/{p}/members`.

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

open_enum! {
    /// What a member (or an API key) may do in a project.
    pub enum Role {
        /// Everything, including deleting the project and managing owners.
        Owner = "owner",
        /// Manages members, API keys and settings.
        Admin = "admin",
        /// Deploys and invokes functions, manages agents and schedules.
        Developer = "developer",
        /// Reads.
        Viewer = "viewer",
    }
}

/// A project, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The project id.
    pub id: String,
    /// The name in URLs (`/{name}/{function}`): lowercase letters, digits and `-`.
    pub name: String,
    /// The name for people.
    pub display_name: String,
    /// The caller's role in it.
    pub role: Role,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A member of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user's id: what [`Client::set_member_role`] and [`Client::remove_member`] take.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// The user's display name.
    pub display_name: String,
    /// The user's role in the project.
    pub role: Role,
}

/// The member [`Client::add_member`] added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedMember {
    /// The user's id.
    pub user_id: String,
    /// The role given.
    pub role: Role,
}

#[derive(Serialize)]
struct NewProject<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
struct ProjectChange<'a> {
    display_name: &'a str,
}

#[derive(Serialize)]
struct NewMember<'a> {
    email: &'a str,
    role: &'a Role,
}

#[derive(Serialize)]
struct RoleChange<'a> {
    role: &'a Role,
}

impl Client {
    /// `POST /v1/projects`: creates a project (the display name defaults to the name); the
    /// caller becomes its owner. Needs a user's token.
    pub async fn create_project(&self, name: &str, display_name: Option<&str>) -> Result<Project> {
        let call = self.call(Method::POST, &["v1", "projects"]);
        self.send(call.json(&NewProject { name, display_name }))
            .await?
            .json()
    }

    /// `GET /v1/projects`: the caller's projects, with the caller's role in each. Needs a
    /// user's token.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let call = self.call(Method::GET, &["v1", "projects"]);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}`: one project.
    pub async fn get_project(&self, project: &str) -> Result<Project> {
        let call = self.call(Method::GET, &["v1", "projects", project]);
        self.send(call).await?.json()
    }

    /// `PATCH /v1/projects/{project}`: changes its display name (owner, admin); its name,
    /// which is in URLs, never changes.
    pub async fn update_project(&self, project: &str, display_name: &str) -> Result<Project> {
        let call = self.call(Method::PATCH, &["v1", "projects", project]);
        self.send(call.json(&ProjectChange { display_name }))
            .await?
            .json()
    }

    /// `DELETE /v1/projects/{project}`: deletes the project (owner).
    pub async fn delete_project(&self, project: &str) -> Result<()> {
        let call = self.call(Method::DELETE, &["v1", "projects", project]);
        self.send(call).await?.done()
    }

    /// `GET /v1/projects/{project}/members`.
    pub async fn list_members(&self, project: &str) -> Result<Vec<Member>> {
        let call = self.call(Method::GET, &["v1", "projects", project, "members"]);
        self.send(call).await?.json()
    }

    /// `POST /v1/projects/{project}/members`: adds a registered user, by email, with `role`
    /// (owner, admin; only owners grant owner). Needs a user's token.
    pub async fn add_member(&self, project: &str, email: &str, role: &Role) -> Result<AddedMember> {
        let call = self.call(Method::POST, &["v1", "projects", project, "members"]);
        self.send(call.json(&NewMember { email, role }))
            .await?
            .json()
    }

    /// `PATCH /v1/projects/{project}/members/{user}`: changes a member's role (owner, admin;
    /// only owners touch owners). Needs a user's token.
    pub async fn set_member_role(&self, project: &str, user_id: &str, role: &Role) -> Result<()> {
        let segments = ["v1", "projects", project, "members", user_id];
        let call = self.call(Method::PATCH, &segments);
        self.send(call.json(&RoleChange { role })).await?.done()
    }

    /// `DELETE /v1/projects/{project}/members/{user}`: removes a member (owner, admin; only
    /// owners remove owners). Needs a user's token.
    pub async fn remove_member(&self, project: &str, user_id: &str) -> Result<()> {
        let segments = ["v1", "projects", project, "members", user_id];
        self.send(self.call(Method::DELETE, &segments))
            .await?
            .done()
    }
}
