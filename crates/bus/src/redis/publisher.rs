//! The publishing task: `XADD`s in publication order, pipelined in batches on the shared
//! connection; failures make the chats' subscribers lag instead of failing the turn.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::codec::Entry;
use super::{COMMAND_TIMEOUT, Outgoing, STREAM_MAXLEN, STREAM_TTL, Shared};

/// Entries sent in one pipeline (one round trip).
const BATCH: usize = 256;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        let markers_waiting =
            !shared.dirty.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        if markers_waiting {
            // Retry the markers even when nothing new is published, or a chat whose last
            // event failed would never be told.
            tokio::select! {
                received = queue.recv_many(&mut batch, BATCH) => if received == 0 { break },
                () = tokio::time::sleep(backoff) => {}
            }
        } else if queue.recv_many(&mut batch, BATCH).await == 0 {
            break;
        }
        let mut entries = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for item in batch.drain(..) {
            match item {
                Outgoing::Entry { chat_id, entry } => entries.push((chat_id, entry)),
                Outgoing::Flush(done) => flushes.push(done),
            }
        }
        let markers: Vec<Uuid> =
            shared.dirty.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        if !(markers.is_empty() && entries.is_empty()) {
            match write(&shared, &markers, &entries).await {
                Ok(()) => {
                    let durable = entries.iter().filter(|(_, entry)| entry.is_durable()).count();
                    shared.published.fetch_add(durable as u64, Ordering::Relaxed);
                    if failing {
                        tracing::info!(place = %shared.place, "Redis takes events again");
                    }
                    failing = false;
                    backoff = MIN_BACKOFF;
                }
                Err(err) => {
                    let lost: Vec<Uuid> = entries
                        .iter()
                        .filter(|(_, entry)| entry.is_durable())
                        .map(|(chat_id, _)| *chat_id)
                        .collect();
                    shared.publish_failures.fetch_add(lost.len() as u64, Ordering::Relaxed);
                    shared.mark_dirty(markers.into_iter().chain(lost));
                    if !failing {
                        tracing::warn!(place = %shared.place, %err,
                            "Redis does not take events; subscribers read them from the log until it does");
                    }
                    failing = true;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// One pipeline: the markers first (they only ask for a re-read of the log), then the
/// entries in order, then the streams' expiry.
async fn write(shared: &Shared, markers: &[Uuid], entries: &[(Uuid, Entry)]) -> Result<(), String> {
    let marker = Entry::lagged();
    let mut pipe = redis::pipe();
    let mut keys = HashSet::new();
    for (chat_id, entry) in
        markers.iter().map(|chat| (chat, &marker)).chain(entries.iter().map(|(c, e)| (c, e)))
    {
        let key = shared.key(*chat_id);
        let mut command = redis::cmd("XADD");
        command.arg(&key).arg("MAXLEN").arg("~").arg(STREAM_MAXLEN).arg("*");
        entry.write(&mut command);
        pipe.add_command(command).ignore();
        keys.insert(key);
    }
    for key in keys {
        pipe.cmd("PEXPIRE").arg(key).arg(STREAM_TTL.as_millis() as u64).ignore();
    }
    let mut manager = shared.manager.clone();
    match tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut manager)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {COMMAND_TIMEOUT:?}")),
    }
}
