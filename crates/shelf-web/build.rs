//! Builds the web app (`web/`, an npm workspace) with Vite into `$OUT_DIR/dist`, which `lib.rs`
//! embeds. Runs `npm ci` first when `node_modules` is missing or older than the lockfile.
//! Cargo reruns this only when web sources change (the `rerun-if-changed` lines below).
//!
//! `SHELF_WEB_SKIP=1` builds an empty app instead (a server without the browser app, whose `/`
//! then says how to get it) — for machines without Node.js.

use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDS: &str = "shelf-web: building the web app needs Node.js >= 20 with npm on PATH \
    (Debian/Ubuntu: apt-get install nodejs npm); or set SHELF_WEB_SKIP=1 to build the server without the app";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    let dist = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dist");
    println!("cargo:rerun-if-env-changed=SHELF_WEB_SKIP");
    for watched in [
        "package.json",
        "package-lock.json",
        "sdk/package.json",
        "sdk/src",
        "app/package.json",
        "app/index.html",
        "app/vite.config.ts",
        "app/tsconfig.json",
        "app/src",
        "app/public",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    if std::fs::remove_dir_all(&dist).is_err() && dist.exists() {
        fail(&format!("shelf-web: cannot clear {}", dist.display()));
    }
    std::fs::create_dir_all(&dist).unwrap_or_else(|error| fail(&format!("shelf-web: cannot create {}: {error}", dist.display())));
    if std::env::var_os("SHELF_WEB_SKIP").is_some_and(|value| !value.is_empty() && value != "0") {
        println!("cargo:warning=SHELF_WEB_SKIP is set: building Shelf without its web app");
        return;
    }
    check_node();
    if needs_npm_ci(&web) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&web), "npm ci");
    }
    let out_dir = dist.to_str().unwrap_or_else(|| fail("shelf-web: OUT_DIR is not valid UTF-8"));
    run(
        Command::new("npx").args(["vite", "build", "--logLevel", "warn", "--emptyOutDir", "--outDir", out_dir]).current_dir(web.join("app")),
        "vite build",
    );
}

fn check_node() {
    let version = Command::new("node").arg("--version").output().ok().filter(|out| out.status.success());
    let major = version
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().trim_start_matches('v').split('.').next()?.parse::<u32>().ok());
    let npm = Command::new("npm").arg("--version").output().is_ok_and(|out| out.status.success());
    if !npm || major.is_none_or(|major| major < 20) {
        fail(NEEDS);
    }
}

/// `npm ci` wipes and reinstalls `node_modules` (slow), so run it only when the installed tree
/// is missing or older than the lockfile.
fn needs_npm_ci(web: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    match (modified(&web.join("node_modules/.package-lock.json")), modified(&web.join("package-lock.json"))) {
        (Some(installed), Some(locked)) => installed < locked,
        _ => true,
    }
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("shelf-web: `{what}` in web/ failed ({status}); its output is above")),
        Err(error) => fail(&format!("shelf-web: cannot run `{what}`: {error}. {NEEDS}")),
    }
}

fn fail(line: &str) -> ! {
    eprintln!("{line}");
    std::process::exit(1)
}
