pub mod bearer;
pub mod body;
pub mod head;
pub mod plain;
pub mod problem;
