//! What the runner needs to know: model access, the limits of running turns, and how
//! permission requests are decided.

use std::fmt;
use std::time::Duration;

use agentbox_agent::AutoPolicy;
use agentbox_store::NodeRole;

/// How the CLI reaches a model. Secrets are never printed by `Debug`.
#[derive(Clone, Default)]
pub struct ModelAccess {
    pub api_key: Option<String>,
    pub auth_token: Option<String>,
    pub base_url: Option<String>,
    /// Set when the model is agentbox's own scripted mock (`serve --demo`).
    pub demo: bool,
}

impl ModelAccess {
    pub fn is_configured(&self) -> bool {
        self.api_key.is_some() || self.auth_token.is_some()
    }

    /// The variables the CLI reads.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(key) = &self.api_key {
            env.push(("ANTHROPIC_API_KEY".to_owned(), key.clone()));
        }
        if let Some(token) = &self.auth_token {
            env.push(("ANTHROPIC_AUTH_TOKEN".to_owned(), token.clone()));
        }
        if let Some(url) = &self.base_url {
            env.push(("ANTHROPIC_BASE_URL".to_owned(), url.clone()));
        }
        env
    }
}

impl fmt::Debug for ModelAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ModelAccess")
            .field("api_key", &redact(&self.api_key))
            .field("auth_token", &redact(&self.auth_token))
            .field("base_url", &self.base_url)
            .field("demo", &self.demo)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct RunnerConfig {
    pub model_access: ModelAccess,
    /// Refuse turns of users who have no model key of their own among their secrets
    /// (`--require-user-model-key`): the server's credentials are then never used.
    pub require_user_model_key: bool,
    /// Seals and opens users' secrets; derived from `SECRET_KEY`. The default is a key of
    /// this process only (tests).
    pub sealing_key: agentbox_secrets::SealingKey,
    /// Turns running at once; more wait for a slot.
    pub max_concurrent_turns: usize,
    /// How long an interrupted CLI gets to finish the turn before it is killed.
    pub interrupt_grace: Duration,
    /// How long a chat's CLI process stays up after a turn, ready for the next one. Zero
    /// stops it after every turn (the next turn resumes the session in a new process).
    pub idle_session_timeout: Duration,
    /// At most this many CLI processes are kept between turns (`--max-kept-cli`); a turn
    /// ending with the cap reached ends the least recently used one. Zero keeps none.
    pub max_kept_cli: usize,
    /// `CLAUDE_CODE_MAX_RETRIES`: how often the CLI retries a failed model call. The CLI's
    /// own default (10, with backoff) can keep a turn hanging for minutes.
    pub cli_max_retries: u32,
    /// The operator's instructions, appended to the system prompt of every chat before the
    /// user's and the chat's own.
    pub append_system_prompt: Option<String>,
    pub permissions: PermissionSettings,
    pub checkpoints: crate::checkpoints::CheckpointSettings,
    pub node: NodeSettings,
    /// Chats started from repositories: the clone and the git routes.
    pub git: crate::git::GitSettings,
}

/// This node of the installation: who it is, what it does, and how it shows it is alive.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// Unique among the installation's nodes (`--node-id`).
    pub id: String,
    /// `All` runs turns where they are submitted (the in-process queue); `Api` hands them
    /// to the durable queue and runs none; `Worker` claims them from it.
    pub role: NodeRole,
    /// Where the node answers, for the registry.
    pub address: Option<String>,
    /// How often the node beats, extends its job leases and sweeps expired nodes' turns.
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this is gone: its running turns are
    /// interrupted by the next sweep of any live node, and its job leases lapse.
    pub expiry: Duration,
    /// How often a worker looks for jobs and a node for controls when nothing woke it.
    pub poll: Duration,
}

impl NodeSettings {
    /// A node id for a node that was given none: `node-` and a random suffix.
    pub fn generated_id() -> String {
        format!("node-{}", uuid::Uuid::new_v4().simple())
    }
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            id: Self::generated_id(),
            role: NodeRole::All,
            address: None,
            heartbeat: Duration::from_secs(5),
            expiry: Duration::from_secs(30),
            poll: Duration::from_millis(500),
        }
    }
}

/// How permission requests are decided.
#[derive(Clone, Debug)]
pub struct PermissionSettings {
    /// How long a request waits for a person before it is denied.
    pub timeout: Duration,
    /// Offer `bypassPermissions` although the sandbox provider does not isolate the agent.
    pub allow_bypass_without_isolation: bool,
    /// The `auto` mode's policy.
    pub auto: AutoPolicy,
}

impl Default for PermissionSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            allow_bypass_without_isolation: false,
            auto: AutoPolicy::default(),
        }
    }
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            model_access: ModelAccess::default(),
            require_user_model_key: false,
            sealing_key: agentbox_secrets::SealingKey::ephemeral(),
            max_concurrent_turns: 8,
            interrupt_grace: Duration::from_secs(5),
            idle_session_timeout: Duration::from_secs(600),
            max_kept_cli: 32,
            cli_max_retries: 3,
            append_system_prompt: None,
            permissions: PermissionSettings::default(),
            checkpoints: crate::checkpoints::CheckpointSettings::default(),
            node: NodeSettings::default(),
            git: crate::git::GitSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let access = ModelAccess {
            api_key: Some("sk-ant-secret".into()),
            auth_token: Some("tok-secret".into()),
            base_url: Some("http://127.0.0.1:1".into()),
            demo: false,
        };
        let text = format!("{access:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("127.0.0.1"));
        assert!(access.is_configured());
        assert!(!ModelAccess::default().is_configured());
    }
}
