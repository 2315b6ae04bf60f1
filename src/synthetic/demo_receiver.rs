//! The webhook receiver `auditwatch demo` runs in-process: it takes the signed alerts on
//! `POST /alerts`, checks every signature the way any Standard Webhooks receiver would, and
//! answers 401 to one that does not verify. The demo then reports what it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::sinks::webhook::{verify, SigningKey};

/// A signed request further than this from the receiver's clock is a replay.
const TOLERANCE_SECONDS: i64 = 300;

#[derive(Default, Debug, Clone)]
pub struct Received {
    pub verified: u64,
    pub rejected: u64,
    pub ids: std::collections::BTreeSet<String>,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    key: SigningKey,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    /// Listen on a free loopback port; `secret` is the `whsec_` secret the demo signs with.
    pub fn start(secret: &str) -> std::io::Result<Receiver> {
        let key = SigningKey::parse("secret", secret).map_err(std::io::Error::other)?;
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/alerts", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::new(Shared { key, received: received.clone() });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("demo-receiver".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let app = Router::new().route("/alerts", post(take)).with_state(shared);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
        Ok(Receiver { url, received, stop: Some(stop), thread: Some(thread) })
    }

    pub fn received(&self) -> Received {
        crate::lock::lock(&self.received).clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn take(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= TOLERANCE_SECONDS);
    let good = fresh && verify(&shared.key, id, timestamp, &body, signature);
    let mut received = crate::lock::lock(&shared.received);
    if good {
        received.verified += 1;
        received.ids.insert(id.to_string());
        StatusCode::OK
    } else {
        received.rejected += 1;
        StatusCode::UNAUTHORIZED
    }
}
