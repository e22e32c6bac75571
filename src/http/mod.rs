pub mod bearer;
pub mod body;
pub mod head;

#[cfg(target_arch = "wasm32")]
pub mod js;
pub mod problem;
#[cfg(target_arch = "wasm32")]
pub mod response;
