//! `GET /api/v1/events`: server-sent events from the live view's broadcast channel
//! (`fleet`, `host`, `alert`), a `: ping` comment every 15 s. A client that falls more than
//! the channel's bound behind skips the events it missed; the stream ends on shutdown.
//!
//! Not here: what the events say (`live`).

use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.events.subscribe();
    let stop = st.shutdown.clone();
    let s = stream::unfold((rx, stop), |(mut rx, stop)| async move {
        loop {
            let got = tokio::select! {
                () = stop.cancelled() => return None,
                got = rx.recv() => got,
            };
            match got {
                Ok(e) => {
                    let ev = Event::default().event(e.name).data(&*e.data);
                    return Some((Ok(ev), (rx, stop)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(s).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text(" ping"),
    )
}
