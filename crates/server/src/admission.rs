//! The per-user limits applied to a queued prompt when the runner takes it after a turn
//! (`agentbox_runs::Admission`): the turn limits and the workspace disk limits, as when a
//! prompt is posted, and the limit on running sandboxes (which may stop an idle one of the
//! user's other chats). A refusal's text is the 429's message, shown in the chat.

use std::sync::{Arc, Weak};

use agentbox_runs::{Admission, TurnRunner};
use agentbox_sandbox::SandboxProvider;
use agentbox_store::{ChatRecord, Store};
use async_trait::async_trait;

use crate::accounts::Accounts;
use crate::limits;
use crate::state::AppState;
use crate::terminal::TerminalRegistry;

pub struct LimitAdmission {
    store: Store,
    accounts: Arc<Accounts>,
    sandboxes: Arc<dyn SandboxProvider>,
    /// Weak: the runner holds this admission.
    runner: Weak<TurnRunner>,
    terminals: Arc<TerminalRegistry>,
}

impl LimitAdmission {
    /// Install on the state's runner; `sandboxes` is the provider the runner was made with.
    pub fn install(state: &AppState, sandboxes: Arc<dyn SandboxProvider>) {
        let admission = Self {
            store: state.store.clone(),
            accounts: state.accounts.clone(),
            sandboxes,
            runner: Arc::downgrade(&state.runner),
            terminals: state.terminals.clone(),
        };
        state.runner.set_admission(Arc::new(admission));
    }
}

#[async_trait]
impl Admission for LimitAdmission {
    async fn admit(&self, chat: &ChatRecord) -> Result<(), String> {
        let checked = async {
            let limits =
                limits::of_user_in(&self.store, &self.accounts.limits, chat.user_id).await?;
            limits::check_turns(&self.store, chat.user_id, &limits).await?;
            crate::disk::check(&self.store, &*self.sandboxes, &limits, chat.user_id, chat.id, 0, 0)
                .await?;
            // The runner asking is alive; without it nothing starts anyway.
            let Some(runner) = self.runner.upgrade() else { return Ok(()) };
            crate::sandbox_limit::make_room(
                &self.store,
                &runner,
                &self.terminals,
                &limits,
                chat.user_id,
                chat.id,
            )
            .await
        };
        checked.await.map_err(|err| err.message)
    }
}
