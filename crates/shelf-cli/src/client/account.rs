//! `shelf register`, `shelf login`, `shelf logout`.

use std::io::BufRead;

use clap::Args;
use serde_json::json;
use shelf_client::{ClientError, SIGNED_OUT};

use super::output;
use super::profile::Session;
use super::Context;

#[derive(Args)]
pub struct RegisterArgs {
    /// The server's URL, e.g. http://127.0.0.1:8787.
    #[arg(long)]
    server: String,
    #[arg(long)]
    email: String,
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(long)]
    server: String,
    #[arg(long)]
    email: String,
    /// The name this device gets in `shelf devices` [default: "shelf CLI (<profile>)"].
    #[arg(long)]
    device_name: Option<String>,
    #[arg(long)]
    password_stdin: bool,
}

fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    Ok(rpassword::prompt_password("Password: ")?)
}

pub async fn register(context: &Context, args: RegisterArgs) -> anyhow::Result<()> {
    let password = password(args.password_stdin)?;
    let server = shelf_client::normalize_server(&args.server)?;
    let registered = shelf_client::register(&server, &args.email, &password).await?;
    if context.json {
        output::json(&json!({"userId": registered.user_id, "email": args.email, "server": server}))
    } else {
        output::line(&format!("Registered {} on {server}. Sign in with: shelf login --server {server} --email {}", args.email, args.email))
    }
}

pub async fn login(context: &Context, args: LoginArgs) -> anyhow::Result<()> {
    let server = shelf_client::normalize_server(&args.server)?;
    let profile = &context.profile;
    let previous = profile.session()?;
    let same_account = |session: &Session| session.server == server && session.email.eq_ignore_ascii_case(args.email.trim());
    if let Some(previous) = previous.as_ref().filter(|s| !same_account(s)) {
        // Never drop edits that were not sent: they belong to the other account.
        let unsent = profile.open_replica()?.status()?;
        let waiting = unsent.pending_count + unsent.rejected_count;
        anyhow::ensure!(
            waiting == 0,
            "profile {:?} holds {waiting} unsent or rejected edits of {} on {}; sync them first or use another --profile",
            profile.name,
            previous.email,
            previous.server
        );
    }
    let password = password(args.password_stdin)?;
    let device_name = args.device_name.unwrap_or_else(|| format!("shelf CLI ({})", profile.name));
    let login = shelf_client::login(&server, &args.email, &password, Some(&device_name)).await?;
    let mut replica = profile.open_replica()?;
    if previous.as_ref().is_some_and(|p| !same_account(p) || p.user_id != login.user_id) {
        replica.clear()?;
    }
    if let (Some(previous), Some(old_token)) = (&previous, profile.token()?) {
        // The old session of this profile is replaced; end it so it does not linger as a device.
        // Best effort: if it fails, the old session still expires or can be revoked.
        let _ = shelf_client::logout(&previous.server, &old_token).await;
    }
    let session = Session {
        server: server.clone(),
        email: args.email.trim().to_owned(),
        user_id: login.user_id,
        device_id: login.device_id,
        device_name: device_name.clone(),
    };
    profile.save(&session, &login.token)?;
    replica.set_meta(SIGNED_OUT, None)?;
    if context.json {
        output::json(&json!({
            "profile": profile.name, "server": server, "email": session.email,
            "userId": login.user_id, "deviceId": login.device_id, "deviceName": device_name,
        }))
    } else {
        output::line(&format!("Signed in to {server} as {} (device {}). Run shelf sync to fetch your library.", session.email, login.device_id))
    }
}

pub async fn logout(context: &Context) -> anyhow::Result<()> {
    let (session, client) = context.profile.client()?;
    let result = match context.profile.token()? {
        Some(_) => client.logout().await,
        None => Ok(()),
    };
    context.profile.forget_token()?;
    match result {
        Ok(()) => {}
        Err(ClientError::Unreachable { server, reason }) => anyhow::bail!(
            "signed out locally, but cannot reach {server} ({reason}): the session stays valid until it expires or is revoked with shelf devices revoke {}",
            session.device_id
        ),
        Err(error) => return Err(error.into()),
    }
    if context.json {
        output::json(&json!({"signedOut": true, "profile": context.profile.name}))
    } else {
        output::line(&format!("Signed out of {}. The local library and unsent edits stay in this profile.", session.server))
    }
}
