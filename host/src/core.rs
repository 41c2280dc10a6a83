//! The core: the app's privileged side. Its only entry point, [`Core::dispatch`], takes an
//! [`Envelope`], authenticates it with the [`Opener`], and only then routes the message to a
//! command handler, event listeners or a channel receiver registered on a [`Router`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::message::{Body, Kind, Message};
use crate::seal::{Envelope, Opener, SealError};
use crate::verdict::{Rejection, code};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(Message) -> BoxFuture<Result<Response, CoreError>> + Send + Sync>;

/// What the core answers.
#[derive(Debug, Clone)]
pub enum Response {
    /// A command's (or fallback's) return value, as JSON.
    Json(Box<RawValue>),
    /// Raw bytes returned by a fallback.
    Bytes(Vec<u8>),
    /// An event or channel message was handed to this many receivers.
    Delivered {
        /// How many listeners or receivers got it.
        receivers: usize,
    },
}

impl Response {
    /// A JSON response holding `value`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Response, CoreError> {
        serde_json::value::to_raw_value(value)
            .map(Response::Json)
            .map_err(|e| CoreError::Handler {
                name: "response".to_owned(),
                message: format!("cannot serialize the response: {e}"),
            })
    }
}

/// Why the core did not answer with a [`Response`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The envelope did not open: it never reached a handler.
    #[error("envelope rejected: {0}")]
    Envelope(#[from] SealError),
    /// No command handler has this name.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// No channel receiver has this name.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// The body did not deserialize into the handler's args.
    #[error("invalid args for command {name:?}: {message}")]
    InvalidArgs {
        /// The command.
        name: String,
        /// What serde said.
        message: String,
    },
    /// A handler or listener returned an error.
    #[error("handler for {name:?} failed: {message}")]
    Handler {
        /// The command, event or channel.
        name: String,
        /// The handler's error, displayed.
        message: String,
    },
}

impl CoreError {
    /// The structured error the frontend gets.
    pub fn to_rejection(&self) -> Rejection {
        let code = match self {
            CoreError::Envelope(_) => code::ENVELOPE_REJECTED,
            CoreError::UnknownCommand(_) => code::UNKNOWN_COMMAND,
            CoreError::UnknownChannel(_) => code::UNKNOWN_CHANNEL,
            CoreError::InvalidArgs { .. } => code::INVALID_ARGS,
            CoreError::Handler { .. } => code::HANDLER_ERROR,
        };
        Rejection::new(code, self.to_string())
    }
}

/// Where the app registers what the core does with each message.
///
/// Unmatched commands are an `unknown-command` error, unmatched channels `unknown-channel`,
/// and an event nobody listens to is delivered to zero listeners — unless a
/// [`fallback`](Router::fallback) is set, which then gets every unmatched message.
#[derive(Default, Clone)]
pub struct Router {
    commands: HashMap<String, Handler>,
    listeners: HashMap<String, Vec<Handler>>,
    channels: HashMap<String, Handler>,
    fallback: Option<Handler>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("commands", &self.commands.keys().collect::<Vec<_>>())
            .field("listeners", &self.listeners.keys().collect::<Vec<_>>())
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// Registers an async command handler. Its args are the JSON body deserialized into `A`
    /// (a mismatch is an `invalid-args` error naming the command); its `Ok` value is serialized
    /// as the response, its `Err` displayed as a `handler-error`.
    pub fn command<A, R, E, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: fmt::Display + 'static,
        F: Fn(A, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let name = name.into();
        let handler = Arc::new(handler);
        let command = name.clone();
        let erased: Handler = Arc::new(move |message: Message| {
            let args: Result<A, String> = match &message.body {
                Body::Json(text) => serde_json::from_str(text).map_err(|e| e.to_string()),
                Body::Bytes(_) => Err("expected JSON args, got a bytes body".to_owned()),
            };
            let command = command.clone();
            let handler = handler.clone();
            Box::pin(async move {
                let args = args.map_err(|message| CoreError::InvalidArgs {
                    name: command.clone(),
                    message,
                })?;
                let value = handler(args, message)
                    .await
                    .map_err(|e| CoreError::Handler {
                        name: command.clone(),
                        message: e.to_string(),
                    })?;
                serde_json::value::to_raw_value(&value)
                    .map(Response::Json)
                    .map_err(|e| CoreError::Handler {
                        name: command,
                        message: format!("cannot serialize the response: {e}"),
                    })
            })
        });
        self.commands.insert(name, erased);
        self
    }

    /// Adds a listener for an event; every listener of the event gets each delivered one.
    pub fn listen<E, F, Fut>(mut self, name: impl Into<String>, listener: F) -> Self
    where
        E: fmt::Display + 'static,
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let name = name.into();
        let erased = receiver(name.clone(), listener);
        self.listeners.entry(name).or_default().push(erased);
        self
    }

    /// Sets the receiver of a channel's messages.
    pub fn channel<E, F, Fut>(mut self, name: impl Into<String>, receiver_fn: F) -> Self
    where
        E: fmt::Display + 'static,
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let name = name.into();
        let erased = receiver(name.clone(), receiver_fn);
        self.channels.insert(name, erased);
        self
    }

    /// Sets the handler of every message nothing else matches, of any kind.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, CoreError>> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |message| Box::pin(handler(message))));
        self
    }
}

fn receiver<E, F, Fut>(name: String, f: F) -> Handler
where
    E: fmt::Display + 'static,
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |message| {
        let name = name.clone();
        let fut = f(message);
        Box::pin(async move {
            fut.await.map_err(|e| CoreError::Handler {
                name,
                message: e.to_string(),
            })?;
            Ok(Response::Delivered { receivers: 1 })
        })
    })
}

/// The app's core: opens envelopes and routes what they hold. It has no way in but
/// [`Core::dispatch`], which takes only an envelope.
#[derive(Debug)]
pub struct Core {
    router: Router,
    opener: Opener,
}

impl Core {
    /// A core that accepts what `opener`'s sealer seals, and routes with `router`.
    pub fn new(router: Router, opener: Opener) -> Self {
        Core { router, opener }
    }

    /// Authenticates the envelope (refusing any tampering, foreign key or replay), then routes the
    /// message it holds.
    pub async fn dispatch(&self, envelope: Envelope) -> Result<Response, CoreError> {
        let message = self.opener.open(envelope)?;
        tracing::debug!(id = message.id, kind = %message.kind, name = %message.name, "core dispatch");
        let name = message.name.clone();
        let routes = match message.kind {
            Kind::Command => self.router.commands.get(&name).map(std::slice::from_ref),
            Kind::Event => self.router.listeners.get(&name).map(Vec::as_slice),
            Kind::Channel => self.router.channels.get(&name).map(std::slice::from_ref),
        };
        match (routes, &self.router.fallback) {
            (Some([only]), _) => only(message).await,
            (Some(listeners), _) if !listeners.is_empty() => {
                for listener in listeners {
                    listener(message.clone()).await?;
                }
                Ok(Response::Delivered {
                    receivers: listeners.len(),
                })
            }
            (_, Some(fallback)) => fallback(message).await,
            (_, None) => match message.kind {
                Kind::Command => Err(CoreError::UnknownCommand(name)),
                Kind::Channel => Err(CoreError::UnknownChannel(name)),
                Kind::Event => Ok(Response::Delivered { receivers: 0 }),
            },
        }
    }
}
