//! A chat's agent extensions made real for its CLI: the user's commands, skills and agents
//! (with the chat's own over them) written into the workspace where the CLI reads them
//! (`~/.claude/commands/<name>.md`, `~/.claude/skills/<name>/`, `~/.claude/agents/<name>.md`),
//! and its MCP servers as the `--mcp-config` of each CLI start. A secret an MCP server names
//! is passed only in the CLI's environment (`AGENTBOX_MCP_<NAME>`), referenced from the
//! config as `${AGENTBOX_MCP_<NAME>}`, so no value is ever in a file, an argument or an event.
//!
//! agentbox keeps a manifest of what it wrote (`~/.claude/.agentbox-extensions.json`): a
//! definition deleted since is removed from the workspace, and files the user or the agent
//! put there themselves are left alone.

use std::collections::{BTreeMap, BTreeSet};

use agentbox_protocol::extension::{
    ExtensionDefinition, ExtensionKind, McpTransport, McpValue, SecretRef, check_name,
    check_skill_path,
};
use agentbox_sandbox::{SandboxError, Workspace};
use agentbox_store::{ExtensionRecord, Store};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::secrets::ChatSecrets;

/// Where agentbox lists what it wrote, relative to the home.
const MANIFEST: &str = ".claude/.agentbox-extensions.json";
/// A manifest larger than this is not ours (ours lists at most a few hundred paths).
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The prefix of the environment variables that carry MCP servers' secrets.
const MCP_ENV_PREFIX: &str = "AGENTBOX_MCP_";

/// The files of a chat's commands, skills and agents, to be written into its workspace.
#[derive(Clone, Default)]
pub(crate) struct Installation {
    /// Files to have under the home: relative path → contents.
    files: BTreeMap<String, String>,
    /// Skill directories (`.claude/skills/<name>`), replaced whole.
    skill_dirs: BTreeSet<String>,
}

/// What one chat's CLI gets from its extensions.
#[derive(Default)]
pub(crate) struct ChatExtensions {
    pub installation: Installation,
    /// The `--mcp-config` JSON, if there is any MCP server.
    pub mcp_config: Option<String>,
    /// The secrets the MCP servers name, as the CLI's environment.
    pub mcp_env: Vec<(String, String)>,
    /// `kind name@updated_at` of every effective definition: a different one means the
    /// definitions changed since a CLI started.
    pub fingerprint: String,
    /// Why a definition was left out (a secret deleted since it was named, a stored row that
    /// is not valid any more), for a notice.
    pub problems: Vec<String>,
}

impl std::fmt::Debug for ChatExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatExtensions")
            .field("files", &self.installation.files.keys().collect::<Vec<_>>())
            .field("fingerprint", &self.fingerprint)
            .field("mcp_env", &self.mcp_env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ChatExtensions {
    /// The effective definitions of `user_id` in `chat_id`, rendered; secrets from `secrets`.
    pub async fn load(
        store: &Store,
        user_id: Uuid,
        chat_id: Uuid,
        secrets: &ChatSecrets,
    ) -> agentbox_store::Result<Self> {
        // The chat's come second, so they replace the user's of the same kind and name.
        let mut rows: BTreeMap<(String, String), ExtensionRecord> = BTreeMap::new();
        for scope in [None, Some(chat_id)] {
            for row in store.extensions(user_id, scope, None).await? {
                rows.insert((row.kind.clone(), row.name.clone()), row);
            }
        }
        let mut out = Self::default();
        let mut servers = Map::new();
        let mut fingerprint = Vec::new();
        for ((kind, name), row) in &rows {
            fingerprint.push(format!("{kind} {name}@{}", row.updated_at.to_rfc3339()));
            let parsed = ExtensionKind::parse(kind)
                .zip(serde_json::from_str::<ExtensionDefinition>(&row.body).ok());
            let Some((kind, definition)) = parsed.filter(|_| check_name(name).is_ok()) else {
                out.problems
                    .push(format!("The stored {kind} {name:?} is not valid; it was left out."));
                continue;
            };
            let content = definition.content.clone().unwrap_or_default();
            match kind {
                ExtensionKind::Command => {
                    let text = match &definition.description {
                        Some(description) if !has_frontmatter(&content) => {
                            format!("---\ndescription: {}\n---\n\n{content}", quoted(description))
                        }
                        _ => content,
                    };
                    out.installation.files.insert(format!(".claude/commands/{name}.md"), text);
                }
                ExtensionKind::Agent => {
                    let text = with_frontmatter(name, &definition, content);
                    out.installation.files.insert(format!(".claude/agents/{name}.md"), text);
                }
                ExtensionKind::Skill => {
                    let dir = format!(".claude/skills/{name}");
                    for (path, text) in &definition.files {
                        if check_skill_path(path).is_ok() {
                            out.installation.files.insert(format!("{dir}/{path}"), text.clone());
                        }
                    }
                    let text = with_frontmatter(name, &definition, content);
                    out.installation.files.insert(format!("{dir}/SKILL.md"), text);
                    out.installation.skill_dirs.insert(dir);
                }
                ExtensionKind::McpServer => {
                    match mcp_server(name, &definition, secrets, &mut out.mcp_env) {
                        Ok(server) => {
                            servers.insert(name.clone(), server);
                        }
                        Err(problem) => out.problems.push(problem),
                    }
                }
            }
        }
        if !servers.is_empty() {
            out.mcp_config = Some(json!({ "mcpServers": servers }).to_string());
        }
        out.mcp_env.sort();
        out.mcp_env.dedup_by(|a, b| a.0 == b.0);
        out.fingerprint = fingerprint.join("\n");
        Ok(out)
    }
}

impl Installation {
    /// Make the workspace hold exactly these definitions among the files agentbox wrote:
    /// remove what the manifest lists but is gone, write the rest, then the manifest.
    pub fn install(&self, files: &Workspace) -> Result<(), SandboxError> {
        let old = read_manifest(files);
        // A chat without definitions, now or before, keeps its workspace exactly as it is.
        if self.files.is_empty() && old.is_empty() {
            return Ok(());
        }
        let new: BTreeSet<String> = self
            .files
            .keys()
            .filter(|path| !path.starts_with(".claude/skills/"))
            .cloned()
            .chain(self.skill_dirs.iter().cloned())
            .collect();
        // A skill is replaced whole, so that a file it no longer has goes too.
        for path in old.iter().filter(|path| !new.contains(*path)).chain(&self.skill_dirs) {
            if !ours(path) {
                continue;
            }
            match files.remove(path) {
                Ok(()) | Err(SandboxError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        for (path, text) in &self.files {
            files.write(path, text.as_bytes())?;
        }
        let manifest = serde_json::to_vec_pretty(&new).map_err(std::io::Error::other)?;
        files.write(MANIFEST, &manifest)?;
        Ok(())
    }
}

/// Only paths of the shapes agentbox writes are ever removed, whatever a manifest (which the
/// agent can edit) says.
fn ours(path: &str) -> bool {
    let check = |rest: Option<&str>, suffix: &str| {
        rest.and_then(|rest| rest.strip_suffix(suffix)).is_some_and(|name| check_name(name).is_ok())
    };
    check(path.strip_prefix(".claude/commands/"), ".md")
        || check(path.strip_prefix(".claude/agents/"), ".md")
        || check(path.strip_prefix(".claude/skills/"), "")
}

fn read_manifest(files: &Workspace) -> BTreeSet<String> {
    match files.read(MANIFEST, MAX_MANIFEST_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => BTreeSet::new(),
    }
}

fn has_frontmatter(content: &str) -> bool {
    content.starts_with("---\n") || content.starts_with("---\r\n")
}

/// A YAML scalar for any one-line text: a JSON string is a YAML double-quoted scalar.
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Skills and agents need `name` and `description` frontmatter; written when the content
/// has none of its own.
fn with_frontmatter(name: &str, definition: &ExtensionDefinition, content: String) -> String {
    if has_frontmatter(&content) {
        return content;
    }
    let description = definition.description.as_deref().unwrap_or(name);
    format!("---\nname: {name}\ndescription: {}\n---\n\n{content}", quoted(description))
}

/// One server of the `--mcp-config`, its secrets as `${AGENTBOX_MCP_<NAME>}` references whose
/// values go into `env`.
fn mcp_server(
    name: &str,
    definition: &ExtensionDefinition,
    secrets: &ChatSecrets,
    env: &mut Vec<(String, String)>,
) -> Result<Value, String> {
    let mut resolve = |values: &BTreeMap<String, McpValue>| -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for (key, value) in values {
            let text = match value {
                McpValue::Text(text) => text.clone(),
                McpValue::Secret(SecretRef { secret }) => {
                    let Some(value) = secrets.get(secret) else {
                        return Err(format!(
                            "The MCP server {name:?} names the secret {secret:?}, which does not \
                             exist any more; the server was left out."
                        ));
                    };
                    let var = format!("{MCP_ENV_PREFIX}{secret}");
                    env.push((var.clone(), value.to_owned()));
                    format!("${{{var}}}")
                }
            };
            out.insert(key.clone(), Value::String(text));
        }
        Ok(out)
    };
    match definition.transport {
        Some(McpTransport::Stdio) => Ok(json!({
            "type": "stdio",
            "command": definition.command.clone().unwrap_or_default(),
            "args": definition.args,
            "env": resolve(&definition.env)?,
        })),
        Some(transport @ (McpTransport::Http | McpTransport::Sse)) => Ok(json!({
            "type": if transport == McpTransport::Http { "http" } else { "sse" },
            "url": definition.url.clone().unwrap_or_default(),
            "headers": resolve(&definition.headers)?,
        })),
        None => Err(format!("The stored MCP server {name:?} has no type; it was left out.")),
    }
}

/// What changed between two fingerprints, for the turn's notice: "command review added,
/// skill checker changed, agent old removed".
pub(crate) fn describe_change(before: &str, after: &str) -> String {
    let parse = |text: &str| -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|line| line.rsplit_once('@'))
            .map(|(what, at)| (what.to_owned(), at.to_owned()))
            .collect()
    };
    let (before, after) = (parse(before), parse(after));
    let mut parts = Vec::new();
    for (what, at) in &after {
        match before.get(what) {
            None => parts.push(format!("{what} added")),
            Some(old) if old != at => parts.push(format!("{what} changed")),
            Some(_) => {}
        }
    }
    for what in before.keys().filter(|what| !after.contains_key(*what)) {
        parts.push(format!("{what} removed"));
    }
    let text = parts.join(", ").replace("mcp_server ", "MCP server ");
    if text.is_empty() { "definitions changed".to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_described_by_kind_and_name() {
        let before = "command a@1\nskill b@1\nagent c@1";
        let after = "command a@2\nskill b@1\nmcp_server d@1";
        assert_eq!(
            describe_change(before, after),
            "command a changed, MCP server d added, agent c removed"
        );
    }

    #[test]
    fn only_paths_agentbox_writes_are_removed() {
        for path in [".claude/commands/a.md", ".claude/agents/b-c.md", ".claude/skills/d"] {
            assert!(ours(path), "{path}");
        }
        for path in [
            ".claude/commands/../../x.md",
            ".claude/settings.json",
            ".claude/skills/d/../..",
            "work/file.md",
            ".claude/projects",
            ".claude/commands/A.md",
        ] {
            assert!(!ours(path), "{path}");
        }
    }
}
