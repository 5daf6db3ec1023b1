//! Deploys: `POST /v1/projects/{p}/functions/{f}/versions` with a component, a tar of a Spin
//! app, or the app's files as `multipart/form-data`, with progress reported as it uploads.

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderValue, Method};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::{Alias, Client, Result, Version};

/// What a deploy uploads. The coordinator resolves it into an immutable version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    /// One component (`application/wasm`), served on `/...`.
    Component(Bytes),
    /// A tar with `spin.toml` at its root and the files it references (`application/x-tar`).
    Tar(Bytes),
    /// `spin.toml` and each file it references, by path relative to it
    /// (`multipart/form-data`, one part per file named by its path).
    Files(Vec<(String, Bytes)>),
}

/// Which alias a deploy moves to the new version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeployAlias {
    /// `live` (a function's first version always becomes `live`).
    #[default]
    Live,
    /// This alias.
    Named(String),
    /// None, except `live` for a function's first version.
    Nothing,
}

/// What [`Client::deploy`] made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// The function.
    pub function: String,
    /// The new version.
    #[serde(flatten)]
    pub version: Version,
    /// The aliases the deploy moved to it.
    pub aliases: Vec<Alias>,
}

impl Upload {
    /// The body and its content type.
    fn encode(self) -> Result<(HeaderValue, Bytes)> {
        match self {
            Self::Component(bytes) => Ok((HeaderValue::from_static("application/wasm"), bytes)),
            Self::Tar(bytes) => Ok((HeaderValue::from_static("application/x-tar"), bytes)),
            Self::Files(files) => multipart(&files),
        }
    }
}

/// `files` as `multipart/form-data`, each part named (and file-named) by its path.
pub(crate) fn multipart(files: &[(String, Bytes)]) -> Result<(HeaderValue, Bytes)> {
    for (name, _) in files {
        if name.is_empty() || name.contains(['"', '\r', '\n', '\\']) {
            return Err(ClientError::InvalidRequest(format!(
                "a deployed file's path must be non-empty, without quotes, backslashes or line \
                 breaks: {name:?}"
            )));
        }
    }
    let boundary = boundary(files);
    let mut body = BytesMut::with_capacity(
        files
            .iter()
            .map(|(name, bytes)| bytes.len() + 2 * name.len() + boundary.len() + 128)
            .sum::<usize>()
            + boundary.len()
            + 8,
    );
    for (name, bytes) in files {
        body.put_slice(b"--");
        body.put_slice(boundary.as_bytes());
        body.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
        body.put_slice(name.as_bytes());
        body.put_slice(b"\"; filename=\"");
        body.put_slice(name.as_bytes());
        body.put_slice(b"\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        body.put_slice(bytes);
        body.put_slice(b"\r\n");
    }
    body.put_slice(b"--");
    body.put_slice(boundary.as_bytes());
    body.put_slice(b"--\r\n");
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .map_err(|_| ClientError::InvalidRequest("the multipart boundary".to_owned()))?;
    Ok((content_type, body.freeze()))
}

/// A boundary that occurs in no file, as RFC 2046 requires.
fn boundary(files: &[(String, Bytes)]) -> String {
    let occurs = |boundary: &str| {
        files.iter().any(|(_, bytes)| {
            bytes
                .windows(boundary.len())
                .any(|window| window == boundary.as_bytes())
        })
    };
    (0u64..)
        .map(|attempt| format!("nexus-client-boundary-{attempt:016x}"))
        .find(|boundary| !occurs(boundary))
        .unwrap_or_default()
}

impl Client {
    /// `POST /v1/projects/{project}/functions/{function}/versions`: deploys a new, immutable
    /// version (developer and up) and moves `alias` to it. The function is created by its
    /// first deploy. Within the client's upload time limit.
    pub async fn deploy(
        &self,
        project: &str,
        function: &str,
        upload: Upload,
        alias: DeployAlias,
    ) -> Result<Deployed> {
        self.deploy_inner(project, function, upload, alias, None)
            .await
    }

    /// [`Client::deploy`], calling `progress(sent_bytes, total_bytes)` as the upload is handed
    /// to the connection (last with `sent_bytes == total_bytes`, before the coordinator has
    /// read and checked it).
    pub async fn deploy_with_progress(
        &self,
        project: &str,
        function: &str,
        upload: Upload,
        alias: DeployAlias,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<Deployed> {
        self.deploy_inner(project, function, upload, alias, Some(Box::new(progress)))
            .await
    }

    async fn deploy_inner(
        &self,
        project: &str,
        function: &str,
        upload: Upload,
        alias: DeployAlias,
        progress: Option<crate::transport::Progress>,
    ) -> Result<Deployed> {
        let (content_type, body) = upload.encode()?;
        let segments = ["v1", "projects", project, "functions", function, "versions"];
        let alias = match alias {
            DeployAlias::Live => None,
            DeployAlias::Named(name) => Some(name),
            DeployAlias::Nothing => Some("none".to_owned()),
        };
        let mut call = self
            .call(Method::POST, &segments)
            .query_opt("alias", alias)
            .body(content_type, body)
            .timeout(self.upload_timeout);
        if let Some(progress) = progress {
            call = call.progress(progress);
        }
        self.send(call).await?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_are_named_by_path_and_the_boundary_avoids_the_content() {
        let clash = Bytes::from_static(b"x--nexus-client-boundary-0000000000000000y");
        let files = vec![
            (
                "spin.toml".to_owned(),
                Bytes::from_static(b"spin_manifest_version = 2"),
            ),
            ("static/a b.txt".to_owned(), clash),
        ];
        let (content_type, body) = multipart(&files).unwrap();
        let content_type = content_type.to_str().unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert_eq!(boundary, "nexus-client-boundary-0000000000000001");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(text.contains(
            "Content-Disposition: form-data; name=\"static/a b.txt\"; filename=\"static/a b.txt\""
        ));
        assert!(text.contains("\r\n\r\nspin_manifest_version = 2\r\n"));
        assert_eq!(text.matches(&format!("--{boundary}")).count(), 3);
    }

    #[test]
    fn part_names_that_would_break_the_header_are_refused() {
        for name in ["", "a\"b", "a\r\nb", "a\\b"] {
            let files = vec![(name.to_owned(), Bytes::new())];
            assert!(matches!(
                multipart(&files),
                Err(ClientError::InvalidRequest(_))
            ));
        }
    }
}
