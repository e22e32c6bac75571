//! The pure core: no `worker` types, no clock, no I/O. Everything here is tested natively with
//! `cargo test --lib`; the glue above only translates to and from the platform.

pub mod cache;
pub mod credits;
pub mod decide;
pub mod hash;
pub mod key;
pub mod model;
pub mod policy;
pub mod ratelimit;
pub mod record;
pub mod scope;
pub mod signing;
pub mod time;
pub mod usage;
pub mod validate;
