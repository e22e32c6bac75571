//! Server-side log lines. Callers never pass a key secret (only ids, hash prefixes, storage
//! messages); the e2e suite greps wrangler's log for every secret it mints to keep it so.

pub fn error(msg: &str) {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("{}", msg);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("keyward: {msg}");
}
