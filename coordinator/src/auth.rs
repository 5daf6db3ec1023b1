//! Authentication primitives: password hashing, access tokens (JWT) and the opaque secrets
//! (refresh tokens, API keys) whose hashes the store keeps.

pub mod access_token;
pub mod password;
pub mod secret;
pub mod service;
