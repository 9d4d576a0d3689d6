//! The UI's files, compiled into the binary (`include_str!`, no build step, nothing fetched at
//! run time), each with a strong ETag (its SHA-256) so a browser revalidates with one cheap
//! request and downloads a file again only when a new binary changed it.

use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The Content-Security-Policy of every `/ui` answer: the app's own files only, no inline
/// script or style (the app builds its DOM with `createElement`/`textContent`), no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// `"<sha-256 hex>"`, quoted as an ETag header is.
    pub etag: String,
}

impl Asset {
    /// Whether an `If-None-Match` header value names this file's version.
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.etag)
    }
}

const JS: &str = "text/javascript; charset=utf-8";

/// (name under `/ui/assets/`, content type, body). `index.html` is the shell every page serves.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../assets/index.html")),
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("app.js", JS, include_str!("../assets/app.js")),
    ("api.js", JS, include_str!("../assets/api.js")),
    ("dom.js", JS, include_str!("../assets/dom.js")),
    ("chart.js", JS, include_str!("../assets/chart.js")),
    ("report.js", JS, include_str!("../assets/report.js")),
    ("dashboard.js", JS, include_str!("../assets/dashboard.js")),
    ("keys.js", JS, include_str!("../assets/keys.js")),
    ("models.js", JS, include_str!("../assets/models.js")),
    ("spend.js", JS, include_str!("../assets/spend.js")),
    ("logs.js", JS, include_str!("../assets/logs.js")),
    ("people.js", JS, include_str!("../assets/people.js")),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, body)| Asset {
            name,
            content_type,
            body: body.as_bytes(),
            etag: format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes()))),
        })
        .collect()
});

/// The file `/ui/assets/<name>` serves, if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name && a.name != "index.html")
}

/// The HTML shell: every page (`/ui`, `/ui/keys`, …) serves it, and the app draws the page its
/// path names, so each page can be linked to and reloaded.
pub fn shell() -> &'static Asset {
    &ASSETS[0]
}

/// The pages under `/ui/` (the empty one is the dashboard at `/ui`).
pub const PAGES: &[&str] = &["", "login", "keys", "teams", "users", "organizations", "models", "spend", "logs"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_and_the_shell_only_as_pages() {
        for (name, _, _) in &FILES[1..] {
            assert!(asset(name).is_some(), "{name}");
        }
        assert!(asset("index.html").is_none());
        assert!(asset("../Cargo.toml").is_none());
        assert_eq!(shell().name, "index.html");
    }

    #[test]
    fn etags_name_the_content_and_revalidate() {
        let js = asset("app.js").unwrap();
        assert_eq!(js.etag.len(), 66);
        assert!(js.matches(&js.etag));
        assert!(js.matches(&format!("W/{}, \"other\"", js.etag)));
        assert!(!js.matches("\"other\""));
        assert_ne!(js.etag, asset("api.js").unwrap().etag);
    }

    #[test]
    fn no_inline_script_style_or_handler_in_the_files() {
        let shell = std::str::from_utf8(shell().body).unwrap();
        assert!(!shell.contains("<script>"), "scripts come from files");
        assert!(!shell.contains("style="));
        assert!(!shell.contains("<style"));
        for (name, _, body) in FILES {
            assert!(!body.contains("innerHTML"), "{name} builds its DOM with createElement/textContent");
            assert!(!body.contains(" onclick="), "{name}");
            assert!(!body.contains("eval("), "{name}");
        }
        assert!(!CSP.contains("unsafe-inline"));
    }
}
