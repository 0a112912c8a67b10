//! The flaky API of the chaos example: an axum app on loopback that
//! answers each item by a fixed plan of faults (429 with `Retry-After`,
//! 503, a slow answer, a connection cut mid-answer, 404), or 503 to
//! everything during an outage — and records every request it sees, so
//! the bot's own counts can be checked against it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the API did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Answer {
    Ok,
    TooManyRequests,
    Unavailable,
    Slow,
    Reset,
    NotFound,
}

/// One request as the API saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) item: u32,
    pub(crate) at: Instant,
    pub(crate) answer: Answer,
}

/// The API's own record, and its outage switch.
#[derive(Debug, Default)]
pub(crate) struct ApiLog {
    seen: Mutex<Vec<Seen>>,
    outage: AtomicBool,
}

/// The wait a 429 asks for.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;
/// How long a slow answer takes (longer than the bot's attempt timeout).
pub(crate) const SLOW: Duration = Duration::from_millis(1500);

impl ApiLog {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    /// How item `item`'s `attempt`-th request (from 1) is answered.
    pub(crate) fn plan(&self, item: u32, attempt: usize) -> Answer {
        if self.outage.load(Ordering::SeqCst) {
            return Answer::Unavailable;
        }
        match (item % 10, attempt) {
            (0, 1) => Answer::TooManyRequests,
            (1, 1 | 2) => Answer::Unavailable,
            (2, 1) => Answer::Slow,
            (3, 1) => Answer::Reset,
            (7, _) => Answer::NotFound,
            (9, _) => Answer::Unavailable,
            _ => Answer::Ok,
        }
    }

    fn record(&self, item: u32) -> Answer {
        let mut seen = self.seen.lock().unwrap();
        let attempt = seen.iter().filter(|s| s.item == item).count() + 1;
        let answer = self.plan(item, attempt);
        seen.push(Seen {
            item,
            at: Instant::now(),
            answer,
        });
        answer
    }
}

async fn item(State(log): State<Arc<ApiLog>>, Path(item): Path<u32>) -> Response {
    match log.record(item) {
        Answer::Ok => format!("item {item}").into_response(),
        Answer::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
            "slow down\n",
        )
            .into_response(),
        Answer::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response(),
        Answer::Slow => {
            tokio::time::sleep(SLOW).await;
            format!("item {item}, slowly").into_response()
        }
        Answer::Reset => {
            // Headers, then the connection is cut before the body.
            let cut = futures::stream::once(async {
                Err::<&'static [u8], _>(std::io::Error::other("connection reset"))
            });
            (StatusCode::OK, Body::from_stream(cut)).into_response()
        }
        Answer::NotFound => (StatusCode::NOT_FOUND, "no such item\n").into_response(),
    }
}

/// The app, recording into `log`.
pub(crate) fn app(log: Arc<ApiLog>) -> Router {
    Router::new()
        .route("/items/{item}", get(item))
        .with_state(log)
}

/// The most requests seen within any `window` (sorted arrivals).
pub(crate) fn busiest(seen: &[Seen], window: Duration) -> usize {
    let mut at: Vec<Instant> = seen.iter().map(|s| s.at).collect();
    at.sort();
    let mut best = 0;
    let mut first = 0;
    for last in 0..at.len() {
        while at[last] - at[first] >= window {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best
}
