//! Airlock for Tauri v2: every IPC message any webview of the app sends — app commands, plugin
//! commands (`plugin:NAME|cmd`), frontend events (`plugin:event|emit`, `emit_to`, `listen`,
//! `unlisten`) — goes through Airlock's hook chain before Tauri dispatches it. The frontend does
//! not change: `@tauri-apps/api`'s `invoke`, `emit`, `listen` and `Channel` keep working.
//!
//! # Quick start
//!
//! ```no_run
//! use airlock::Route;
//! use airlock_tauri::{Airlock, AirlockExt as _};
//!
//! fn run(context: tauri::Context<tauri::Wry>) -> Result<(), Box<dyn std::error::Error>> {
//!     let airlock = Airlock::builder()
//!         // The default chain, in order: every message no route takes goes through both.
//!         .hook_file("hooks/path-guard.wasm")?
//!         .hook_file("hooks/redact.wasm")?
//!         // A chain of its own for the settings windows.
//!         .route_files(Route::any().window("settings-*"), ["hooks/strict.wasm"])?
//!         .build()?;
//!     tauri::Builder::default()
//!         .airlock(airlock)
//!         .run(context)?; // tauri::generate_context!() in an app
//!     Ok(())
//! }
//! ```
//!
//! # How it plugs into Tauri
//! [`AirlockExt::airlock`] installs three things together (see `docs/tauri.md`):
//! - an asynchronous URI scheme protocol named `ipc`, which makes Tauri skip its own: every
//!   `fetch('ipc://localhost/<cmd>')` the page makes (`http://ipc.localhost/<cmd>` on Windows)
//!   arrives here with its raw body, its headers and the webview label the runtime gives;
//! - Airlock's invoke script ([`tauri::Builder::invoke_system`]), which posts to that protocol
//!   with Tauri's headers *minus the invoke key*: the page never learns Tauri's key, so Tauri's
//!   `window.ipc.postMessage` fallback — which Tauri cannot turn off — drops whatever a page sends
//!   there, and the only way in is this protocol;
//! - a plugin whose setup refuses to start the app if its configuration turns on Tauri's own
//!   isolation pattern (whose script would give the page the key) or if it runs on Android
//!   (where Tauri always uses `postMessage`).
//!
//! Each request becomes an [`airlock::Request`] whose [`Source`](airlock::Source) comes from the
//! runtime (window and webview label) and the `Origin` header, goes through the
//! [`Gateway`] (the chain its [`Route`] selects, then the seal),
//! and the core side — the only place holding Tauri's invoke key — opens the envelope and hands
//! the message, as the hooks left it, to `WebviewWindow::on_message`: Tauri's ACL and command
//! dispatch run after the hooks, exactly as before. A rejection reaches the page's promise as
//! `{code, reason, hook}`; the command's own errors reach it exactly as Tauri sends them.
//!
//! # What the hook sees
//! - `kind`: `event` for `plugin:event|emit` and `plugin:event|emit_to`, `command` for every
//!   other invoke (the name is always Tauri's command name, e.g. `plugin:event|emit`, whose body
//!   is `{event, payload}`).
//! - `body`: JSON text as the page sent it (an empty body is `{}`, as in Tauri), or raw bytes for
//!   `application/octet-stream` (ArrayBuffers, typed arrays and arrays).
//! - `headers`: the page's own headers (`invoke(cmd, args, { headers })`, Tauri's
//!   `Tauri-Channel-Id`), without the transport headers listed in [`TRANSPORT_HEADERS`].
//!
//! A request carrying `Tauri-Invoke-Key` is refused (`airlock-invoke-key`) and logged: it means
//! something gave the page Tauri's key.
#![deny(missing_docs)]

mod forward;
mod protocol;

use std::path::Path;
use std::sync::Arc;

use airlock::{
    EngineConfig, Gateway, GatewayLimits, Hook, HookEngine, HookError, HookOptions, Route, Router,
    SealConfig, SealError,
};
use tauri::Runtime;
use tauri::utils::config::PatternKind;

pub use protocol::TRANSPORT_HEADERS;

/// Codes of the rejections this crate makes itself (the hooks' and the gateway's are in
/// [`airlock::code`]).
pub mod code {
    /// The request carried Tauri's invoke key: something gave the page the key.
    pub const INVOKE_KEY: &str = "airlock-invoke-key";
    /// The request is not one Tauri's invoke script would make (method, headers, content type,
    /// a name that is not UTF-8).
    pub const BAD_REQUEST: &str = "airlock-bad-request";
    /// The webview that sent it is not a webview window the core can reach.
    pub const NO_WEBVIEW: &str = "airlock-no-webview";
    /// Tauri dropped the request without answering.
    pub const NO_ANSWER: &str = "airlock-no-answer";
}

/// Why Airlock could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hook (or the engine) could not be loaded.
    #[error("cannot load hook {path:?}")]
    Hook {
        /// The file, or `<bytes>` for a hook given as bytes.
        path: String,
        /// Why.
        #[source]
        source: HookError,
    },
    /// The builder has no hook for its default chain.
    #[error("Airlock needs at least one hook for its default chain (AirlockBuilder::hook_file)")]
    NoHook,
    /// A route was given no hook.
    #[error("route {0} has no hook; a route must not be a way around the hooks")]
    EmptyRoute(String),
    /// The seal's keys could not be made.
    #[error("cannot set up the seal")]
    Seal(#[from] SealError),
}

/// Airlock, ready to be installed on a [`tauri::Builder`] with [`AirlockExt::airlock`].
#[derive(Debug, Clone)]
pub struct Airlock {
    gateway: Arc<Gateway>,
}

impl Airlock {
    /// A builder with no hooks, default limits and a fresh engine.
    pub fn builder() -> AirlockBuilder {
        AirlockBuilder::default()
    }

    /// The gateway every message goes through (for its routes, hook digests or a reload).
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }
}

/// Builds an [`Airlock`]: a default chain of hooks, routes with chains of their own, limits.
///
/// Defaults: no hook (one is required), [`GatewayLimits::default`] (4 MiB per message),
/// [`SealConfig::default`], one [`HookEngine`] with [`EngineConfig::default`], hooks loaded
/// with [`HookOptions::default`] (config `{}`, a fresh instance per message).
#[derive(Debug, Default)]
pub struct AirlockBuilder {
    engine: Option<HookEngine>,
    chain: Vec<Hook>,
    routes: Vec<(Route, Vec<Hook>)>,
    limits: GatewayLimits,
    seal: SealConfig,
}

impl AirlockBuilder {
    /// Uses `engine` for the hooks loaded from files from now on (set it before them).
    pub fn engine(mut self, engine: HookEngine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The engine hooks are loaded on, made with [`EngineConfig::default`] if none was given.
    pub fn hook_engine(&mut self) -> Result<&HookEngine, Error> {
        if self.engine.is_none() {
            let engine =
                HookEngine::new(EngineConfig::default()).map_err(|source| Error::Hook {
                    path: "<engine>".to_owned(),
                    source,
                })?;
            self.engine = Some(engine);
        }
        Ok(self.engine.as_ref().expect("set above"))
    }

    /// Appends a loaded hook to the default chain.
    pub fn hook(mut self, hook: Hook) -> Self {
        self.chain.push(hook);
        self
    }

    /// Loads the hook component at `path` (config `{}`) and appends it to the default chain.
    pub fn hook_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        self.hook_file_with(path, HookOptions::default())
    }

    /// Loads the hook component at `path` with `options` (its config, limits, instance mode) and
    /// appends it to the default chain.
    pub fn hook_file_with(
        mut self,
        path: impl AsRef<Path>,
        options: HookOptions,
    ) -> Result<Self, Error> {
        let hook = self.load(path.as_ref(), options)?;
        Ok(self.hook(hook))
    }

    /// Sends the messages `route` matches through `hooks`, in order, instead of the default
    /// chain (see [`Gateway::route`]); routes are tried in the order they were added.
    pub fn route(mut self, route: Route, hooks: Vec<Hook>) -> Result<Self, Error> {
        if hooks.is_empty() {
            return Err(Error::EmptyRoute(route.to_string()));
        }
        self.routes.push((route, hooks));
        Ok(self)
    }

    /// [`AirlockBuilder::route`] with hooks loaded from files (config `{}`).
    pub fn route_files<P: AsRef<Path>>(
        mut self,
        route: Route,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self, Error> {
        let hooks = paths
            .into_iter()
            .map(|path| self.load(path.as_ref(), HookOptions::default()))
            .collect::<Result<Vec<_>, _>>()?;
        self.route(route, hooks)
    }

    /// Limits on every message (size, name, headers, JSON depth).
    pub fn limits(mut self, limits: GatewayLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Key rotation, replay window and AES-GCM provider of the seal.
    pub fn seal(mut self, seal: SealConfig) -> Self {
        self.seal = seal;
        self
    }

    /// The gateway, its seal keys fresh from the OS RNG.
    pub fn build(self) -> Result<Airlock, Error> {
        let mut chain = self.chain.into_iter();
        let first = chain.next().ok_or(Error::NoHook)?;
        let router = Router::new().fallback(forward::dispatch);
        let mut gateway = Gateway::with_config(first, router, self.limits, self.seal)?;
        for hook in chain {
            gateway = gateway.then(hook);
        }
        for (route, hooks) in self.routes {
            gateway = gateway.route(route, hooks);
        }
        Ok(Airlock {
            gateway: Arc::new(gateway),
        })
    }

    fn load(&mut self, path: &Path, options: HookOptions) -> Result<Hook, Error> {
        let engine = self.hook_engine()?;
        Hook::load_file(engine, path, options).map_err(|source| Error::Hook {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Installs Airlock on a Tauri app's builder.
pub trait AirlockExt<R: Runtime> {
    /// Takes over the app's IPC: the `ipc` protocol, the invoke script (call no
    /// `invoke_system` after this) and a plugin that refuses to start under Tauri's isolation
    /// pattern or on Android.
    fn airlock(self, airlock: Airlock) -> tauri::Builder<R>;
}

impl<R: Runtime> AirlockExt<R> for tauri::Builder<R> {
    fn airlock(self, airlock: Airlock) -> tauri::Builder<R> {
        let gateway = airlock.gateway;
        self.invoke_system(protocol::INVOKE_SCRIPT.as_str())
            .register_asynchronous_uri_scheme_protocol("ipc", move |context, request, responder| {
                protocol::handle(&gateway, context, request, responder)
            })
            .plugin(plugin())
    }
}

/// The plugin whose setup checks what the builder cannot: the app's configuration and platform.
fn plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("airlock")
        .setup(|app, _api| {
            check_pattern(&app.config().app.security.pattern)?;
            if cfg!(target_os = "android") {
                return Err(
                    "Airlock cannot guard a Tauri app on Android: Tauri always uses \
                            window.ipc.postMessage there, which Airlock cannot see"
                        .into(),
                );
            }
            Ok(())
        })
        .build()
}

/// Refuses Tauri's isolation pattern: its script sends Tauri's invoke key to the page's iframe
/// and posts messages Airlock cannot see.
fn check_pattern(pattern: &PatternKind) -> Result<(), String> {
    match pattern {
        PatternKind::Brownfield => Ok(()),
        PatternKind::Isolation { dir } => Err(format!(
            "Airlock replaces Tauri's isolation pattern: remove app.security.pattern \
             (isolation, dir {dir:?}) from tauri.conf.json"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_isolation_pattern_is_refused_with_a_reason_naming_it() {
        assert_eq!(check_pattern(&PatternKind::Brownfield), Ok(()));
        let refused = check_pattern(&PatternKind::Isolation {
            dir: "../isolation".into(),
        })
        .unwrap_err();
        assert!(refused.contains("isolation"), "{refused}");
        assert!(refused.contains("../isolation"), "{refused}");
    }

    #[test]
    fn a_builder_without_hooks_is_refused() {
        assert!(matches!(Airlock::builder().build(), Err(Error::NoHook)));
    }

    #[test]
    fn a_route_without_hooks_is_refused() {
        let refused = Airlock::builder()
            .route(Route::any().window("settings-*"), Vec::new())
            .unwrap_err();
        assert!(refused.to_string().contains("settings-*"), "{refused}");
    }
}
