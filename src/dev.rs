//! What `nexus up` sets up on first start so a new user can try everything at once: a dev
//! account and project, and a Spin app from local files deployed as a function, all through the
//! coordinator's own services (audited like any API call).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use nexus_coordinator::api::AppState;
use nexus_coordinator::auth::service::{Caller, ClientInfo, Tokens};
use nexus_coordinator::functions::{LIVE, MANIFEST, MoveAlias, Upload};
use nexus_coordinator::server::write_private;
use nexus_proto::ResolvedApp;
use nexus_proto::app::HttpRoute;
use serde::{Deserialize, Serialize};

/// The dev account's email.
pub const DEV_EMAIL: &str = "dev@nexus.local";
/// The dev project.
pub const DEV_PROJECT: &str = "dev";
/// The file under the state directory that keeps the dev account's password.
pub const DEV_CREDENTIALS: &str = "dev-user.json";

/// The dev account's credentials, as kept on disk (owner-only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevCredentials {
    /// The login email.
    pub email: String,
    /// The password, generated on first start.
    pub password: String,
}

/// A signed-in dev user with a project.
#[derive(Debug)]
pub struct DevAccess {
    /// How to sign in again.
    pub credentials: DevCredentials,
    /// A fresh session.
    pub tokens: Tokens,
    /// Who the tokens belong to.
    pub caller: Caller,
    /// The dev project's name.
    pub project: String,
    /// Whether the account was created by this call.
    pub created: bool,
}

/// Signs in the dev user, creating it and its project on first start. The password lives in
/// `<state_dir>/dev-user.json`, readable by its owner only.
pub async fn dev_access(state: &AppState, state_dir: &Path) -> anyhow::Result<DevAccess> {
    let path = state_dir.join(DEV_CREDENTIALS);
    let (credentials, created) = match std::fs::read(&path) {
        Ok(text) => (
            serde_json::from_slice(&text)
                .with_context(|| format!("{} is not valid; delete it", path.display()))?,
            false,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let credentials = DevCredentials {
                email: DEV_EMAIL.to_owned(),
                password: random_password()?,
            };
            state
                .auth
                .register(&credentials.email, "Developer", &credentials.password)
                .await
                .with_context(|| {
                    format!(
                        "cannot create the dev user {DEV_EMAIL} (its password file {} is gone; \
                         start with a fresh state directory)",
                        path.display()
                    )
                })?;
            write_private(&path, &serde_json::to_vec_pretty(&credentials)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            (credentials, true)
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    let tokens = state
        .auth
        .login(
            &credentials.email,
            &credentials.password,
            ClientInfo {
                user_agent: Some("nexus up".to_owned()),
                ip: None,
            },
        )
        .await
        .context("the dev user cannot sign in")?;
    let caller = state.auth.authenticate(&tokens.access_token).await?;
    if created {
        state
            .projects
            .create(caller, DEV_PROJECT, "Development")
            .await
            .context("cannot create the dev project")?;
    }
    Ok(DevAccess {
        credentials,
        tokens,
        caller,
        project: DEV_PROJECT.to_owned(),
        created,
    })
}

/// A deploy from local files.
#[derive(Debug)]
pub struct LocalDeploy {
    /// The function's name.
    pub function: String,
    /// The version now `live`.
    pub version: i64,
    /// `false` when the live version already ran exactly this app, so nothing was deployed.
    pub deployed: bool,
    /// `(route, component id)` of every public route.
    pub routes: Vec<(String, String)>,
}

/// Deploys the Spin app of `manifest` as function `function` of `project`, moving `live` to
/// it, unless the live version already runs exactly this app.
pub async fn deploy_manifest(
    state: &AppState,
    caller: Caller,
    project: &str,
    function: &str,
    manifest: &Path,
) -> anyhow::Result<LocalDeploy> {
    let (upload, app) = upload_of(manifest)?;
    let routes = public_routes(&app);
    let live = match state.functions.show(caller, project, function).await {
        Ok((_, versions, aliases)) => aliases
            .iter()
            .find(|alias| alias.name == LIVE && alias.version_b.is_none())
            .and_then(|alias| versions.into_iter().find(|v| v.version == alias.version_a)),
        Err(error) if error.status == http::StatusCode::NOT_FOUND => None,
        Err(error) => return Err(error.into()),
    };
    if let Some(live) = live
        && serde_json::from_value::<ResolvedApp>(live.spec)
            .ok()
            .as_ref()
            == Some(&app)
    {
        return Ok(LocalDeploy {
            function: function.to_owned(),
            version: live.version,
            deployed: false,
            routes,
        });
    }
    let deployed = state
        .functions
        .deploy(
            caller,
            project,
            function,
            upload,
            MoveAlias::To(LIVE.to_owned()),
        )
        .await
        .with_context(|| format!("cannot deploy {}", manifest.display()))?;
    // Deploying warms the version, as the deploy API does.
    if let Err(error) = state.dispatch.prepare(deployed.target).await {
        tracing::warn!(%error, "the new version failed to load");
    }
    Ok(LocalDeploy {
        function: function.to_owned(),
        version: deployed.version.version,
        deployed: true,
        routes,
    })
}

/// The upload the deploy API would get for `manifest`: the manifest and each component file,
/// named relative to the manifest's directory.
pub fn upload_of(manifest: &Path) -> anyhow::Result<(Upload, ResolvedApp)> {
    let loaded = nexus_manifest::load(manifest)
        .with_context(|| format!("failed to load {}", manifest.display()))?;
    let root = manifest
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .canonicalize()
        .with_context(|| format!("cannot resolve the directory of {}", manifest.display()))?;
    let mut files = vec![(
        MANIFEST.to_owned(),
        Bytes::from(
            std::fs::read(manifest)
                .with_context(|| format!("cannot read {}", manifest.display()))?,
        ),
    )];
    for path in loaded.artifacts.values() {
        let relative = path
            .canonicalize()
            .ok()
            .and_then(|path| path.strip_prefix(&root).ok().map(Path::to_path_buf))
            .with_context(|| {
                format!(
                    "{} is outside the app's directory {}; a deploy carries only files under it",
                    path.display(),
                    root.display()
                )
            })?;
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        files.push((relative.to_string_lossy().into_owned(), Bytes::from(bytes)));
    }
    Ok((Upload::Files(files), loaded.app))
}

/// `(route, component id)` of every public route, in manifest order.
pub fn public_routes(app: &ResolvedApp) -> Vec<(String, String)> {
    app.http_triggers
        .iter()
        .filter_map(|trigger| match &trigger.route {
            HttpRoute::Path(route) => Some((route.clone(), trigger.component.clone())),
            HttpRoute::Private => None,
        })
        .collect()
}

/// A function name from an app name: lowercase, runs of other characters as one dash.
pub fn function_name_of(app_name: &str) -> String {
    let mut name = String::with_capacity(app_name.len());
    for character in app_name.chars() {
        if character.is_ascii_alphanumeric() {
            name.push(character.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    let name = name.trim_start_matches(|c: char| c.is_ascii_digit());
    if name.is_empty() {
        "app".to_owned()
    } else {
        name.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned()
    }
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_become_function_names() {
        assert_eq!(function_name_of("nexus-examples"), "nexus-examples");
        assert_eq!(function_name_of("My App_2"), "my-app-2");
        assert_eq!(function_name_of("9lives"), "lives");
        assert_eq!(function_name_of("--"), "app");
    }
}
