//! Host bindings generated from `wit/` by wasmtime's `bindgen!`. Kept alone so that
//! `missing_docs` is relaxed here and nowhere else.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hook",
    exports: { default: async },
});
