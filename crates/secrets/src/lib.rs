//! Users' secrets at rest: sealing values with a key derived from the server's
//! `SECRET_KEY` (seal.rs), and the rules for a secret's name and value, its kind and how it
//! is shown masked (names.rs).
//!
//! This crate knows no database, no HTTP and no sandbox: the store keeps the sealed text it
//! is given, the server checks names and seals, the runner opens values into a sandbox's
//! environment.

pub mod names;
pub mod seal;

pub use names::{
    MAX_NAME_LEN, MAX_SCOPE_BYTES, MAX_SECRETS_PER_SCOPE, MAX_VALUE_BYTES, MODEL_CREDENTIALS,
    MODEL_KEYS, NameError, SecretKind, check_name, mask,
};
pub use seal::{SealError, Sealed, SealingKey, associated_data};
