//! The terminal loop: enters raw mode and the alternate screen, reads keys on its own thread,
//! merges them with the live events, updates the App and redraws: at once (at most ~10 times
//! a second) after a key, once a second otherwise. The terminal is restored on every way
//! out: return, error, panic (ratatui's panic hook) and [`AppEvent::Shutdown`], which the
//! caller sends on SIGTERM/SIGINT.
//!
//! Not here: where events come from (the caller attaches to a node) or what actions do.

use super::app::{App, Settings};
use super::event::{Action, AppEvent};
use super::views;
use ratatui::crossterm::event::{self as term, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Fastest redraw after input.
const INPUT_FRAME: Duration = Duration::from_millis(100);
/// Redraw period without input (live data and the clock).
const IDLE_FRAME: Duration = Duration::from_secs(1);

/// Wall clock, ms since the epoch.
pub use meshmon_proto::clock::now_ms as wall_ms;

/// Restores the terminal when dropped (normal return and errors; panics are covered by the
/// hook `ratatui::try_init` installs).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
        let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
    }
}

/// Runs the TUI until the user quits or [`AppEvent::Shutdown`] arrives. `events` carries live
/// data; `on_action` gets what the App asks the caller to do. Blocking: call it from a thread
/// that may block (not an async worker).
pub fn run(
    mut events: tokio::sync::mpsc::Receiver<AppEvent>,
    settings: Settings,
    mut on_action: impl FnMut(Action),
) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let (tx, rx) = mpsc::sync_channel::<AppEvent>(1024);
    // The input thread polls this flag between short waits, so it stops reading the terminal
    // before the loop restores it. An atomic flag is the whole shared state.
    let stop = Arc::new(AtomicBool::new(false));
    let input = {
        let (tx, stop) = (tx.clone(), stop.clone());
        std::thread::Builder::new()
            .name("tui-input".into())
            .spawn(move || read_input(&tx, &stop))?
    };
    std::thread::Builder::new()
        .name("tui-events".into())
        .spawn(move || {
            while let Some(e) = events.blocking_recv() {
                if tx.send(e).is_err() {
                    break;
                }
            }
        })?;
    let mut app = App::new(settings, wall_ms());
    let mut last_draw: Option<Instant> = None;
    let mut urgent = true;
    let result = loop {
        let due = match last_draw {
            None => Instant::now(),
            Some(t) => t + if urgent { INPUT_FRAME } else { IDLE_FRAME },
        };
        let wait = due.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(first) => {
                let mut batch = vec![first];
                batch.extend(rx.try_iter().take(4096));
                let was_empty = app.fleet.hosts.is_empty();
                app.update(AppEvent::Tick { now_ms: wall_ms() });
                for e in batch {
                    urgent |= matches!(e, AppEvent::Key(_) | AppEvent::Resize);
                    for a in app.update(e) {
                        on_action(a);
                    }
                }
                // The first data is drawn at once: the UI opens instantly, then fills in.
                urgent |= was_empty && !app.fleet.hosts.is_empty();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
        if app.quit {
            break Ok(());
        }
        if last_draw.is_none_or(|t| t.elapsed() >= if urgent { INPUT_FRAME } else { IDLE_FRAME }) {
            app.update(AppEvent::Tick { now_ms: wall_ms() });
            if let Err(e) = terminal.draw(|f| views::draw(f, &app)) {
                break Err(e);
            }
            last_draw = Some(Instant::now());
            urgent = false;
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = input.join();
    result
}

fn read_input(tx: &mpsc::SyncSender<AppEvent>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match term::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => break,
        }
        let ev = match term::read() {
            Ok(Event::Key(k)) => AppEvent::Key(k),
            Ok(Event::Resize(..)) => AppEvent::Resize,
            Ok(_) => continue,
            Err(_) => break,
        };
        if tx.send(ev).is_err() {
            break;
        }
    }
}
