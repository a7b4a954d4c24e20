//! Tells `spa.rs` where the web UI's build is: `AGENTBOX_WEB_DIST`, the absolute, canonical
//! path of `web/dist`.
//!
//! rust-embed compares every file it serves against the folder's canonical path. Given the
//! relative `../../web/dist` while that folder does not exist yet, it would keep the
//! uncanonical path and later refuse every file of a UI built after the server, so the path is
//! made canonical here from the checkout, which always exists.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let checkout = manifest.join("../..");
    let checkout = checkout.canonicalize().unwrap_or(checkout);
    let dist = checkout.join("web").join("dist");
    println!("cargo:rustc-env=AGENTBOX_WEB_DIST={}", dist.display());
    println!("cargo:rerun-if-changed=build.rs");
    // Release builds embed the files, so a new UI build must rebuild the server. Debug builds
    // read the files at run time and need not.
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rerun-if-changed={}", dist.display());
    }
}
