//! Making hook components from what compilers produce: a core wasm module built with
//! wit-bindgen (which carries its WIT in a custom section), a bare core module, or WAT text.
//! A module without WIT metadata gets Airlock's own `airlock:hook` world embedded first.
//!
//! ```
//! let hook = airlock::component::from_wat(airlock::component::PASS_ALL_WAT)?;
//! assert!(hook.starts_with(b"\0asm"));
//! # Ok::<(), airlock::component::ComponentError>(())
//! ```

use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, SourceMap};

/// The `airlock:hook@0.1.0` WIT package, as built into this binary.
pub const WIT_FILES: [(&str, &str); 5] = [
    ("types.wit", include_str!("../wit/types.wit")),
    ("log.wit", include_str!("../wit/log.wit")),
    ("policy.wit", include_str!("../wit/policy.wit")),
    ("world.wit", include_str!("../wit/world.wit")),
    ("state.wit", include_str!("../wit/state.wit")),
];

/// A hook in WAT that passes every message and accepts any config: the smallest valid hook,
/// and a starting point for hand-written ones (it shows the canonical ABI of both exports).
pub const PASS_ALL_WAT: &str = include_str!("pass_all.wat");

/// Why a component could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The WAT text does not parse.
    #[error("invalid WAT: {0}")]
    Wat(String),
    /// The bytes are neither a core module, a component, nor WAT text.
    #[error("not a wasm module, component or WAT text (bad magic bytes, not UTF-8)")]
    NotWasm,
    /// The built-in WIT package failed to parse (a build defect).
    #[error("the built-in WIT package does not parse: {0}")]
    Wit(String),
    /// wit-component refused the module: a wrong export signature, a missing function…
    #[error("cannot make a component: {0}")]
    Encode(String),
}

/// Makes a hook component from WAT text (a core module in text form).
pub fn from_wat(wat: &str) -> Result<Vec<u8>, ComponentError> {
    let module = wat::parse_str(wat).map_err(|e| ComponentError::Wat(e.to_string()))?;
    from_module(module)
}

/// Makes a hook component from a core module, or returns a component unchanged.
pub fn from_bytes(bytes: Vec<u8>) -> Result<Vec<u8>, ComponentError> {
    match bytes.get(..8) {
        Some(b"\0asm\x0d\0\x01\0") => Ok(bytes),
        Some(b"\0asm\x01\0\0\0") => from_module(bytes),
        _ => match std::str::from_utf8(&bytes) {
            // WAT text: a module or a component.
            Ok(text) => {
                let parsed =
                    wat::parse_str(text).map_err(|e| ComponentError::Wat(e.to_string()))?;
                from_bytes(parsed)
            }
            _ => Err(ComponentError::NotWasm),
        },
    }
}

fn from_module(mut module: Vec<u8>) -> Result<Vec<u8>, ComponentError> {
    if !has_wit_metadata(&module) {
        // A module that imports host-owned state is a `stateful-hook`; any other a `hook`.
        let name = match imports_state(&module) {
            true => "stateful-hook",
            false => "hook",
        };
        let (resolve, world) = world_named(name)?;
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .map_err(|e| ComponentError::Encode(format!("{e:#}")))?;
    }
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| ComponentError::Encode(format!("{e:#}")))
}

fn has_wit_metadata(module: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(module).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(section))
            if section.name().starts_with("component-type"))
    })
}

/// Whether a core module imports `airlock:hook/state`.
fn imports_state(module: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(module)
        .any(|payload| match payload {
            Ok(wasmparser::Payload::ImportSection(imports)) => imports
                .into_imports()
                .any(|import| import.is_ok_and(|i| i.module == crate::hook::STATE_IMPORT)),
            _ => false,
        })
}

/// The parsed `airlock:hook` package and its `hook` world.
pub fn airlock_world() -> Result<(Resolve, wit_parser::WorldId), ComponentError> {
    world_named("hook")
}

/// The parsed `airlock:hook` package and its world `name`.
fn world_named(name: &str) -> Result<(Resolve, wit_parser::WorldId), ComponentError> {
    let mut sources = SourceMap::new();
    for (file, text) in WIT_FILES {
        sources.push_str(file, text);
    }
    let group = sources
        .parse()
        .map_err(|(_, e)| ComponentError::Wit(e.to_string()))?;
    let mut resolve = Resolve::default();
    let package = resolve
        .push_group(group)
        .map_err(|e| ComponentError::Wit(format!("{e:#}")))?;
    let world = resolve
        .select_world(&[package], Some(name))
        .map_err(|e| ComponentError::Wit(format!("{e:#}")))?;
    Ok((resolve, world))
}
