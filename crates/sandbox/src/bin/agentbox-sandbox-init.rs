//! The init of a `local` sandbox as a program of its own, for this crate's tests. The
//! `agentbox` binary serves the same purpose with `agentbox sandbox-init`.

fn main() -> std::io::Result<()> {
    agentbox_sandbox::local::init::main()
}
