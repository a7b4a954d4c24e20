//! Fixtures: a bus of either kind (with its Redis keys removed afterwards), events, waiting
//! with patience, a TCP proxy to cut Redis off, and the macro that runs one test on both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentbox_bus::{EventBus, Received, RedisConfig, Subscription};
use agentbox_protocol::{ChatEvent, EventPayload};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// How long a test waits for something that should happen (never how long it should take).
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn redis_url() -> String {
    std::env::var("AGENTBOX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Runs each listed test on the in-process bus and on Redis.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let bus = $crate::suite::support::TestBus::in_process();
                super::$name(&bus.bus).await;
                bus.finish().await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let bus = $crate::suite::support::TestBus::redis(
                    &$crate::suite::support::redis_url(), stringify!($name));
                super::$name(&bus.bus).await;
                bus.finish().await;
            })*
        }
    };
}

/// A bus, and for Redis the prefix whose keys are deleted when the test ends.
pub struct TestBus {
    pub bus: EventBus,
    prefix: Option<String>,
}

impl TestBus {
    pub fn in_process() -> Self {
        Self { bus: EventBus::new(), prefix: None }
    }

    pub fn redis(url: &str, label: &str) -> Self {
        let prefix = format!("agentbox-test:{}:{label}:{}:", std::process::id(), Uuid::new_v4());
        let bus =
            EventBus::redis(RedisConfig { url: url.to_owned(), prefix: prefix.clone() }).unwrap();
        Self { bus, prefix: Some(prefix) }
    }

    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or_default()
    }

    /// Let the publisher finish, then remove the test's keys (also done on drop, for a
    /// failed test, without the wait).
    pub async fn finish(self) {
        self.bus.flush().await;
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let Some(prefix) = &self.prefix else { return };
        // The machine's Redis, not a proxy: the keys are there whatever the test cut off.
        let mut connection = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut connection).unwrap();
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(keys).query(&mut connection).unwrap();
        }
    }
}

/// A durable event with this `seq`.
pub fn event(seq: i64) -> ChatEvent {
    ChatEvent {
        seq,
        message_id: Uuid::nil(),
        parent_tool_use_id: None,
        created_at: chrono::Utc::now(),
        payload: EventPayload::AssistantText { text: seq.to_string() },
    }
}

/// The next item, within patience.
pub async fn next(subscription: &mut Subscription) -> Received {
    tokio::time::timeout(PATIENCE, subscription.recv()).await.expect("nothing arrived")
}

/// The next durable event's `seq`, failing on a lag or a transient event.
pub async fn next_seq(subscription: &mut Subscription) -> i64 {
    match next(subscription).await {
        Received::Event(event) => event.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Wait until `condition` holds (checked every 20 ms), within patience.
pub async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of Redis that the test can take down (every connection cut, new
/// ones closed at once) and bring back: an outage of Redis as the bus sees it, without
/// touching the Redis other tests use.
pub struct Proxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0);
        let upstream = upstream.to_owned();
        let (accept_down, accept_cut) = (down.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if accept_down.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let upstream = upstream.clone();
                let mut cut = accept_cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, down, cut }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut.send_modify(|generation| *generation += 1);
        }
    }
}
