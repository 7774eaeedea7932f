//! Users and device sessions for a load run, optionally cached in a file between runs.

use futures::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Args;

/// One user and a token per device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadUser {
    pub email: String,
    pub tokens: Vec<String>,
}

const PASSWORD: &str = "load generator password";

pub async fn prepare_users(client: &reqwest::Client, args: &Args) -> anyhow::Result<Vec<LoadUser>> {
    if args.nchan {
        // Nchan has no accounts: a user is a channel name, its devices need no token.
        let users = (0..args.users).map(|i| LoadUser { email: format!("u{i}"), tokens: vec![String::new(); args.devices] });
        return Ok(users.collect());
    }
    if let Some(path) = &args.accounts_file {
        if let Ok(text) = std::fs::read_to_string(path) {
            let cached: Vec<LoadUser> = serde_json::from_str(&text)?;
            if cached.len() >= args.users && cached.iter().all(|u| u.tokens.len() >= args.devices) {
                return Ok(cached.into_iter().take(args.users).collect());
            }
        }
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let users: Vec<LoadUser> = stream::iter(0..args.users)
        .map(|i| register(client, &args.url, format!("load-{run}-{i}@example.com"), args.devices))
        .buffer_unordered(args.setup_concurrency.max(1))
        .try_collect()
        .await?;
    if let Some(path) = &args.accounts_file {
        std::fs::write(path, serde_json::to_string(&users)?)?;
    }
    Ok(users)
}

async fn register(client: &reqwest::Client, url: &str, email: String, devices: usize) -> anyhow::Result<LoadUser> {
    let body = json!({"email": email, "password": PASSWORD});
    let registered = post_when_served(client, &format!("{url}/api/auth/register"), &body).await?;
    anyhow::ensure!(
        registered.status().is_success(),
        "register failed: {} (a server under load tests needs --registrations-per-address 0)",
        registered.status()
    );
    let mut tokens = Vec::with_capacity(devices);
    for device in 0..devices {
        let body = json!({"email": email, "password": PASSWORD, "deviceName": format!("load device {device}")});
        let login: serde_json::Value = post_when_served(client, &format!("{url}/api/auth/login"), &body).await?.json().await?;
        let token = login["token"].as_str().ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?;
        tokens.push(token.to_owned());
    }
    Ok(LoadUser { email, tokens })
}

/// Posts, and while the server sheds password hashing (503 with `Retry-After`, see its
/// `--hashing-queue`) waits as told and tries again: setup opens hundreds of logins at once.
async fn post_when_served(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> anyhow::Result<reqwest::Response> {
    loop {
        let response = client.post(url).json(body).send().await?;
        if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(response);
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| anyhow::anyhow!("{url}: 503 without Retry-After"))?;
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}
