//! A Spin app as a cloud bundle (see [`nexus_proto::cloud`]): what `nexus-edge lambda`,
//! `nexus-edge azure` and `nexus-edge cloud-run` serve. `nexus bundle` writes one; zipped, it
//! is the code of a Lambda function or an Azure function app; copied into an image, a Cloud Run
//! service.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nexus_edge::cloud::azure::{FUNCTION_JSON, FUNCTION_NAME, HOST_JSON};
use nexus_proto::Digest;
use nexus_proto::cloud::{BUNDLE_MANIFEST, BundleManifest, blob_path};

/// The cloud a bundle is laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BundleTarget {
    /// An AWS Lambda custom runtime: the edge binary is the `bootstrap`.
    Lambda,
    /// An Azure Functions custom handler: `host.json`, `nexus/function.json` and `nexus-edge`.
    Azure,
    /// A Cloud Run service: the app and `nexus-edge`, run as `nexus-edge cloud-run` (an image
    /// from `infra/docker/Dockerfile`'s `nexus-edge` target with the bundle copied in).
    CloudRun,
}

/// What to write.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The cloud.
    pub target: BundleTarget,
    /// The deployment id; the digest of the app record by default.
    pub deployment: Option<String>,
    /// The tenant of the app's key-value stores; the app's name by default. A coordinator
    /// placing an app in the cloud names its project here, so agents keep their context.
    pub namespace: Option<String>,
    /// The `nexus-edge` binary to include (built for the cloud's machines); none: the bundle
    /// holds the app only.
    pub edge_binary: Option<PathBuf>,
}

/// Writes the app of `manifest` (a `spin.toml`) into the empty or new directory `out`.
pub fn write_bundle(
    manifest: &Path,
    out: &Path,
    options: &BundleOptions,
) -> anyhow::Result<BundleManifest> {
    let loaded = nexus_manifest::load(manifest)
        .with_context(|| format!("failed to load {}", manifest.display()))?;
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("failed to read {}", out.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} is not empty; bundle into a new directory",
            out.display()
        );
    }
    for (digest, path) in &loaded.artifacts {
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        if Digest::of(&bytes) != *digest {
            anyhow::bail!("{} changed while it was being bundled", path.display());
        }
        write_file(&out.join(blob_path(digest)), &bytes)?;
    }
    let record = serde_json::to_vec(&loaded.app).context("failed to encode the app record")?;
    let bundle = BundleManifest {
        deployment: options
            .deployment
            .clone()
            .unwrap_or_else(|| Digest::of(&record).to_string()),
        namespace: options
            .namespace
            .clone()
            .unwrap_or_else(|| loaded.app.name.clone()),
        app: loaded.app,
    };
    let encoded =
        serde_json::to_vec_pretty(&bundle).context("failed to encode the bundle manifest")?;
    write_file(&out.join(BUNDLE_MANIFEST), &encoded)?;
    let executable = match options.target {
        BundleTarget::Lambda => "bootstrap",
        BundleTarget::Azure => {
            write_file(&out.join("host.json"), HOST_JSON.as_bytes())?;
            write_file(
                &out.join(FUNCTION_NAME).join("function.json"),
                FUNCTION_JSON.as_bytes(),
            )?;
            "nexus-edge"
        }
        BundleTarget::CloudRun => "nexus-edge",
    };
    if let Some(binary) = &options.edge_binary {
        let target = out.join(executable);
        std::fs::copy(binary, &target)
            .with_context(|| format!("failed to copy {}", binary.display()))?;
        make_executable(&target)?;
    }
    Ok(bundle)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("failed to write {}", path.display()))
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make {} executable", path.display()))
}
