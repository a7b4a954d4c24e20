//! The init of a `local` sandbox as a program of its own, for this crate's tests, and the
//! commands' shell when run as `agentbox-bash`. The `agentbox` binary serves the same
//! purpose with `agentbox sandbox-init`.

fn main() -> std::io::Result<()> {
    if agentbox_sandbox::local::shell::invoked_as_shell() {
        std::process::exit(agentbox_sandbox::local::shell::main());
    }
    agentbox_sandbox::local::init::main()
}
