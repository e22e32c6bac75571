//! Storage adapters. These two files are the only ones that name KV or D1 types.

pub mod d1;
pub mod kv;
