//! `nexus deploy`: uploads a Spin app (`spin.toml` and the files it names) as the next version
//! of a function, with a progress bar for the upload and for the coordinator's checks and
//! compilation on a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use nexus_client::{DeployAlias, Upload};

use super::output;
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct DeployCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// The app's manifest.
    #[arg(long = "file", short = 'f', default_value = "spin.toml")]
    manifest: PathBuf,

    /// The function (default: from the app's name).
    #[arg(long)]
    function: Option<String>,

    /// The alias that moves to the new version.
    #[arg(long, default_value = "live", conflicts_with = "no_alias")]
    alias: String,

    /// Move no alias: the version is deployed but serves nothing until an alias names it.
    #[arg(long)]
    no_alias: bool,

    /// Print the coordinator's JSON.
    #[arg(long)]
    json: bool,
}

impl DeployCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let (upload, app) = nexus::dev::upload_of(&self.manifest)?;
        let function = self
            .function
            .clone()
            .unwrap_or_else(|| nexus::dev::function_name_of(&app.name));
        let files = match upload {
            nexus_coordinator::functions::Upload::Files(files) => files,
            _ => anyhow::bail!("{} did not load as an app", self.manifest.display()),
        };
        let alias = if self.no_alias {
            DeployAlias::Nothing
        } else if self.alias == "live" {
            DeployAlias::Live
        } else {
            DeployAlias::Named(self.alias.clone())
        };
        let client = self.access.client().await?;
        let shown = std::io::stderr().is_terminal() && !self.json;
        let uploaded = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&uploaded);
        let deploying = client.deploy_with_progress(
            &project,
            &function,
            Upload::Files(files),
            alias,
            move |sent, total| {
                if shown {
                    draw_upload(sent, total);
                }
                if sent >= total {
                    done.store(true, Ordering::Release);
                }
            },
        );
        let deployed = if shown {
            let checking = tokio::spawn(draw_checking(Arc::clone(&uploaded)));
            let deployed = deploying.await;
            checking.abort();
            eprintln!();
            deployed
        } else {
            deploying.await
        }
        .map_err(explain)
        .with_context(|| {
            format!(
                "deploying {} as {project}/{function}",
                self.manifest.display()
            )
        })?;
        if self.json {
            return output::json(&deployed);
        }
        let moved: Vec<&str> = deployed
            .aliases
            .iter()
            .map(|alias| alias.name.as_str())
            .collect();
        println!(
            "Deployed {project}/{function} version {}{}",
            deployed.version.version,
            if moved.is_empty() {
                String::from(" (no alias moved)")
            } else {
                format!(", now {}", moved.join(", "))
            }
        );
        let base = self.access.url().trim_end_matches('/');
        println!("  {base}/{project}/{function}/");
        Ok(())
    }
}

const BAR: usize = 30;

/// `upload [=====>    ] 45% 1.2/2.6 MB`, redrawn in place.
fn draw_upload(sent: u64, total: u64) {
    let fraction = if total == 0 {
        1.0
    } else {
        sent as f64 / total as f64
    };
    let filled = ((fraction * BAR as f64) as usize).min(BAR);
    let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
    eprint!(
        "\rupload  [{}{}] {:>3.0}% {:.1}/{:.1} MB",
        "=".repeat(filled),
        " ".repeat(BAR - filled),
        fraction * 100.0,
        mb(sent),
        mb(total)
    );
    let _ = std::io::stderr().flush();
}

/// Once the upload is out: the coordinator checks and compiles each component; a bar moving
/// back and forth with the time so far, until the answer comes.
async fn draw_checking(uploaded: Arc<AtomicBool>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut since = None;
    loop {
        ticks.tick().await;
        if !uploaded.load(Ordering::Acquire) {
            continue;
        }
        let started = *since.get_or_insert_with(|| {
            eprintln!();
            Instant::now()
        });
        let elapsed = started.elapsed();
        let step = (elapsed.as_millis() / 100) as usize % (2 * BAR);
        let at = if step < BAR { step } else { 2 * BAR - step - 1 };
        let mut bar = vec![' '; BAR];
        bar[at] = '#';
        eprint!(
            "\rcompile [{}] {:.1} s",
            bar.into_iter().collect::<String>(),
            elapsed.as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}
