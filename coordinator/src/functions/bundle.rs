//! An uploaded app: `spin.toml` and the files it references, from a tar, from the parts of a
//! multipart body, or a single component wrapped as a one-component app. Names are checked
//! before anything touches the disk, and the manifest is resolved by `nexus-manifest` in a
//! private temporary directory holding only the uploaded files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use nexus_proto::{Digest, ResolvedApp};

use super::DeployLimits;
use crate::error::ApiError;

/// The manifest's name in an upload.
pub const MANIFEST: &str = "spin.toml";

/// What a deploy request carries.
#[derive(Debug)]
pub enum Upload {
    /// A tar with `spin.toml` at its root and the files it references.
    Tar(Bytes),
    /// Named files: `spin.toml` and one per referenced file, named by its relative path.
    Files(Vec<(String, Bytes)>),
    /// One component (or core module), served on every path (`/...`).
    Component(Bytes),
}

/// The manifest and files of an upload, by normalized relative path.
#[derive(Debug)]
pub(super) struct Bundle {
    manifest: Bytes,
    files: BTreeMap<PathBuf, Bytes>,
}

/// A resolved app and the bytes of each of its components, by digest.
pub(super) type ResolvedBundle = (ResolvedApp, BTreeMap<Digest, Bytes>);

impl Bundle {
    /// Unpacks `upload`, refusing unsafe names, duplicates, and files over the limits.
    pub(super) fn unpack(
        upload: Upload,
        function: &str,
        limits: &DeployLimits,
    ) -> Result<Self, ApiError> {
        let files = match upload {
            Upload::Tar(bytes) => untar(&bytes, limits)?,
            Upload::Files(files) => files,
            Upload::Component(bytes) => {
                let source = format!("{function}.wasm");
                let manifest = format!(
                    "spin_manifest_version = 2\n\n[application]\nname = \"{function}\"\n\n\
                     [[trigger.http]]\nroute = \"/...\"\ncomponent = \"{function}\"\n\n\
                     [component.{function}]\nsource = \"{source}\"\n"
                );
                vec![
                    (MANIFEST.to_owned(), Bytes::from(manifest)),
                    (source, bytes),
                ]
            }
        };
        let mut manifest = None;
        let mut by_path = BTreeMap::new();
        for (name, bytes) in files {
            let path = relative_path(&name)?;
            let limit = if path == Path::new(MANIFEST) {
                limits.max_manifest_bytes
            } else {
                limits.max_component_bytes
            };
            if bytes.len() > limit {
                return Err(ApiError::too_large(format!(
                    "`{name}` is {} bytes, more than the limit of {limit} bytes",
                    bytes.len()
                )));
            }
            if path == Path::new(MANIFEST) {
                if manifest.replace(bytes).is_some() {
                    return Err(ApiError::bad_request(format!("`{MANIFEST}` appears twice")));
                }
            } else if by_path.insert(path, bytes).is_some() {
                return Err(ApiError::bad_request(format!("`{name}` appears twice")));
            }
        }
        let manifest = manifest.ok_or_else(|| {
            ApiError::bad_request(format!("the upload has no `{MANIFEST}` at its root"))
        })?;
        Ok(Self {
            manifest,
            files: by_path,
        })
    }

    /// Resolves the manifest against the uploaded files only. Blocks on the file system.
    pub(super) fn resolve(self) -> Result<ResolvedBundle, ApiError> {
        let directory = tempfile::tempdir().map_err(|error| ApiError::internal(&error))?;
        let root = directory
            .path()
            .canonicalize()
            .map_err(|error| ApiError::internal(&error))?;
        std::fs::write(root.join(MANIFEST), &self.manifest)
            .map_err(|error| ApiError::internal(&error))?;
        for (path, bytes) in &self.files {
            let target = root.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|error| ApiError::internal(&error))?;
            }
            std::fs::write(&target, bytes).map_err(|error| ApiError::internal(&error))?;
        }
        let loaded = nexus_manifest::load_confined(&root.join(MANIFEST))
            .map_err(|error| ApiError::bad_request(without_root(&error, &root)))?;
        let mut components = BTreeMap::new();
        for (digest, path) in loaded.artifacts {
            // The loader refused sources leading out of `root` before reading them; what is
            // left must still be a file of the upload, not a directory or something unnamed.
            let bytes = path
                .canonicalize()
                .ok()
                .and_then(|path| path.strip_prefix(&root).ok().map(Path::to_path_buf))
                .and_then(|relative| self.files.get(&relative))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "a component source is not a file of the upload: {}",
                        path.strip_prefix(&root).unwrap_or(&path).display()
                    ))
                })?;
            components.insert(digest, bytes.clone());
        }
        Ok((loaded.app, components))
    }
}

/// The manifest loader's error and its causes, with the temporary directory left out so that
/// paths read as they were uploaded.
fn without_root(error: &nexus_manifest::Error, root: &Path) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message.replace(&format!("{}/", root.display()), "")
}

/// A name from the upload as a path below the app's root: relative, no `..`, no empty name.
/// `./` prefixes are dropped, as `tar -C app -cf - .` writes them.
fn relative_path(name: &str) -> Result<PathBuf, ApiError> {
    let refuse = || {
        ApiError::bad_request(format!(
            "`{name}` is not a relative path inside the app (absolute paths and `..` are refused)"
        ))
    };
    if name.contains('\\') || name.contains('\0') {
        return Err(refuse());
    }
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(refuse());
            }
        }
    }
    if path.as_os_str().is_empty() {
        return Err(refuse());
    }
    Ok(path)
}

/// The regular files of a tar. Links and special files are refused: they could point outside
/// the app.
fn untar(bytes: &[u8], limits: &DeployLimits) -> Result<Vec<(String, Bytes)>, ApiError> {
    let invalid = |error: std::io::Error| ApiError::bad_request(format!("invalid tar: {error}"));
    let mut archive = tar::Archive::new(bytes);
    let mut files = Vec::new();
    for entry in archive.entries().map_err(invalid)? {
        let entry = entry.map_err(invalid)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type.is_dir() {
            relative_path(&name).or_else(|error| {
                // `tar -cf - .` archives the root itself as `./`.
                if Path::new(&name)
                    .components()
                    .all(|c| c == Component::CurDir)
                {
                    Ok(PathBuf::new())
                } else {
                    Err(error)
                }
            })?;
            continue;
        }
        if !entry_type.is_file() {
            return Err(ApiError::bad_request(format!(
                "tar entry `{name}` is not a regular file or directory (links are refused)"
            )));
        }
        let size = entry.header().size().map_err(invalid)?;
        // The largest allowed file plus one byte is enough to report it as too large.
        let cap = limits.max_component_bytes.max(limits.max_manifest_bytes) as u64 + 1;
        let mut contents = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
        entry
            .take(cap)
            .read_to_end(&mut contents)
            .map_err(invalid)?;
        files.push((name, Bytes::from(contents)));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8 (fuzzing): sources outside the upload were read before being refused, so
    /// `/dev/zero` ran the coordinator out of memory and a missing file's error told which
    /// files the host has.
    #[test]
    fn sources_outside_the_upload_are_refused_unread() {
        for source in ["/dev/zero", "/no/such/file", "../../etc/passwd"] {
            let manifest = format!(
                "spin_manifest_version = 2\n[application]\nname = \"a\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"a\"\n\
                 [component.a]\nsource = {source:?}\n"
            );
            let upload = Upload::Files(vec![(MANIFEST.to_owned(), Bytes::from(manifest))]);
            let error = Bundle::unpack(upload, "a", &DeployLimits::default())
                .and_then(Bundle::resolve)
                .expect_err(source);
            assert_eq!(error.status, http::StatusCode::BAD_REQUEST, "{source}");
            assert!(
                error.message.contains("outside the app"),
                "{source}: {}",
                error.message
            );
        }
    }

    #[test]
    fn names_stay_inside_the_app() {
        assert_eq!(
            relative_path("./target/app.wasm").unwrap(),
            Path::new("target/app.wasm")
        );
        for bad in ["../x.wasm", "a/../../x", "/etc/passwd", "", ".", "a\\b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
