//! `nexus build`: runs each component's build command, like `spin build`.
//!
//! Only the `[component.<id>.build]` tables are read here: `nexus_manifest` resolves an app to
//! run it (and needs the built files to exist), while building needs only the commands, in the
//! order the manifest lists the components.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Deserialize;

/// The Rust target of Spin components (WASIp2); installed first when a build command names it.
const WASM_TARGET: &str = "wasm32-wasip2";

/// The manifest's file name, looked for when `-f` names a directory.
const MANIFEST_FILE_NAME: &str = "spin.toml";

#[derive(Debug, Args)]
pub struct BuildCommand {
    /// The Spin manifest (spin.toml), or the directory that holds it.
    #[arg(
        short = 'f',
        long = "from",
        env = "NEXUS_MANIFEST",
        default_value = MANIFEST_FILE_NAME
    )]
    manifest: PathBuf,

    /// Build only this component (repeat for more). Default: every component.
    #[arg(
        short = 'c',
        long = "component",
        visible_alias = "component-id",
        value_name = "ID"
    )]
    components: Vec<String>,
}

/// One component of a manifest, as `nexus build` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentBuild {
    /// The component id (`[component.<id>]`).
    pub component: String,
    /// Its `[component.<id>.build]` table; `None` when it has none (nothing to build).
    pub build: Option<BuildConfig>,
}

/// A component's `[component.<id>.build]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// The commands, run one after another through `sh -c` (`command` is a string or a list).
    pub commands: Vec<String>,
    /// Where they run, relative to the manifest's directory; the manifest's directory when
    /// `None`.
    pub workdir: Option<PathBuf>,
}

impl BuildConfig {
    /// Whether a command builds for [`WASM_TARGET`], which must then be installed first.
    fn needs_wasm_target(&self) -> bool {
        self.commands
            .iter()
            .any(|command| command.contains(WASM_TARGET))
    }

    fn workdir_in(&self, manifest_dir: &Path) -> PathBuf {
        match &self.workdir {
            Some(workdir) => manifest_dir.join(workdir),
            None => manifest_dir.to_path_buf(),
        }
    }
}

/// The manifest version, read first: a version 1 manifest has a different layout.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(alias = "spin_version")]
    spin_manifest_version: Option<toml::Value>,
}

/// The parts of a manifest that building needs; everything else is ignored.
#[derive(Deserialize)]
struct RawManifest {
    /// Keyed with their position in the file, to build in manifest order (a TOML table
    /// deserializes sorted by key).
    #[serde(default)]
    component: BTreeMap<toml::Spanned<String>, RawComponent>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawComponent {
    build: Option<RawBuild>,
}

/// Spin's `ComponentBuildConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: RawCommands,
    workdir: Option<String>,
    /// For `spin watch`; accepted, not used.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted as Spin accepts it; only `spin watch` uses it"
    )]
    watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommands {
    One(String),
    Many(Vec<String>),
}

/// The components of a manifest (version 2) and their builds, in manifest order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBuilds {
    /// Every `[component.<id>]`, with or without a build.
    pub components: Vec<ComponentBuild>,
    /// Inline components (`component = { ... }` in a trigger) that have a build: Spin builds
    /// them under generated ids, `nexus build` does not.
    pub inline_builds: usize,
}

/// Reads the components of a manifest (version 2) and their builds, in manifest order.
pub fn parse_builds(manifest_text: &str) -> anyhow::Result<ManifestBuilds> {
    let probe: VersionProbe =
        toml::from_str(manifest_text).context("the manifest is not valid TOML")?;
    match probe.spin_manifest_version {
        Some(toml::Value::Integer(2)) => {}
        Some(other) => bail!(
            "unsupported manifest version `spin_manifest_version = {other}`: only version 2 \
             is supported"
        ),
        None => bail!("the manifest has no `spin_manifest_version` (version 2 is supported)"),
    }
    let raw: RawManifest = toml::from_str(manifest_text).context("invalid manifest")?;

    let inline_builds = raw
        .trigger
        .values()
        .filter_map(toml::Value::as_array)
        .flatten()
        .filter(|trigger| {
            trigger
                .get("component")
                .and_then(toml::Value::as_table)
                .is_some_and(|component| component.contains_key("build"))
        })
        .count();

    let mut components: Vec<_> = raw.component.into_iter().collect();
    components.sort_by_key(|(id, _)| id.span().start);
    let components = components
        .into_iter()
        .map(|(id, component)| ComponentBuild {
            component: id.into_inner(),
            build: component.build.map(|build| BuildConfig {
                commands: match build.command {
                    RawCommands::One(command) => vec![command],
                    RawCommands::Many(commands) => commands,
                },
                workdir: build.workdir.map(PathBuf::from),
            }),
        })
        .collect();
    Ok(ManifestBuilds {
        components,
        inline_builds,
    })
}

/// Keeps the components named in `wanted` (all when it is empty), in manifest order.
pub fn select(
    builds: Vec<ComponentBuild>,
    wanted: &[String],
) -> anyhow::Result<Vec<ComponentBuild>> {
    if wanted.is_empty() {
        return Ok(builds);
    }
    let known: BTreeSet<&str> = builds
        .iter()
        .map(|build| build.component.as_str())
        .collect();
    let unknown: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|id| !known.contains(id))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "no component {} in the manifest\n  hint: its components are {}",
            quoted_list(unknown.iter().copied()),
            quoted_list(known.iter().copied())
        );
    }
    Ok(builds
        .into_iter()
        .filter(|build| wanted.contains(&build.component))
        .collect())
}

fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the builds one after another, each command through `sh -c` in its working directory
/// with this process's standard streams, and stops at the first that fails.
pub fn run_builds(manifest_dir: &Path, builds: &[ComponentBuild]) -> anyhow::Result<()> {
    for ComponentBuild { component, build } in builds {
        let Some(build) = build else {
            println!("Component `{component}` has no build command: skipped");
            continue;
        };
        let workdir = build.workdir_in(manifest_dir);
        for command in &build.commands {
            println!("Building component `{component}` with `{command}`");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit())
                .status()
                .with_context(|| {
                    format!(
                        "failed to run the build command of component `{component}` in {}",
                        workdir.display()
                    )
                })?;
            if !status.success() {
                bail!("building component `{component}` failed ({status}): `{command}`");
            }
        }
    }
    Ok(())
}

/// Makes sure [`WASM_TARGET`] is installed for the toolchain that builds in `workdir` (its
/// `rust-toolchain.toml` may pick another one), when rustup manages the toolchains: without
/// the target, cargo fails with a message that does not say how to fix it.
fn ensure_wasm_target(workdir: &Path) -> anyhow::Result<()> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workdir)
        .stderr(Stdio::inherit())
        .output();
    let output = match listed {
        Ok(output) => output,
        // No rustup on PATH: the toolchain is managed some other way.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).context("failed to run `rustup target list --installed`"),
    };
    if !output.status.success() {
        // The build itself will say what is wrong with the toolchain.
        tracing::warn!(status = %output.status, "`rustup target list --installed` failed");
        return Ok(());
    }
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    println!("Installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(workdir)
        .status()
        .with_context(|| format!("failed to run `rustup target add {WASM_TARGET}`"))?;
    if !status.success() {
        bail!(
            "`rustup target add {WASM_TARGET}` failed ({status})\n  hint: install the target, \
             then run `nexus build` again"
        );
    }
    Ok(())
}

/// The manifest file `path` names: itself, or `spin.toml` in it when it is a directory.
fn manifest_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST_FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

/// Builds the components of the manifest at `manifest` named in `wanted` (all when empty).
pub fn build(manifest: &Path, wanted: &[String]) -> anyhow::Result<()> {
    let manifest = manifest_file(manifest);
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("failed to read {}", manifest.display()))?;
    let parsed = parse_builds(&text).with_context(|| format!("in {}", manifest.display()))?;
    if parsed.inline_builds > 0 {
        println!(
            "Note: {} inline component(s) in triggers have a build command, which `nexus build` \
             does not run; declare them as [component.<id>] to build them",
            parsed.inline_builds
        );
    }
    let builds = select(parsed.components, wanted)?;
    let manifest_dir = std::path::absolute(&manifest)
        .with_context(|| format!("failed to resolve {}", manifest.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();

    let target_workdirs: BTreeSet<PathBuf> = builds
        .iter()
        .filter_map(|component| component.build.as_ref())
        .filter(|build| build.needs_wasm_target())
        .map(|build| build.workdir_in(&manifest_dir))
        .collect();
    for workdir in &target_workdirs {
        ensure_wasm_target(workdir)?;
    }

    run_builds(&manifest_dir, &builds)?;
    println!("Finished building all components");
    Ok(())
}

impl BuildCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        // The builds block for minutes on child processes; keep them off the async workers.
        tokio::task::spawn_blocking(move || build(&self.manifest, &self.components))
            .await
            .context("the build task failed")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_COMPONENTS: &str = r#"
spin_manifest_version = 2

[application]
name = "two"

[[trigger.http]]
route = "/..."
component = "zeta"

[component.zeta]
source = "target/wasm32-wasip2/release/zeta.wasm"
[component.zeta.build]
command = "cargo build --target wasm32-wasip2 --release"
workdir = "zeta"
watch = ["src/**/*.rs"]

[component.alpha]
source = "alpha.wasm"
"#;

    #[test]
    fn builds_are_read_in_manifest_order_with_and_without_a_build_table() {
        let parsed = parse_builds(TWO_COMPONENTS).unwrap();
        assert_eq!(parsed.inline_builds, 0);
        let builds = parsed.components;
        assert_eq!(
            builds,
            [
                ComponentBuild {
                    component: "zeta".to_owned(),
                    build: Some(BuildConfig {
                        commands: vec!["cargo build --target wasm32-wasip2 --release".to_owned()],
                        workdir: Some(PathBuf::from("zeta")),
                    }),
                },
                ComponentBuild {
                    component: "alpha".to_owned(),
                    build: None,
                },
            ]
        );
        assert!(builds[0].build.as_ref().unwrap().needs_wasm_target());
    }

    #[test]
    fn a_list_of_commands_is_read_in_order() {
        let manifest = r#"
spin_manifest_version = 2
[application]
name = "list"
[component.web]
source = "web.wasm"
build = { command = ["npm install", "npm run build"] }
"#;
        let builds = parse_builds(manifest).unwrap().components;
        let build = builds[0].build.as_ref().unwrap();
        assert_eq!(build.commands, ["npm install", "npm run build"]);
        assert_eq!(build.workdir, None);
        assert!(!build.needs_wasm_target());
    }

    #[test]
    fn inline_components_with_a_build_are_counted_not_built() {
        let manifest = r#"
spin_manifest_version = 2
[application]
name = "inline"
[[trigger.http]]
route = "/a"
component = { source = "a.wasm", build = { command = "make" } }
[[trigger.http]]
route = "/b"
component = { source = "b.wasm" }
"#;
        let parsed = parse_builds(manifest).unwrap();
        assert_eq!(parsed.components, []);
        assert_eq!(parsed.inline_builds, 1);
    }

    #[test]
    fn a_manifest_without_components_has_nothing_to_build() {
        let manifest = "spin_manifest_version = 2\n[application]\nname = \"empty\"\n";
        assert_eq!(parse_builds(manifest).unwrap().components, []);
    }

    #[test]
    fn other_manifest_versions_and_unknown_build_fields_are_refused() {
        let version_1 =
            "spin_manifest_version = \"1\"\nname = \"old\"\n[[component]]\nid = \"a\"\n";
        let error = parse_builds(version_1).unwrap_err();
        assert!(error.to_string().contains("only version 2"), "{error:#}");

        let typo = "spin_manifest_version = 2\n[component.a]\nsource = \"a.wasm\"\n\
                    [component.a.build]\ncommand = \"make\"\nworkdri = \"a\"\n";
        let error = parse_builds(typo).unwrap_err();
        assert!(format!("{error:#}").contains("workdri"), "{error:#}");
    }

    #[test]
    fn selecting_keeps_manifest_order_and_refuses_unknown_ids() {
        let builds = parse_builds(TWO_COMPONENTS).unwrap().components;
        let all = select(builds.clone(), &[]).unwrap();
        assert_eq!(all, builds);
        let picked = select(builds.clone(), &["alpha".to_owned(), "zeta".to_owned()]).unwrap();
        assert_eq!(picked, builds);
        let one = select(builds.clone(), &["alpha".to_owned()]).unwrap();
        assert_eq!(one, builds[1..]);

        let error = select(builds, &["beta".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no component `beta`"), "{error}");
        assert!(error.contains("`alpha`, `zeta`"), "{error}");
    }

    fn write_manifest(dir: &Path, components: &str) -> PathBuf {
        let manifest = dir.join("spin.toml");
        let text = format!("spin_manifest_version = 2\n[application]\nname = \"t\"\n{components}");
        std::fs::write(&manifest, text).unwrap();
        manifest
    }

    #[test]
    fn commands_run_in_order_in_their_workdir_and_components_without_one_are_skipped() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::create_dir(temp.path().join("sub")).unwrap();
        let manifest = write_manifest(
            temp.path(),
            r#"
[component.first]
source = "first.wasm"
build = { command = ["echo one >> ../log", "echo two >> ../log"], workdir = "sub" }
[component.plain]
source = "plain.wasm"
[component.second]
source = "second.wasm"
build = { command = "echo three >> log" }
"#,
        );
        build(&manifest, &[]).unwrap();
        let log = std::fs::read_to_string(temp.path().join("log")).unwrap();
        assert_eq!(log, "one\ntwo\nthree\n");

        // A directory stands for the spin.toml in it.
        build(temp.path(), &["second".to_owned()]).unwrap();
        let log = std::fs::read_to_string(temp.path().join("log")).unwrap();
        assert_eq!(log, "one\ntwo\nthree\nthree\n");
    }

    #[test]
    fn a_failing_command_stops_the_build_with_an_error_naming_the_component() {
        let temp = tempfile::tempdir().unwrap();
        let manifest = write_manifest(
            temp.path(),
            r#"
[component.broken]
source = "broken.wasm"
build = { command = "exit 3" }
[component.after]
source = "after.wasm"
build = { command = "touch after-ran" }
"#,
        );
        let error = build(&manifest, &[]).unwrap_err().to_string();
        assert!(error.contains("component `broken`"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(!temp.path().join("after-ran").exists());
    }

    #[test]
    fn a_missing_workdir_is_an_error_naming_the_component() {
        let temp = tempfile::tempdir().unwrap();
        let manifest = write_manifest(
            temp.path(),
            "[component.lost]\nsource = \"l.wasm\"\nbuild = { command = \"true\", workdir = \"nowhere\" }\n",
        );
        let error = format!("{:#}", build(&manifest, &[]).unwrap_err());
        assert!(error.contains("component `lost`"), "{error}");
        assert!(error.contains("nowhere"), "{error}");
    }
}
