//! The client commands of `shelf`, one module per command group, all built on `shelf-client`.
//! Every command takes `--json` (machine-readable output on stdout) and `--profile`.

mod account;
mod devices;
mod files;
mod library;
mod output;
mod profile;
mod sync;

use clap::Subcommand;

pub use profile::Profile;

/// What every client command gets: the profile and the output format.
pub struct Context {
    pub profile: Profile,
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create an account on a Shelf server.
    Register(account::RegisterArgs),
    /// Sign this profile in as a device of an account.
    Login(account::LoginArgs),
    /// End this device's session (the local library and unsent edits stay).
    Logout,
    /// List the materials of the local library (works offline).
    Ls,
    /// Show one material (works offline).
    Show(library::IdArg),
    /// Add a material (works offline; sent at once when the server is reachable).
    Add(library::AddArgs),
    /// Change a material's title, body or tags (works offline).
    Edit(library::EditArgs),
    /// Delete a material (works offline).
    Rm(library::IdArg),
    /// Record study progress on a material (works offline).
    Progress(library::ProgressArgs),
    /// Attach a file to a material (resumable upload; skipped when the server has the file).
    Attach(files::AttachArgs),
    /// Download an attachment.
    Fetch(files::FetchArgs),
    /// Send local edits, then receive what changed.
    Sync,
    /// Stay connected and print each change as it arrives.
    Follow,
    /// Sync state, pending edits, last successful sync.
    Status,
    /// List this account's devices, or revoke one.
    Devices(devices::DevicesArgs),
    /// List conflicting edits, or resolve one.
    Conflicts(devices::ConflictsArgs),
}

pub async fn run(command: ClientCommand, context: Context) -> anyhow::Result<()> {
    match command {
        ClientCommand::Register(args) => account::register(&context, args).await,
        ClientCommand::Login(args) => account::login(&context, args).await,
        ClientCommand::Logout => account::logout(&context).await,
        ClientCommand::Ls => library::list(&context).await,
        ClientCommand::Show(args) => library::show(&context, args).await,
        ClientCommand::Add(args) => library::add(&context, args).await,
        ClientCommand::Edit(args) => library::edit(&context, args).await,
        ClientCommand::Rm(args) => library::remove(&context, args).await,
        ClientCommand::Progress(args) => library::progress(&context, args).await,
        ClientCommand::Attach(args) => files::attach(&context, args).await,
        ClientCommand::Fetch(args) => files::fetch(&context, args).await,
        ClientCommand::Sync => sync::sync(&context).await,
        ClientCommand::Follow => sync::follow(&context).await,
        ClientCommand::Status => sync::status(&context).await,
        ClientCommand::Devices(args) => devices::devices(&context, args).await,
        ClientCommand::Conflicts(args) => devices::conflicts(&context, args).await,
    }
}
