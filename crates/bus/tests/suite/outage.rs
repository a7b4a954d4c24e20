//! Redis-only: a reader whose connection is killed, and Redis unreachable for a while
//! (through a proxy the test cuts). Subscribers are told to lag, publishing never fails the
//! caller, and delivery resumes by itself with nothing lost that Redis took.

use agentbox_bus::{Received, Subscription};
use uuid::Uuid;

use super::support::{Proxy, TestBus, event, next, redis_url, until};

/// Items until the durable event `seq`; whether a `Lagged` came first.
async fn lagged_then(sub: &mut Subscription, seq: i64) -> bool {
    let mut lagged = false;
    loop {
        match next(sub).await {
            Received::Lagged => lagged = true,
            Received::Event(event) if event.seq == seq => return lagged,
            Received::Event(event) => panic!("expected {seq}, got {}", event.seq),
            Received::Transient(_) => panic!("no transient event was published"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reader_connection_lags_and_resumes_without_loss() {
    let test = TestBus::redis(&redis_url(), "killed_reader");
    let bus = &test.bus;
    let chat = Uuid::new_v4();
    let mut sub = bus.subscribe(chat).await;
    bus.publish(chat, event(1));
    assert!(!lagged_then(&mut sub, 1).await);

    // The reader's connection exists (it delivered event 1); kill it as Redis would on a
    // restart or `CLIENT KILL`.
    let prefix = test.prefix().to_owned();
    let mut admin = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    let readers: Vec<&str> = clients
        .lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={prefix}reader")))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .collect();
    assert_eq!(readers.len(), 1, "one reader connection for one watched chat");
    let () = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(readers[0]).query(&mut admin).unwrap();

    bus.publish(chat, event(2));
    assert!(lagged_then(&mut sub, 2).await, "a reader that lost its connection says so");
    bus.publish(chat, event(3));
    assert!(!lagged_then(&mut sub, 3).await);
    assert!(bus.stats().transport_lags >= 1);
    assert_eq!(bus.stats().publish_failures, 0);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_sends_subscribers_to_the_log_and_delivery_resumes() {
    let proxy = Proxy::start(&upstream()).await;
    let test = TestBus::redis(&proxy.url(), "outage");
    let bus = &test.bus;
    let chat = Uuid::new_v4();
    let mut sub = bus.subscribe(chat).await;
    bus.publish(chat, event(1));
    assert!(!lagged_then(&mut sub, 1).await);
    assert_eq!(bus.health().await.reachable, Some(true));

    proxy.set_down(true);
    // Publishing returns at once and does not fail; Redis does not get the event, which is
    // counted, and the subscriber is sent to the log (where event 2 would be).
    bus.publish(chat, event(2));
    until("the publisher gives event 2 up", async || bus.stats().publish_failures >= 1).await;
    assert!(matches!(next(&mut sub).await, Received::Lagged));
    let health = bus.health().await;
    assert_eq!((health.kind, health.reachable), ("redis", Some(false)));
    assert!(health.detail.contains("unreachable"), "{}", health.detail);

    proxy.set_down(false);
    bus.publish(chat, event(3));
    // The marker for event 2 (given up to the log) comes before event 3 on the stream.
    // Event 2 itself may come too: the cut can fall after the proxy passed its `XADD` on
    // and before Redis's answer came back, so Redis has it although the publisher counted
    // a failure; a subscriber skips what it already read from the log.
    let mut lagged = false;
    loop {
        match next(&mut sub).await {
            Received::Lagged => lagged = true,
            Received::Event(event) if event.seq == 3 => break,
            Received::Event(event) => assert_eq!(event.seq, 2, "only the unconfirmed event"),
            Received::Transient(_) => panic!("no transient event was published"),
        }
    }
    assert!(lagged, "the subscriber was sent to the log after the outage");
    until("Redis is reachable again", async || bus.health().await.reachable == Some(true)).await;
    bus.publish(chat, event(4));
    let mut after = Vec::new();
    while after.last() != Some(&4) {
        if let Received::Event(event) = next(&mut sub).await {
            after.push(event.seq);
        }
    }
    assert_eq!(after, [4]);
    test.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_while_redis_is_down_lags_then_delivers() {
    let proxy = Proxy::start(&upstream()).await;
    proxy.set_down(true);
    let test = TestBus::redis(&proxy.url(), "subscribe_down");
    let bus = &test.bus;
    let chat = Uuid::new_v4();
    // Returns (after the command timeout at most) rather than hanging or failing.
    let mut sub = bus.subscribe(chat).await;
    assert!(matches!(next(&mut sub).await, Received::Lagged));
    proxy.set_down(false);
    // Once the reader is back it lags once more (it could not fix a position before) and
    // then delivers; publish until one arrives, since "now" for this subscription began
    // only when Redis answered.
    let mut seq = 0;
    until("an event arrives after Redis is back", async || {
        seq += 1;
        bus.publish(chat, event(seq));
        loop {
            match tokio::time::timeout(std::time::Duration::from_millis(200), sub.recv()).await {
                Ok(Received::Event(_)) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    test.finish().await;
}

/// The machine's Redis as `host:port`, for the proxy.
fn upstream() -> String {
    redis::Client::open(redis_url()).unwrap().get_connection_info().addr().to_string()
}
