pub mod bearer;
pub mod body;
pub mod head;

pub mod problem;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
pub mod response;
