//! Content types of the files a Vite build produces. A short table instead of a MIME database:
//! the set of extensions in `web/` is small and known.

pub fn for_path(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension).unwrap_or_default();
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
