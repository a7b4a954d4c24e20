//! Fixtures: a migrated store of either backend with a user and a chat, and the macro that
//! runs one test body on both backends.

use agentbox_protocol::api::PermissionMode;
use agentbox_store::testing::TestDatabase;
use agentbox_store::{Backend, NewChat, PoolSettings, Store};
use uuid::Uuid;

/// Small pools: many tests run at once against one PostgreSQL server.
pub fn small_pool() -> PoolSettings {
    PoolSettings { size: Some(1), max_overflow: Some(7), ..PoolSettings::default() }
}

/// Where a test's database lives; dropping it removes the database.
pub enum Place {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database(#[allow(dead_code)] TestDatabase),
}

/// A migrated, empty database of one backend, and its URL (to open more pools on it, as
/// other processes would).
pub struct TestStore {
    pub store: Store,
    pub url: String,
    pub backend: Backend,
    _place: Place,
}

impl TestStore {
    pub async fn new(backend: Backend, label: &str) -> Self {
        let (url, place) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
                (url, Place::Dir(dir))
            }
            Backend::Postgres => {
                let db = TestDatabase::create(label).await.unwrap();
                (db.url.clone(), Place::Database(db))
            }
        };
        let store = Store::open_with(&url, &small_pool()).await.unwrap();
        Self { store, url, backend, _place: place }
    }

    /// Another pool on the same database: what a second process would have.
    pub async fn another_pool(&self) -> Store {
        Store::open_with(&self.url, &small_pool()).await.unwrap()
    }

    /// A user with one chat (in `ask` mode).
    pub async fn user_and_chat(&self) -> (Uuid, Uuid) {
        let user = self
            .store
            .create_user(&format!("{}@example.com", Uuid::now_v7()), None, "hash")
            .await
            .unwrap();
        (user.id, self.chat_of(user.id).await)
    }

    pub async fn chat_of(&self, user: Uuid) -> Uuid {
        self.store.create_chat(new_chat(user)).await.unwrap().id
    }
}

pub fn new_chat(user_id: Uuid) -> NewChat {
    NewChat {
        user_id,
        title: "t".into(),
        model: "m".into(),
        permission_mode: PermissionMode::Ask,
        sandbox_provider: "local".into(),
        custom_instructions: None,
        max_thinking_tokens: None,
    }
}

/// `conformance!(name)` runs `async fn name(t: TestStore)` once per backend, as
/// `name::sqlite` and `name::postgres`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let t = $crate::suite::support::TestStore::new(
                    agentbox_store::Backend::Sqlite,
                    stringify!($name),
                )
                .await;
                super::$name(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let t = $crate::suite::support::TestStore::new(
                    agentbox_store::Backend::Postgres,
                    stringify!($name),
                )
                .await;
                super::$name(t).await;
            }
        }
    )*};
}
pub(crate) use conformance;
