//! `POST /query`: read-only SQL over the store for holders of a bearer token.
//!
//! The body is the SQL text; `?format=json` (default, one object per line) or `?format=csv`.
//! 401 without the right `Authorization: Bearer`, 400 for a refused or bad query with the
//! reason on one line, 503 for a query past its time. A cut answer carries
//! `X-Auditwatch-Truncated: true`. Queries run on their own runtime, so a heavy one never
//! delays liveness or metrics on the admin server's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::AppState;
use crate::config::Secret;
use crate::query::output::{self, OutputFormat};
use crate::query::{Catalog, QueryError};

pub struct QueryEndpoint {
    catalog: Arc<Catalog>,
    /// The token's digest: comparing digests takes the same time whatever the token's length.
    token: [u8; 32],
    runtime: tokio::runtime::Handle,
}

impl QueryEndpoint {
    pub fn new(catalog: Catalog, token: &Secret, runtime: tokio::runtime::Handle) -> QueryEndpoint {
        QueryEndpoint { catalog: Arc::new(catalog), token: Sha256::digest(token.expose().as_bytes()).into(), runtime }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        // Every byte is compared, so the time taken says nothing of where they differ.
        digest.iter().zip(&self.token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

pub(super) async fn post_query(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(endpoint) = state.query.clone() else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if !endpoint.authorized(&headers) {
        warn!("POST /query without a valid bearer token");
        return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], "a valid bearer token is required\n")
            .into_response();
    }
    let format = uri.query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("format="));
    let format = match format {
        None | Some("json") => OutputFormat::Json,
        Some("csv") => OutputFormat::Csv,
        Some(other) => {
            return (StatusCode::BAD_REQUEST, format!("format {other:?} is not json or csv\n")).into_response();
        }
    };
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the body must be the SQL text, in UTF-8\n").into_response();
    };
    let catalog = endpoint.catalog.clone();
    let running = endpoint.runtime.spawn(async move {
        let answer = catalog.run(&sql).await?;
        let mut body = Vec::new();
        output::write(&answer, format, &mut body).map_err(|e| QueryError::Output(e.to_string()))?;
        Ok::<_, QueryError>((answer.rows(), answer.truncated, body))
    });
    match running.await {
        Ok(Ok((rows, truncated, body))) => {
            info!(rows, truncated, "POST /query answered");
            let mut response = ([(CONTENT_TYPE, format.content_type())], body).into_response();
            if truncated {
                response.headers_mut().insert("x-auditwatch-truncated", HeaderValue::from_static("true"));
            }
            response
        }
        Ok(Err(error @ QueryError::Timeout(_))) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response()
        }
        Ok(Err(error)) => (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
        Err(join) => {
            warn!(error = %join, "a query task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the query failed\n").into_response()
        }
    }
}

pub(super) async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(axum::http::header::ALLOW, "POST")], "method not allowed\n").into_response()
}
