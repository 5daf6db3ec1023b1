//! `nexus login` and `nexus logout`: a session with a coordinator, kept for the other commands
//! (see [`super::session`]).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, anyhow};
use clap::Args;

use super::session::{Access, Credentials, Login, explain};

#[derive(Debug, Args)]
pub struct LoginCommand {
    #[command(flatten)]
    access: Access,

    /// The account's email (asked for when not given).
    #[arg(long, env = "NEXUS_EMAIL")]
    email: Option<String>,

    /// Read the password from standard input (one line) instead of asking for it.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutCommand {
    #[command(flatten)]
    access: Access,
}

impl LoginCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let email = match self.email {
            Some(email) => email,
            None => ask("Email: ", false)?,
        };
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else if let Ok(password) = std::env::var("NEXUS_PASSWORD") {
            password
        } else {
            ask("Password: ", true)?
        };
        let client = self.access.anonymous()?;
        let tokens = client.login(&email, &password).await.map_err(explain)?;
        let mut credentials = Credentials::load()?;
        credentials.insert(self.access.url(), Login::of(&email, &tokens));
        credentials.save()?;
        println!("Logged in to {} as {email}", self.access.url());
        Ok(())
    }
}

impl LogoutCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let mut credentials = Credentials::load()?;
        let Some(login) = credentials.remove(self.access.url()) else {
            println!("Not logged in to {}", self.access.url());
            return Ok(());
        };
        // The session ends at the coordinator too; the login is forgotten here whatever it says.
        let ended = self
            .access
            .anonymous()?
            .with_token(&login.access_token)
            .logout()
            .await;
        credentials.save()?;
        if let Err(error) = ended {
            eprintln!("The coordinator did not end the session: {error}");
        }
        println!("Logged out of {}", self.access.url());
        Ok(())
    }
}

/// Asks `prompt` on the terminal; `secret` answers are not echoed.
fn ask(prompt: &str, secret: bool) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(anyhow!(
            "{} is needed and standard input is not a terminal\n  hint: pass --email, and the password with --password-stdin or NEXUS_PASSWORD",
            prompt.trim_end_matches([':', ' '])
        ));
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if secret {
        echo(false);
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if secret {
        echo(true);
        eprintln!();
    }
    read.context("cannot read the answer")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
