//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files at compile
//! time, and without this hint Cargo would not notice a new file in the directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
