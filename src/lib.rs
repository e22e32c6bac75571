//! keyward: API-key authorization at the edge.
//!
//! `core` is pure (no clock, no I/O), `http` the plain request/response and error types, `store`
//! the storage contract with in-memory, D1 and KV implementations, `app` the handlers over plain
//! types, generic over the stores. `wasm` is the only module that knows it runs on Workers: the
//! fetch entry point and the conversions.

pub mod app;
pub mod core;
pub mod http;
pub mod log;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod wasm;
