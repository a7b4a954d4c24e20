//! Finding the Claude Code CLI: the configured path, then `PATH`, then the project's own
//! install (`tools/claude-code`, made by `scripts/setup`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The CLI version the project's set-up installs and the tests run against.
pub const PINNED_CLI_VERSION: &str = "2.1.332";

/// The npm package holding the native binary for this machine.
const NATIVE_PACKAGE: &str = if cfg!(target_arch = "aarch64") {
    "@anthropic-ai/claude-code-linux-arm64"
} else {
    "@anthropic-ai/claude-code-linux-x64"
};

/// A CLI binary found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliInstall {
    pub path: PathBuf,
    /// How it was found: `config`, `PATH` or `project`.
    pub source: &'static str,
}

impl CliInstall {
    /// Look for the CLI. A configured path that does not exist is an error rather than a
    /// reason to fall back: the operator asked for that binary.
    pub fn locate(configured: Option<&Path>) -> Result<Self, String> {
        if let Some(path) = configured {
            return if is_executable(path) {
                Ok(Self { path: path.to_owned(), source: "config" })
            } else {
                Err(format!(
                    "the configured Claude Code CLI {} is not an executable file",
                    path.display()
                ))
            };
        }
        if let Some(path) = find_on_path("claude") {
            return Ok(Self { path, source: "PATH" });
        }
        for path in project_candidates() {
            if is_executable(&path) {
                return Ok(Self { path, source: "project" });
            }
        }
        Err(format!(
            "the Claude Code CLI was not found: set AGENTBOX_CLAUDE_PATH, put `claude` on PATH, \
             or run scripts/setup to install version {PINNED_CLI_VERSION} into tools/claude-code"
        ))
    }

    /// The project's own install, wherever the binary or the checkout is.
    pub fn project_install() -> Option<PathBuf> {
        project_candidates().into_iter().find(|path| is_executable(path))
    }

    /// `claude --version`, e.g. `2.1.332`; `None` if it does not answer within a few seconds.
    pub async fn version(&self) -> Option<String> {
        #[allow(clippy::disallowed_methods)] // Runs only `--version` on the host: no agent code.
        let mut command = tokio::process::Command::new(&self.path);
        command.arg("--version").env("DISABLE_AUTOUPDATER", "1").kill_on_drop(true);
        let output =
            tokio::time::timeout(Duration::from_secs(15), command.output()).await.ok()?.ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace().next().map(str::to_owned)
    }
}

fn project_candidates() -> Vec<PathBuf> {
    let relative = Path::new("tools/claude-code/node_modules").join(NATIVE_PACKAGE).join("claude");
    let mut roots: Vec<PathBuf> = Vec::new();
    // Next to the binary: target/{debug,release}/agentbox sits two levels below the checkout.
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    // The checkout this binary was built from.
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    roots.into_iter().map(|root| root.join(&relative)).collect()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_must_exist() {
        let err = CliInstall::locate(Some(Path::new("/nonexistent/claude"))).unwrap_err();
        assert!(err.contains("/nonexistent/claude"), "{err}");
    }

    #[test]
    fn a_configured_executable_wins() {
        let found = CliInstall::locate(Some(Path::new("/bin/sh"))).unwrap();
        assert_eq!(found, CliInstall { path: "/bin/sh".into(), source: "config" });
    }
}
