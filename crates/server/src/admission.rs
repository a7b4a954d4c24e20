//! The per-user limits applied to a queued prompt when the runner takes it after a turn
//! (`agentbox_runs::Admission`): the turn limits and the workspace disk limits, as when a
//! prompt is posted. A refusal's text is the 429's message, shown in the chat.

use std::sync::Arc;

use agentbox_runs::Admission;
use agentbox_sandbox::SandboxProvider;
use agentbox_store::{ChatRecord, Store};
use async_trait::async_trait;

use crate::accounts::Accounts;
use crate::limits;
use crate::state::AppState;

pub struct LimitAdmission {
    store: Store,
    accounts: Arc<Accounts>,
    sandboxes: Arc<dyn SandboxProvider>,
}

impl LimitAdmission {
    /// Install on the state's runner; `sandboxes` is the provider the runner was made with.
    pub fn install(state: &AppState, sandboxes: Arc<dyn SandboxProvider>) {
        let admission =
            Self { store: state.store.clone(), accounts: state.accounts.clone(), sandboxes };
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
                .await
        };
        checked.await.map_err(|err| err.message)
    }
}
