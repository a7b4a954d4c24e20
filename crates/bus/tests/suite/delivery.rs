//! What every bus promises: order per chat, no leakage between chats, transient events in
//! line with durable ones, delivery from the moment `subscribe` returns, many subscribers,
//! and `Lagged` for one that falls behind.

use agentbox_bus::{CAPACITY, EventBus, Received};
use agentbox_protocol::TransientEvent;
use uuid::Uuid;

use super::support::{event, next, next_seq};

conformance!(
    events_arrive_in_order,
    chats_do_not_leak_into_each_other,
    transient_events_arrive_in_line,
    subscribing_then_publishing_at_once_delivers,
    many_subscribers_each_get_everything,
    a_slow_subscriber_is_told_it_lagged,
    a_dropped_subscription_unsubscribes,
);

async fn events_arrive_in_order(bus: &EventBus) {
    let chat = Uuid::new_v4();
    let mut sub = bus.subscribe(chat).await;
    for seq in 1..=500 {
        bus.publish(chat, event(seq));
    }
    for seq in 1..=500 {
        assert_eq!(next_seq(&mut sub).await, seq);
    }
    assert_eq!(bus.stats().published, 500);
}

async fn chats_do_not_leak_into_each_other(bus: &EventBus) {
    let (a, b, quiet) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut sub_a = bus.subscribe(a).await;
    let mut sub_b = bus.subscribe(b).await;
    let mut sub_quiet = bus.subscribe(quiet).await;
    for seq in 1..=20 {
        bus.publish(a, event(seq));
        bus.publish(b, event(1000 + seq));
    }
    for seq in 1..=20 {
        assert_eq!(next_seq(&mut sub_a).await, seq);
        assert_eq!(next_seq(&mut sub_b).await, 1000 + seq);
    }
    // A marker published after everything else: the quiet chat's subscriber gets it first.
    bus.publish(quiet, event(7));
    assert_eq!(next_seq(&mut sub_quiet).await, 7);
}

async fn transient_events_arrive_in_line(bus: &EventBus) {
    let chat = Uuid::new_v4();
    let mut sub = bus.subscribe(chat).await;
    let delta = |text: &str| TransientEvent::AssistantTextDelta {
        message_id: Uuid::nil(),
        text: text.to_owned(),
    };
    bus.publish_transient(chat, delta("Hel"));
    bus.publish_transient(chat, delta("lo"));
    bus.publish(chat, event(1));
    assert!(matches!(next(&mut sub).await, Received::Transient(got) if got == delta("Hel")));
    assert!(matches!(next(&mut sub).await, Received::Transient(got) if got == delta("lo")));
    assert_eq!(next_seq(&mut sub).await, 1);
    // Transient events are not counted as published events. Redis counts an `XADD` when
    // its answer is back, which may be after the reader delivered the entry: flush first.
    bus.flush().await;
    assert_eq!(bus.stats().published, 1);
}

async fn subscribing_then_publishing_at_once_delivers(bus: &EventBus) {
    // Many fresh chats, each published to the instant its first subscription returns: a
    // Redis reader that started "from now" only when it got round to its first XREAD would
    // miss some of these.
    for round in 0..20 {
        let chat = Uuid::new_v4();
        let mut sub = bus.subscribe(chat).await;
        bus.publish(chat, event(round));
        assert_eq!(next_seq(&mut sub).await, round);
        // A second subscriber joining the running reader is served from now too.
        let mut second = bus.subscribe(chat).await;
        bus.publish(chat, event(round + 100));
        assert_eq!(next_seq(&mut second).await, round + 100);
        assert_eq!(next_seq(&mut sub).await, round + 100);
    }
}

async fn many_subscribers_each_get_everything(bus: &EventBus) {
    let chat = Uuid::new_v4();
    let mut subs = Vec::new();
    for _ in 0..200 {
        subs.push(bus.subscribe(chat).await);
    }
    assert_eq!(bus.active_chats(), 1);
    for seq in 1..=50 {
        bus.publish(chat, event(seq));
    }
    for sub in &mut subs {
        for seq in 1..=50 {
            assert_eq!(next_seq(sub).await, seq);
        }
    }
}

async fn a_slow_subscriber_is_told_it_lagged(bus: &EventBus) {
    let chat = Uuid::new_v4();
    let mut slow = bus.subscribe(chat).await;
    let mut fast = bus.subscribe(chat).await;
    let total = CAPACITY as i64 + 10;
    // The fast one keeps up; once it has everything, so does the slow one's (overflowing)
    // buffer.
    for seq in 1..=total {
        bus.publish(chat, event(seq));
        assert_eq!(next_seq(&mut fast).await, seq);
    }
    assert!(matches!(next(&mut slow).await, Received::Lagged));
    // After the lag it goes on with what is still buffered, in order.
    let first = next_seq(&mut slow).await;
    assert!(first > 1);
    assert_eq!(next_seq(&mut slow).await, first + 1);
}

async fn a_dropped_subscription_unsubscribes(bus: &EventBus) {
    let chat = Uuid::new_v4();
    let sub = bus.subscribe(chat).await;
    assert_eq!(bus.active_chats(), 1);
    drop(sub);
    assert_eq!(bus.active_chats(), 0);
    // Publishing to a chat nobody watches is fine, and a new subscriber starts afresh.
    bus.publish(chat, event(1));
    let mut sub = bus.subscribe(chat).await;
    bus.publish(chat, event(2));
    loop {
        // Redis may still hand over event 1 (published before the subscription returned,
        // but queued): "from now" promises what came after, not the absence of what came before.
        let seq = next_seq(&mut sub).await;
        if seq == 2 {
            break;
        }
        assert_eq!(seq, 1);
    }
}
