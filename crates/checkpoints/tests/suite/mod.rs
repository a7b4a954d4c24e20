//! The test modules; `support` holds the tree fingerprint they compare with.

mod crash;
mod gc;
mod hostile;
mod restore;
mod rounds;
mod shared;
mod support;
mod work;
