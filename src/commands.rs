//! The subcommands, one file each.

use clap::{CommandFactory as _, Parser, Subcommand};

mod account;
mod agent_actions;
mod agents;
mod audit;
mod build;
mod bundle;
mod coordinator;
mod deploy;
mod dev_certs;
mod functions;
mod invocations;
mod invoke;
mod keys;
mod login;
mod logs;
mod members;
mod new;
mod nodes;
mod output;
mod projects;
mod runtime_args;
mod schedules;
mod serve;
mod session;
mod sessions;
mod up;

/// SirsiNexus: run Spin apps on the edge and in the cloud.
#[derive(Debug, Parser)]
#[command(name = "nexus", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in this process, with a dev account and a Spin app deployed.
    Up(up::UpCommand),
    /// Serve one Spin app straight from the runtime, like `spin up` (no coordinator).
    Serve(serve::ServeCommand),
    /// Inspect the coordinator's audit log.
    Audit(audit::AuditCommand),
    /// Write a Spin app as the code of an AWS Lambda function or an Azure function app, served
    /// there by `nexus-edge lambda` or `nexus-edge azure`.
    Bundle(bundle::BundleCommand),
    /// Run the coordinator: its API and the HTTP trigger, with the runtime in process or
    /// edge nodes (`--cluster`).
    Coordinator(Box<coordinator::CoordinatorCommand>),
    /// Make a development trust domain: SPIFFE identities for the coordinator and edge nodes
    /// (mutual TLS) and an HTTPS certificate, under a dev CA.
    DevCerts(dev_certs::DevCertsCommand),
    /// List the cluster's edge nodes, or drain one.
    Nodes(nodes::NodesCommand),
    /// Start a Spin app from a template (Rust, spin-sdk): spin.toml, Cargo.toml, src/lib.rs.
    New(new::NewCommand),
    /// Build an app's components with the build commands in its spin.toml.
    Build(build::BuildCommand),
    /// Log in to a coordinator; the other commands then call it as you.
    Login(login::LoginCommand),
    /// End the session `nexus login` began.
    Logout(login::LogoutCommand),
    /// List, create or delete your projects.
    Projects(projects::ProjectsCommand),
    /// Deploy a Spin app (spin.toml and the files it names) as a function's next version.
    Deploy(deploy::DeployCommand),
    /// Run a function now through its HTTP trigger, or queue it with `--async`.
    Invoke(invoke::InvokeCommand),
    /// What the functions print, and their invocations as they finish (`--follow`).
    Logs(logs::LogsCommand),
    /// A project's asynchronous invocations and its dead-letter list (redrive, purge).
    Invocations(invocations::InvocationsCommand),
    /// List, create, show, suspend, resume or delete a project's agents.
    Agents(agents::AgentsCommand),
    /// Send a message to an agent and print its function's answer, or queue it with `--async`.
    Send(agent_actions::AgentSendCommand),
    /// Read and write an agent's key-value stores: list, get, put (with a TTL or a condition),
    /// delete.
    Context(agent_actions::ContextCommand),
    /// A project's functions: list, show, change settings, move, split or roll back aliases.
    Functions(functions::FunctionsCommand),
    /// List a project's members; add, change or remove them.
    Members(members::MembersCommand),
    /// List, create or revoke a project's API keys.
    Keys(keys::KeysCommand),
    /// List, create, show or delete a project's schedules (cron or one-shot invocations).
    Schedules(schedules::SchedulesCommand),
    /// List or revoke your login sessions.
    Sessions(sessions::SessionsCommand),
    /// Your own data: export it as JSON, or erase your account.
    Account(account::AccountCommand),
    /// Print a completion script for a shell: `nexus completions bash > /etc/bash_completion.d/nexus`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(command) => command.run().await,
            Command::Serve(command) => command.run().await,
            Command::Audit(command) => command.run().await,
            Command::Bundle(command) => command.run().await,
            Command::Coordinator(command) => command.run().await,
            Command::DevCerts(command) => command.run().await,
            Command::Nodes(command) => command.run().await,
            Command::New(command) => command.run().await,
            Command::Build(command) => command.run().await,
            Command::Login(command) => command.run().await,
            Command::Logout(command) => command.run().await,
            Command::Projects(command) => command.run().await,
            Command::Deploy(command) => command.run().await,
            Command::Invoke(command) => command.run().await,
            Command::Logs(command) => command.run().await,
            Command::Invocations(command) => command.run().await,
            Command::Agents(command) => command.run().await,
            Command::Send(command) => command.run().await,
            Command::Context(command) => command.run().await,
            Command::Functions(command) => command.run().await,
            Command::Members(command) => command.run().await,
            Command::Keys(command) => command.run().await,
            Command::Schedules(command) => command.run().await,
            Command::Sessions(command) => command.run().await,
            Command::Account(command) => command.run().await,
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "nexus",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
        }
    }
}
