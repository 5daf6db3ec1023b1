//! `nexus bundle`: a Spin app as the code of a Lambda function or an Azure function app.

use std::path::PathBuf;

use clap::Args;
use nexus::bundle::{BundleOptions, BundleTarget, write_bundle};

#[derive(Debug, Args)]
pub struct BundleCommand {
    /// The Spin manifest (spin.toml).
    #[arg(
        short = 'f',
        long = "from",
        env = "NEXUS_MANIFEST",
        default_value = "spin.toml"
    )]
    manifest: PathBuf,

    /// The directory to write (new or empty).
    #[arg(short, long)]
    out: PathBuf,

    /// The cloud to lay the bundle out for.
    #[arg(long = "for", value_enum)]
    target: BundleTarget,

    /// The `nexus-edge` binary to include, built for the cloud's machines (on Lambda it
    /// becomes `bootstrap`).
    #[arg(long)]
    edge_binary: Option<PathBuf>,

    /// The tenant whose key-value stores the app opens; the app's name by default.
    #[arg(long)]
    namespace: Option<String>,

    /// The deployment id invocations must name; the digest of the app record by default.
    #[arg(long)]
    deployment: Option<String>,
}

impl BundleCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let options = BundleOptions {
            target: self.target,
            deployment: self.deployment,
            namespace: self.namespace,
            edge_binary: self.edge_binary,
        };
        let bundle = write_bundle(&self.manifest, &self.out, &options)?;
        println!(
            "Bundled {} (deployment {}, {} components) into {}",
            bundle.app.name,
            bundle.deployment,
            bundle.app.components.len(),
            self.out.display()
        );
        if options.edge_binary.is_none() {
            println!("Add the nexus-edge binary with --edge-binary, or copy it in yourself.");
        }
        Ok(())
    }
}
