//! Agent extensions: a user's (or a chat's) slash commands, skills, sub-agents and MCP
//! servers, their API bodies, and what makes one valid (names as the CLI takes them, sizes,
//! counts, relative paths only), checked once here for every caller.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A name: 1 to 64 of lowercase letters, digits, `-` and `_`, starting with a letter or a
/// digit, never `__` (the CLI names an MCP tool `mcp__<server>__<tool>`, so a server name
/// with `__` would be ambiguous). The CLI reads a command's name from its file name, so the
/// rule also keeps every name a plain file name.
pub const MAX_NAME_CHARS: usize = 64;
/// A command's, skill's or agent's Markdown, and each extra file of a skill.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Extra files of one skill.
pub const MAX_SKILL_FILES: usize = 32;
/// Definitions of one kind in one scope (a user's own set, or one chat's).
pub const MAX_PER_KIND: usize = 100;
/// A description (one line).
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// An MCP server's command, an argument, a URL, an environment or header value.
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// Arguments, environment variables or headers of one MCP server.
pub const MAX_MCP_ENTRIES: usize = 64;

/// The four kinds, as stored (`kind` column) and as the routes name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExtensionKind {
    Command,
    Skill,
    Agent,
    McpServer,
}

impl ExtensionKind {
    pub const ALL: [Self; 4] = [Self::Command, Self::Skill, Self::Agent, Self::McpServer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Skill => "skill",
            Self::Agent => "agent",
            Self::McpServer => "mcp_server",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// How a person reads it ("command", "MCP server").
    pub const fn label(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Skill => "skill",
            Self::Agent => "agent",
            Self::McpServer => "MCP server",
        }
    }
}

/// Whose a definition is: the user's own set, or the chat's override or addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExtensionSource {
    User,
    Chat,
}

/// `POST /api/v1/commands`, `PUT /api/v1/commands/{name}` (and a chat's): a slash command.
/// `content` is the command's Markdown; it may start with the CLI's own frontmatter
/// (`argument-hint`, `allowed-tools`, `model`, ...), else agentbox writes one with the
/// description. `$ARGUMENTS` in it is what follows `/name` in a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Required in a POST; in a PUT, the path's name (if given, it must be the same).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub content: String,
}

/// A skill: `~/.claude/skills/<name>/SKILL.md` and its extra files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillRequest {
    #[serde(default)]
    pub name: Option<String>,
    pub description: String,
    /// `SKILL.md`'s instructions (frontmatter optional: agentbox writes `name` and
    /// `description` when it has none).
    pub content: String,
    /// Extra files of the skill by relative path (`reference.md`, `scripts/check.py`).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// A custom agent (sub-agent): `~/.claude/agents/<name>.md`, its system prompt in `content`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    #[serde(default)]
    pub name: Option<String>,
    pub description: String,
    pub content: String,
}

/// How the CLI reaches an MCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A process in the sandbox speaking JSON-RPC on stdin and stdout.
    Stdio,
    Http,
    Sse,
}

/// A reference to one of the user's secrets (`{"secret": "GITHUB_TOKEN"}`), resolved when a
/// CLI starts and passed in its environment only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub secret: String,
}

/// An environment variable's or a header's value: a plain string, or one of the user's
/// secrets by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum McpValue {
    Text(String),
    Secret(SecretRef),
}

/// An MCP server: `{type: "stdio", command, args, env}` or `{type: "http"|"sse", url,
/// headers}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct McpServerRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub transport: McpTransport,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, McpValue>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, McpValue>,
}

/// A stored definition, any kind: the fields its request had but the name. This is the
/// `body` document of the store, and the fields of [`ExtensionInfo`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtensionDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A command's, skill's or agent's Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A skill's extra files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// An MCP server's transport.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<McpTransport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, McpValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, McpValue>,
}

impl ExtensionDefinition {
    /// The names of the user's secrets this definition refers to.
    pub fn secret_names(&self) -> Vec<&str> {
        self.env
            .values()
            .chain(self.headers.values())
            .filter_map(|value| match value {
                McpValue::Secret(SecretRef { secret }) => Some(secret.as_str()),
                McpValue::Text(_) => None,
            })
            .collect()
    }
}

/// A definition as the API shows it: its secrets only as `{"secret": NAME}` references,
/// never values (the store never holds one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtensionInfo {
    pub kind: ExtensionKind,
    pub name: String,
    /// The user's own, or the chat's (in a chat's list, the chat's wins over the user's of
    /// the same name).
    pub source: ExtensionSource,
    #[serde(flatten)]
    pub definition: ExtensionDefinition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/v1/chats/{chat_id}/extensions/status`: what the chat's CLI reported it loaded
/// when it last started (its `system/init`), and whether each of the chat's definitions is
/// among it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtensionsStatus {
    /// When the CLI last reported; `None` before the chat's first turn.
    pub reported_at: Option<DateTime<Utc>>,
    /// Every slash command the CLI offers, built-in ones and skills included.
    pub slash_commands: Vec<String>,
    pub skills: Vec<String>,
    pub agents: Vec<String>,
    pub mcp_servers: Vec<McpServerStatus>,
    /// The chat's effective definitions.
    pub definitions: Vec<DefinitionStatus>,
}

/// One MCP server as the CLI reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct McpServerStatus {
    pub name: String,
    /// The CLI's word: `connected`, `failed`, `needs-auth`, `pending`.
    pub status: String,
}

/// One of the chat's definitions and whether the CLI's last report has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefinitionStatus {
    pub kind: ExtensionKind,
    pub name: String,
    pub source: ExtensionSource,
    /// Whether the last report lists it (an MCP server: as connected). `false` for one
    /// the CLI dropped, such as a skill with broken frontmatter, or a server that failed.
    pub loaded: bool,
    /// Changed after the last report: the next turn installs it, and tells.
    pub changed_since_report: bool,
}

/// Why a definition was refused: a stable snake_case code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionError {
    /// `invalid_extension_name`, `invalid_extension`, `extension_too_large`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExtensionError {}

fn invalid(message: impl Into<String>) -> ExtensionError {
    ExtensionError { code: "invalid_extension", message: message.into() }
}

fn too_large(message: impl Into<String>) -> ExtensionError {
    ExtensionError { code: "extension_too_large", message: message.into() }
}

/// Check a name (see [`MAX_NAME_CHARS`]).
pub fn check_name(name: &str) -> Result<(), ExtensionError> {
    let bad = |why: &str| ExtensionError {
        code: "invalid_extension_name",
        message: format!(
            "The name {name:?} {why}: use 1 to {MAX_NAME_CHARS} lowercase letters, digits, \
             '-' and '_', starting with a letter or a digit."
        ),
    };
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(bad("has the wrong length"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(bad("has a character names cannot have"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("does not start with a letter or a digit"));
    }
    if name.contains("__") {
        return Err(bad("contains '__'"));
    }
    Ok(())
}

/// The name a request ends up with: the path's (a PUT) or the body's (a POST); both given
/// must agree.
pub fn request_name(path: Option<&str>, body: Option<&str>) -> Result<String, ExtensionError> {
    let name = match (path, body) {
        (Some(path), Some(body)) if path != body => {
            return Err(invalid(format!(
                "The body names {body:?} but the path {path:?}; leave `name` out or make them agree."
            )));
        }
        (Some(name), _) | (None, Some(name)) => name,
        (None, None) => return Err(invalid("A `name` is required.")),
    };
    check_name(name)?;
    Ok(name.to_owned())
}

fn check_description(description: Option<&str>, required: bool) -> Result<(), ExtensionError> {
    match description {
        None | Some("") if required => Err(invalid("A `description` is required.")),
        None => Ok(()),
        Some(text) => {
            if text.chars().count() > MAX_DESCRIPTION_CHARS {
                return Err(too_large(format!(
                    "A description is at most {MAX_DESCRIPTION_CHARS} characters."
                )));
            }
            if text.chars().any(char::is_control) {
                return Err(invalid("A description is one line without control characters."));
            }
            Ok(())
        }
    }
}

fn check_content(what: &str, content: &str) -> Result<(), ExtensionError> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(too_large(format!("{what} is at most {} KiB.", MAX_CONTENT_BYTES / 1024)));
    }
    if content.trim().is_empty() {
        return Err(invalid(format!("{what} cannot be empty.")));
    }
    if content.contains('\0') {
        return Err(invalid(format!("{what} cannot hold a NUL character.")));
    }
    Ok(())
}

/// A skill's extra file path: relative, at most 8 parts of letters, digits, `.`, `-` and
/// `_`, none of them `.` or `..` or hidden, and not `SKILL.md` itself.
pub fn check_skill_path(path: &str) -> Result<(), ExtensionError> {
    let bad = |why: &str| invalid(format!("The skill file path {path:?} {why}."));
    if path.is_empty() || path.len() > 255 {
        return Err(bad("has the wrong length (1 to 255 bytes)"));
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad("is not a relative path with '/' separators"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 8 {
        return Err(bad("is more than 8 levels deep"));
    }
    for part in &parts {
        if part.is_empty() || part.starts_with('.') {
            return Err(bad("has an empty, hidden, '.' or '..' part"));
        }
        if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return Err(bad("has a character other than letters, digits, '.', '-' and '_'"));
        }
    }
    if path == "SKILL.md" {
        return Err(bad("is the skill's own SKILL.md (that is `content`)"));
    }
    Ok(())
}

impl CommandRequest {
    pub fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError> {
        check_description(self.description.as_deref(), false)?;
        check_content("A command's content", &self.content)?;
        Ok(ExtensionDefinition {
            description: self.description.filter(|d| !d.is_empty()),
            content: Some(self.content),
            ..ExtensionDefinition::default()
        })
    }
}

impl SkillRequest {
    pub fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError> {
        check_description(Some(&self.description), true)?;
        check_content("A skill's content", &self.content)?;
        if self.files.len() > MAX_SKILL_FILES {
            return Err(too_large(format!("A skill has at most {MAX_SKILL_FILES} extra files.")));
        }
        for (path, text) in &self.files {
            check_skill_path(path)?;
            check_content(&format!("The skill file {path:?}"), text)?;
        }
        // Two paths where one is the other's directory cannot both be files.
        for path in self.files.keys() {
            let dir = format!("{path}/");
            if self.files.keys().any(|other| other.starts_with(&dir)) {
                return Err(invalid(format!(
                    "The skill file {path:?} is also a directory of another file."
                )));
            }
        }
        Ok(ExtensionDefinition {
            description: Some(self.description),
            content: Some(self.content),
            files: self.files,
            ..ExtensionDefinition::default()
        })
    }
}

impl AgentRequest {
    pub fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError> {
        check_description(Some(&self.description), true)?;
        check_content("An agent's content", &self.content)?;
        Ok(ExtensionDefinition {
            description: Some(self.description),
            content: Some(self.content),
            ..ExtensionDefinition::default()
        })
    }
}

fn check_field(what: &str, text: &str) -> Result<(), ExtensionError> {
    if text.len() > MAX_FIELD_BYTES {
        return Err(too_large(format!("{what} is at most {} KiB.", MAX_FIELD_BYTES / 1024)));
    }
    if text.contains('\0') {
        return Err(invalid(format!("{what} cannot hold a NUL character.")));
    }
    Ok(())
}

fn check_values(
    what: &str,
    values: &BTreeMap<String, McpValue>,
    key_ok: fn(&str) -> bool,
) -> Result<(), ExtensionError> {
    if values.len() > MAX_MCP_ENTRIES {
        return Err(too_large(format!("An MCP server has at most {MAX_MCP_ENTRIES} {what}s.")));
    }
    for (key, value) in values {
        if !key_ok(key) {
            return Err(invalid(format!("{key:?} is not a valid {what} name.")));
        }
        match value {
            McpValue::Text(text) => {
                check_field(&format!("The {what} {key}"), text)?;
                if text.contains(['\r', '\n']) && what == "header" {
                    return Err(invalid(format!("The header {key} cannot hold a line break.")));
                }
                // `${...}` is the CLI's own expansion of its environment: a plain value
                // with it could read any variable of the CLI's, secrets included.
                if text.contains("${") {
                    return Err(invalid(format!(
                        "The {what} {key} cannot contain \"${{\"; name a secret with \
                         {{\"secret\": NAME}} instead."
                    )));
                }
            }
            McpValue::Secret(SecretRef { secret }) => {
                if !env_name_ok(secret) {
                    return Err(invalid(format!("{secret:?} is not a secret's name.")));
                }
            }
        }
    }
    Ok(())
}

fn env_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn header_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl McpServerRequest {
    pub fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError> {
        match self.transport {
            McpTransport::Stdio => {
                let Some(command) = self.command.as_deref().filter(|c| !c.trim().is_empty()) else {
                    return Err(invalid("A stdio MCP server needs a `command`."));
                };
                check_field("The command", command)?;
                if self.url.is_some() || !self.headers.is_empty() {
                    return Err(invalid(
                        "A stdio MCP server has `command`, `args` and `env`, not `url` or `headers`.",
                    ));
                }
                if self.args.len() > MAX_MCP_ENTRIES {
                    return Err(too_large(format!(
                        "An MCP server has at most {MAX_MCP_ENTRIES} arguments."
                    )));
                }
                for arg in &self.args {
                    check_field("An argument", arg)?;
                    if arg.contains("${") {
                        return Err(invalid(
                            "An argument cannot contain \"${\"; pass a secret in `env` instead.",
                        ));
                    }
                }
                check_values("environment variable", &self.env, env_name_ok)?;
            }
            McpTransport::Http | McpTransport::Sse => {
                let Some(url) = self.url.as_deref() else {
                    return Err(invalid("An http or sse MCP server needs a `url`."));
                };
                check_field("The URL", url)?;
                let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
                if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/'))
                    || url.contains(char::is_whitespace)
                    || url.contains("${")
                {
                    return Err(invalid("The URL must be an http:// or https:// URL with a host."));
                }
                if self.command.is_some() || !self.args.is_empty() || !self.env.is_empty() {
                    return Err(invalid(
                        "An http or sse MCP server has `url` and `headers`, not `command`, \
                         `args` or `env`.",
                    ));
                }
                check_values("header", &self.headers, header_name_ok)?;
            }
        }
        Ok(ExtensionDefinition {
            transport: Some(self.transport),
            command: self.command,
            args: self.args,
            env: self.env,
            url: self.url,
            headers: self.headers,
            ..ExtensionDefinition::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_what_the_cli_takes() {
        for good in ["review", "fix-bug", "a1", "db_tools", "9lives"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        for bad in ["", "Review", "-x", "_x", "a b", "a/b", "..", "a__b", "ü", long.as_str()] {
            assert_eq!(check_name(bad).unwrap_err().code, "invalid_extension_name", "{bad}");
        }
    }

    #[test]
    fn skill_paths_stay_inside_the_skill() {
        for good in ["reference.md", "scripts/check.py", "a/b/c.txt"] {
            assert!(check_skill_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", ".hidden", "a\\b", "SKILL.md"] {
            assert!(check_skill_path(bad).is_err(), "{bad}");
        }
        let files = BTreeMap::from([("a".to_owned(), "x".to_owned()), ("a/b".into(), "y".into())]);
        let skill =
            SkillRequest { name: None, description: "d".into(), content: "c".into(), files };
        assert!(skill.into_definition().is_err());
    }

    #[test]
    fn sizes_are_bounded() {
        let big = "x".repeat(MAX_CONTENT_BYTES + 1);
        let command = CommandRequest { name: None, description: None, content: big };
        assert_eq!(command.into_definition().unwrap_err().code, "extension_too_large");
        let files = (0..=MAX_SKILL_FILES).map(|i| (format!("f{i}"), "x".to_owned())).collect();
        let skill =
            SkillRequest { name: None, description: "d".into(), content: "c".into(), files };
        assert_eq!(skill.into_definition().unwrap_err().code, "extension_too_large");
    }

    #[test]
    fn mcp_servers_are_stdio_or_http_with_secret_references() {
        let stdio: McpServerRequest = serde_json::from_value(json!({
            "type": "stdio", "command": "python3", "args": ["server.py"],
            "env": {"PLAIN": "1", "TOKEN": {"secret": "GITHUB_TOKEN"}}
        }))
        .unwrap();
        let definition = stdio.into_definition().unwrap();
        assert_eq!(definition.secret_names(), ["GITHUB_TOKEN"]);
        let http: McpServerRequest = serde_json::from_value(json!({
            "type": "http", "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": {"secret": "MCP_TOKEN"}}
        }))
        .unwrap();
        assert!(http.into_definition().is_ok());
        for bad in [
            json!({"type": "stdio"}),
            json!({"type": "stdio", "command": "x", "url": "https://a"}),
            json!({"type": "http", "url": "ftp://a"}),
            json!({"type": "http", "url": "https://"}),
            json!({"type": "sse", "url": "https://a", "env": {"A": "1"}}),
            json!({"type": "stdio", "command": "x", "env": {"A": "${HOME}"}}),
            json!({"type": "stdio", "command": "x", "env": {"1A": "v"}}),
            json!({"type": "stdio", "command": "x", "env": {"A": {"secret": "a-b"}}}),
            json!({"type": "http", "url": "https://a", "headers": {"X": "a\nb"}}),
        ] {
            let request: McpServerRequest = serde_json::from_value(bad.clone()).unwrap();
            assert!(request.into_definition().is_err(), "{bad}");
        }
        // Unknown fields and unknown value shapes are refused by the parser.
        for bad in [
            json!({"type": "stdio", "command": "x", "extra": 1}),
            json!({"type": "ws", "url": "https://a"}),
            json!({"type": "stdio", "command": "x", "env": {"A": {"secret": "B", "x": 1}}}),
            json!({"type": "stdio", "command": "x", "env": {"A": 1}}),
        ] {
            assert!(serde_json::from_value::<McpServerRequest>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_name_comes_from_the_path_or_the_body() {
        assert_eq!(request_name(Some("a"), None).unwrap(), "a");
        assert_eq!(request_name(None, Some("b")).unwrap(), "b");
        assert!(request_name(Some("a"), Some("b")).is_err());
        assert!(request_name(None, None).is_err());
    }

    #[test]
    fn a_definition_round_trips_as_its_stored_body() {
        let definition = McpServerRequest {
            name: None,
            transport: McpTransport::Stdio,
            command: Some("x".into()),
            args: vec!["a".into()],
            env: BTreeMap::from([("T".into(), McpValue::Secret(SecretRef { secret: "S".into() }))]),
            url: None,
            headers: BTreeMap::new(),
        }
        .into_definition()
        .unwrap();
        let body = serde_json::to_string(&definition).unwrap();
        assert_eq!(
            body,
            r#"{"type":"stdio","command":"x","args":["a"],"env":{"T":{"secret":"S"}}}"#
        );
        assert_eq!(serde_json::from_str::<ExtensionDefinition>(&body).unwrap(), definition);
    }
}
