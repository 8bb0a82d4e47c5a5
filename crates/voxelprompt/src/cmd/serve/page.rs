//! The web page: HTML, script and style compiled into the binary; the viewer (`niivue`) read
//! from the cache `scripts/fetch_web.sh` fills, the page falling back to PNG overlays without it.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::Shared;

/// The viewer bundle's file name in the web cache.
pub const NIIVUE_FILE: &str = "niivue.umd.js";

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

/// `GET /`.
pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// `GET /app.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// `GET /app.css`.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// `GET /vendor/niivue.js`: the viewer bundle, or 404 when scripts/fetch_web.sh has not run.
pub async fn niivue(State(st): State<Shared>) -> Result<Response, ApiError> {
    let path = st.web_dir.join(NIIVUE_FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok((
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            bytes,
        )
            .into_response()),
        Err(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the viewer is not installed: run scripts/fetch_web.sh (looked for {})",
                path.display()
            ),
        )),
    }
}
