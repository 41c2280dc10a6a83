//! The windows of a gateway: the tickets that say who each page is, and the open connections.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::TryRng as _;
use rand::rngs::SysRng;
use tokio::sync::mpsc;

use super::window::{Outgoing, Window};
use crate::checks::check_name;

/// A window's identity, issued by the server: an unguessable token bound to a window label and a
/// webview label. A page connects with its ticket's token (`/airlock?ticket=TOKEN`), and every
/// message of that connection carries the ticket's labels as its source; no page names its own
/// label. See [`Windows`] for how tickets are issued and how long they hold their label.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    token: Arc<str>,
    window: Arc<str>,
    webview: Arc<str>,
}

impl Ticket {
    /// The secret the page connects with: 128 bits from the OS RNG, in hex. Give it only to the
    /// page it is for.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The window label its connection's messages carry.
    pub fn window(&self) -> &str {
        &self.window
    }

    /// The webview label its connection's messages carry.
    pub fn webview(&self) -> &str {
        &self.webview
    }
}

impl fmt::Debug for Ticket {
    /// Without the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("window", &self.window)
            .field("webview", &self.webview)
            .finish_non_exhaustive()
    }
}

/// Why a ticket was not issued, or a connection not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Another ticket holds the label (its page is connected, or may still reconnect).
    #[error("window label {0:?} is held by another page")]
    LabelTaken(String),
    /// The label is not a valid name.
    #[error("window label {label:?} is invalid: {reason}")]
    InvalidLabel {
        /// The label.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// As many tickets are live as [`WindowLimits::max_tickets`] allows.
    #[error("{0} window tickets are live, the most allowed")]
    TooMany(usize),
    /// No live ticket has this token (never issued, or expired).
    #[error("unknown or expired window ticket")]
    Unknown,
    /// The ticket's page is connected already.
    #[error("window {0:?} is already connected")]
    Connected(String),
    /// The OS RNG failed.
    #[error("cannot make a window ticket: {0}")]
    Rng(String),
}

/// How tickets live. Defaults: 1024 live tickets at most, an unused ticket expires after 10 min,
/// and a window's ticket keeps its label for 30 s after its connection ends, so the page can
/// reconnect (a reload) as the same window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowLimits {
    /// Live tickets (connected, waiting for their page, or within their reconnect time).
    pub max_tickets: usize,
    /// How long a ticket that never connected stays valid.
    pub unused_ttl: Duration,
    /// How long a window's ticket keeps its label after its connection ends.
    pub reconnect_grace: Duration,
}

impl Default for WindowLimits {
    fn default() -> Self {
        WindowLimits {
            max_tickets: 1024,
            unused_ttl: Duration::from_secs(600),
            reconnect_grace: Duration::from_secs(30),
        }
    }
}

with_fields!(WindowLimits {
    max_tickets: usize => with_max_tickets,
    unused_ttl: Duration => with_unused_ttl,
    reconnect_grace: Duration => with_reconnect_grace,
});

/// A live ticket: its page's connection, if any, and when it expires otherwise.
#[derive(Debug)]
struct Held {
    ticket: Ticket,
    connected: Option<u64>,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Open connections by window label.
    open: HashMap<String, Window>,
    /// Live tickets by token.
    tickets: HashMap<Arc<str>, Held>,
    /// The token holding each label.
    labels: HashMap<Arc<str>, Arc<str>>,
}

impl State {
    /// Forgets expired tickets that are not connected.
    fn purge(&mut self, now: Instant) {
        let expired: Vec<Arc<str>> = self
            .tickets
            .iter()
            .filter(|(_, held)| held.connected.is_none() && held.expires <= now)
            .map(|(token, _)| token.clone())
            .collect();
        for token in expired {
            if let Some(held) = self.tickets.remove(&token) {
                self.labels.remove(&held.ticket.window);
            }
        }
    }
}

/// The windows of a gateway: the tickets that say who each page is, and the open connections.
/// Clone it into the core's handlers to push events and channel data to a page.
///
/// # Identity
/// A window's labels come from the server, never from the page. [`Windows::issue`] gives the
/// embedding app a [`Ticket`] for a label it chooses (hand the token to the webview it opens);
/// the web gateway issues one to each HTML page it serves (labelled after the page: `main` for
/// `index.html` at the root, else the file's name; `-2`, `-3`… when that label is held). A
/// ticket holds its label while its page is connected and for [`WindowLimits::reconnect_grace`]
/// after (so a reloaded page, which keeps its ticket in `sessionStorage`, comes back as the same
/// window and nobody can take the label meanwhile); one that never connects expires after
/// [`WindowLimits::unused_ttl`]. One connection at a time per ticket.
///
/// What this does not do: pages of one origin can script each other (a page can open another
/// page of its origin in a frame), so labels do not separate pages of one origin from each
/// other; and a local process that can fetch the served pages can get tickets for them, as a
/// browser can. Turn page tickets off ([`WebOptions::page_tickets`](super::WebOptions)) and issue
/// tickets through the API to close that.
///
/// Pushes follow the connection, not the label: a handler pushes to the window that sent its
/// message with [`Window::current`], and a push to a closed connection fails and is counted
/// ([`Windows::dropped_pushes`]), never delivered to a later holder of the label.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    state: Arc<Mutex<State>>,
    limits: WindowLimits,
    dropped: Arc<AtomicU64>,
}

impl Windows {
    /// No windows yet, default limits.
    pub fn new() -> Self {
        Windows::default()
    }

    /// No windows yet, these limits.
    pub fn with_limits(limits: WindowLimits) -> Self {
        Windows {
            limits,
            ..Windows::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> WindowLimits {
        self.limits
    }

    /// The open connection of the window with this label. It may be a later page than the one
    /// a message came from (a reload); to answer a message's own page, use [`Window::current`].
    pub fn get(&self, label: &str) -> Option<Window> {
        self.lock().open.get(label).cloned()
    }

    /// The labels of the open windows, sorted.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.lock().open.keys().cloned().collect();
        labels.sort();
        labels
    }

    /// Pushes (and replies) that found their connection closed, and were dropped.
    pub fn dropped_pushes(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ticket for a window labelled `window` with a webview labelled `webview`, for the
    /// embedding app to give to the page it opens. Refused when a live ticket holds the label.
    pub fn issue(&self, window: &str, webview: &str) -> Result<Ticket, TicketError> {
        for label in [window, webview] {
            check_label(label)?;
        }
        let mut state = self.lock();
        state.purge(Instant::now());
        if state.labels.contains_key(window) {
            return Err(TicketError::LabelTaken(window.to_owned()));
        }
        self.insert(&mut state, window, webview)
    }

    /// A ticket for a page the gateway serves: labelled `base`, or `base-2`, `base-3`… when a
    /// live ticket holds it.
    pub(crate) fn issue_page(&self, base: &str) -> Result<Ticket, TicketError> {
        check_label(base)?;
        let mut state = self.lock();
        state.purge(Instant::now());
        let label = (1..=self.limits.max_tickets + 1)
            .map(|n| match n {
                1 => base.to_owned(),
                n => format!("{base}-{n}"),
            })
            .find(|label| !state.labels.contains_key(label.as_str()))
            .ok_or(TicketError::TooMany(self.limits.max_tickets))?;
        check_label(&label)?;
        self.insert(&mut state, &label, &label)
    }

    fn insert(
        &self,
        state: &mut State,
        window: &str,
        webview: &str,
    ) -> Result<Ticket, TicketError> {
        if state.tickets.len() >= self.limits.max_tickets {
            return Err(TicketError::TooMany(self.limits.max_tickets));
        }
        let mut secret = [0u8; 16];
        SysRng
            .try_fill_bytes(&mut secret)
            .map_err(|e| TicketError::Rng(e.to_string()))?;
        let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let ticket = Ticket {
            token: token.into(),
            window: window.into(),
            webview: webview.into(),
        };
        state
            .labels
            .insert(ticket.window.clone(), ticket.token.clone());
        state.tickets.insert(
            ticket.token.clone(),
            Held {
                ticket: ticket.clone(),
                connected: None,
                expires: Instant::now() + self.limits.unused_ttl,
            },
        );
        Ok(ticket)
    }

    /// The ticket with this token, when it is live.
    pub(crate) fn ticket(&self, token: &str) -> Result<Ticket, TicketError> {
        let mut state = self.lock();
        state.purge(Instant::now());
        state
            .tickets
            .get(token)
            .map(|held| held.ticket.clone())
            .ok_or(TicketError::Unknown)
    }

    /// A connection for `ticket`'s window, whose pushes are counted when dropped.
    pub(crate) fn window(
        &self,
        ticket: &Ticket,
        queue_bytes: usize,
    ) -> (Window, mpsc::UnboundedReceiver<Outgoing>) {
        Window::new(&ticket.window, queue_bytes, self.dropped.clone())
    }

    /// Makes `window` the connection of `ticket`, unless the ticket expired or is connected.
    pub(crate) fn register(
        &self,
        ticket: &Ticket,
        window: &Window,
    ) -> Result<Registration, TicketError> {
        let mut state = self.lock();
        state.purge(Instant::now());
        let held = state
            .tickets
            .get_mut(&ticket.token)
            .ok_or(TicketError::Unknown)?;
        if held.connected.is_some() {
            return Err(TicketError::Connected(ticket.window.to_string()));
        }
        held.connected = Some(window.connection);
        state.open.insert(ticket.window.to_string(), window.clone());
        Ok(Registration {
            windows: self.clone(),
            token: ticket.token.clone(),
            window: window.clone(),
        })
    }
}

fn check_label(label: &str) -> Result<(), TicketError> {
    check_name(label, MAX_LABEL_BYTES).map_err(|rejection| TicketError::InvalidLabel {
        label: label.to_owned(),
        reason: rejection.reason,
    })
}

/// Longest window or webview label, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// A window's connection to its ticket, held by the connection; when dropped, the window is
/// closed and its ticket keeps the label for the reconnect time.
pub(crate) struct Registration {
    windows: Windows,
    token: Arc<str>,
    window: Window,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.window.refuse_pushes();
        let grace = self.windows.limits.reconnect_grace;
        let mut state = self.windows.lock();
        if state
            .open
            .get(self.window.label())
            .is_some_and(|w| w.connection == self.window.connection)
        {
            state.open.remove(self.window.label());
        }
        if let Some(held) = state.tickets.get_mut(&self.token)
            && held.connected == Some(self.window.connection)
        {
            held.connected = None;
            held.expires = Instant::now() + grace;
        }
    }
}
