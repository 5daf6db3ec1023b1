//! `nexus dev-certs`: a development trust domain for the cluster's mutual TLS, in the layout
//! SPIRE's helper writes, and a certificate for the API's HTTPS. Run again, it issues new
//! certificates under the same CA, which running processes pick up: a rotation.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use nexus_identity::dev::{DevAuthority, SvidSpec};

/// `nexus dev-certs`
#[derive(Debug, Args)]
pub struct DevCertsCommand {
    /// Where the CA and the identities go: `ca.pem`, `coordinator/`, `edge/<node>/`, `https/`.
    #[arg(long, default_value = ".nexus/certs")]
    dir: PathBuf,
    /// The trust domain.
    #[arg(long, default_value = "nexus.local")]
    trust_domain: String,
    /// An edge node to make an identity for; repeatable.
    #[arg(long = "node", default_values_t = ["edge-a".to_owned()])]
    nodes: Vec<String>,
    /// A name the HTTPS certificate is for (DNS name or IP address); repeatable.
    #[arg(long = "https-name", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
    https_names: Vec<String>,
}

impl DevCertsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let authority = DevAuthority::open_or_create(&self.dir, &self.trust_domain)
            .context("failed to open or create the dev CA")?;
        let coordinator_dir = self.dir.join("coordinator");
        let coordinator = authority.id("/coordinator")?;
        authority.write_svid(&coordinator_dir, &SvidSpec::for_id(&coordinator))?;
        println!("{coordinator}: {}", coordinator_dir.display());
        for node in &self.nodes {
            let dir = self.dir.join("edge").join(node);
            let id = authority.id(&format!("/edge/{node}"))?;
            authority.write_svid(&dir, &SvidSpec::for_id(&id))?;
            println!("{id}: {}", dir.display());
        }
        let https = authority.write_https(&self.dir.join("https"), &self.https_names)?;
        println!(
            "HTTPS ({}): {}",
            self.https_names.join(", "),
            https.certificate.display()
        );
        println!();
        println!(
            "nexus coordinator --cluster --identity-dir {} --tls-certificate {} --tls-key {}",
            coordinator_dir.display(),
            https.certificate.display(),
            https.key.display()
        );
        if let Some(node) = self.nodes.first() {
            println!(
                "nexus-edge --coordinator https://127.0.0.1:7443 --identity-dir {} --token …",
                self.dir.join("edge").join(node).display()
            );
        }
        println!("Clients trust {}", self.dir.join("ca.pem").display());
        Ok(())
    }
}
