//! A project's API keys (`nxk_…`): `/v1/projects/{p}/api-keys`. Managed by the project's
//! owners and admins, with a user's token.

use std::fmt;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result, Role};

/// An API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key id: what [`Client::revoke_api_key`] takes.
    pub id: String,
    /// Its label (the machine that uses it, say).
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// What it may do: `admin`, `developer` or `viewer`.
    pub role: Role,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last used (RFC 3339).
    pub last_used_at: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A new API key, with its secret: the only time the secret is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key itself, for [`Client::with_token`].
    pub secret: String,
}

/// The secret is a credential: `Debug` does not show it.
impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CreatedApiKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize)]
struct NewKey<'a> {
    name: &'a str,
    role: &'a Role,
}

impl Client {
    /// `POST /v1/projects/{project}/api-keys`: a new key with `role` (not `owner`).
    pub async fn create_api_key(
        &self,
        project: &str,
        name: &str,
        role: &Role,
    ) -> Result<CreatedApiKey> {
        let call = self.call(Method::POST, &["v1", "projects", project, "api-keys"]);
        self.send(call.json(&NewKey { name, role })).await?.json()
    }

    /// `GET /v1/projects/{project}/api-keys`: the project's keys, revoked ones included.
    pub async fn list_api_keys(&self, project: &str) -> Result<Vec<ApiKey>> {
        let call = self.call(Method::GET, &["v1", "projects", project, "api-keys"]);
        self.send(call).await?.json()
    }

    /// `DELETE /v1/projects/{project}/api-keys/{key}`: revokes a key; it authenticates nothing
    /// from the next request on.
    pub async fn revoke_api_key(&self, project: &str, key_id: &str) -> Result<()> {
        let segments = ["v1", "projects", project, "api-keys", key_id];
        self.send(self.call(Method::DELETE, &segments))
            .await?
            .done()
    }
}
