//! The build checks the architecture: the dependency arrows ARCHITECTURE.md allows are the only
//! ones `cargo metadata` finds, shelf-core stays free of async and I/O, and shelf-server never
//! pulls in a concrete backend's driver.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `crate → allowed workspace dependencies` from the table in ARCHITECTURE.md (`None` = any).
fn allowed() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text.find("<!-- dependency-table").expect("ARCHITECTURE.md has the dependency table");
    let end = text.find("<!-- end of dependency-table").unwrap();
    text[start..end]
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let [name, deps] = cells.as_slice() else { return None };
            if !name.starts_with("shelf-") {
                return None;
            }
            let deps = match *deps {
                "any" => None,
                "—" => Some(BTreeSet::new()),
                list => Some(list.split(',').map(|d| d.trim().to_owned()).collect()),
            };
            Some(((*name).to_owned(), deps))
        })
        .collect()
}

/// A package's name and its dependencies' ids with their kinds (`normal`, `build`, `dev`).
type Node = (String, Vec<(String, Vec<String>)>);

/// Package id → node, of the resolved graph.
fn graph(meta: &Value) -> BTreeMap<String, Node> {
    let names: BTreeMap<&str, &str> =
        meta["packages"].as_array().unwrap().iter().map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap())).collect();
    meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let id = node["id"].as_str().unwrap();
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    // Dependencies only for other platforms (e.g. uuid's js-sys on wasm) do not
                    // count: they are never built here.
                    let kinds = d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|k| !k["target"].as_str().is_some_and(|t| t.contains("wasm")))
                        .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                        .collect();
                    (d["pkg"].as_str().unwrap().to_owned(), kinds)
                })
                .collect();
            (id.to_owned(), (names[id].to_owned(), deps))
        })
        .collect()
}

/// Names of every package `name` needs to build and run (normal and build dependencies).
fn closure(meta: &Value, name: &str) -> BTreeSet<String> {
    let graph = graph(meta);
    let start = graph.iter().find(|(_, (n, _))| n == name).map(|(id, _)| id.clone()).unwrap();
    let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
    while let Some(id) = todo.pop() {
        for (dep, kinds) in &graph[&id].1 {
            if kinds.iter().any(|k: &String| k != "dev") && seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen.iter().map(|id| graph[id].0.clone()).collect()
}

#[test]
fn workspace_crates_depend_only_along_the_arrows_of_architecture_md() {
    let meta = metadata();
    let allowed = allowed();
    let members: BTreeSet<&str> = meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let mut violations = Vec::new();
    for package in meta["packages"].as_array().unwrap().iter().filter(|p| members.contains(p["id"].as_str().unwrap())) {
        let name = package["name"].as_str().unwrap();
        let Some(rule) = allowed.get(name) else {
            violations.push(format!("{name} is missing from ARCHITECTURE.md's dependency table"));
            continue;
        };
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if !dep_name.starts_with("shelf-") || is_dev {
                continue;
            }
            if rule.as_ref().is_some_and(|ok| !ok.contains(dep_name)) {
                violations.push(format!("{name} depends on {dep_name}"));
            }
        }
    }
    assert!(violations.is_empty(), "dependencies against ARCHITECTURE.md: {violations:?}");
}

#[test]
fn core_has_no_async_or_io_dependency_and_the_server_no_backend_driver() {
    let meta = metadata();
    let core = closure(&meta, "shelf-core");
    let async_or_io = ["tokio", "futures", "futures-core", "async-trait", "mio", "sqlx", "rusqlite", "reqwest", "hyper", "axum", "redis", "object_store"];
    let found: Vec<_> = async_or_io.iter().filter(|c| core.contains(**c)).collect();
    assert!(found.is_empty(), "shelf-core depends on {found:?}");
    let server = closure(&meta, "shelf-server");
    let drivers = ["sqlx", "sqlx-core", "rusqlite", "libsqlite3-sys", "redis", "object_store", "shelf-store-sqlite", "shelf-store-postgres", "shelf-bus-postgres", "shelf-bus-redis", "shelf-blob-s3"];
    let found: Vec<_> = drivers.iter().filter(|c| server.contains(**c)).collect();
    assert!(found.is_empty(), "shelf-server's dependency tree holds {found:?}");
    assert!(server.contains("axum") && core.contains("time"), "the graph was read (sanity check)");
}

/// Production code never drops an error without saying why: every `let _ =` (discarding a
/// `Result`) carries a comment on its line or just above it. Test code is exempt.
#[test]
fn every_discarded_result_in_production_code_says_why() {
    let mut unexplained = Vec::new();
    for dir in std::fs::read_dir(root().join("crates")).unwrap() {
        let krate = dir.unwrap().path();
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        if ["shelf-testkit", "shelf-bench"].contains(&name.as_str()) {
            continue; // test and benchmark tools
        }
        let mut files = vec![krate.join("src")];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("contract.rs") || path.to_string_lossy().contains("tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Code after `#[cfg(test)]` is a test module.
            let production = text.split("#[cfg(test)]").next().unwrap_or("");
            let lines: Vec<&str> = production.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !line.contains("let _ =") {
                    continue;
                }
                let explained = line.contains("//") || (i > 0 && lines[i - 1].trim_start().starts_with("//"));
                if !explained {
                    unexplained.push(format!("{}:{}", path.strip_prefix(root()).unwrap_or(&path).display(), i + 1));
                }
            }
        }
    }
    assert!(unexplained.is_empty(), "results discarded without a reason: {unexplained:?}");
}

/// The client speaks only the wire contract: nothing of the server, its stores or sqlx.
#[test]
fn the_client_tree_holds_no_server_store_or_sqlx() {
    let meta = metadata();
    let client = closure(&meta, "shelf-client");
    let server_side = ["shelf-server", "shelf-store", "shelf-store-sqlite", "shelf-store-postgres", "shelf-bus", "shelf-blob", "sqlx", "sqlx-core", "axum"];
    let found: Vec<_> = server_side.iter().filter(|c| client.contains(**c)).collect();
    assert!(found.is_empty(), "shelf-client's dependency tree holds {found:?}");
    assert!(client.contains("shelf-api") && client.contains("rusqlite"), "the graph was read (sanity check)");
}
