//! One watched chat's reader on one node: `XREAD BLOCK` on a connection of its own, each
//! entry sent to the chat's local channel, which all of the node's subscribers of that chat
//! share. It ends when the chat has no subscriber left here.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{COMMAND_TIMEOUT, Shared, codec, timed};
use crate::Item;

/// How long one `XREAD` blocks; also how long a reader outlives its last subscriber.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries taken per `XREAD`.
const COUNT: usize = 1000;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) async fn run(
    shared: Arc<Shared>,
    chat_id: Uuid,
    sender: broadcast::Sender<Item>,
    mut position: Option<String>,
) {
    let key = shared.key(chat_id);
    let mut connection: Option<MultiplexedConnection> = None;
    let mut backoff = MIN_BACKOFF;
    // Whether the subscribers must be told, once reading works, that they may have missed
    // something: true from the start when `subscribe` could not fix a position.
    let mut owe_lag = position.is_none();
    while watched(&shared, chat_id, &sender) {
        let result = match connection.as_mut() {
            Some(connection) => {
                read(connection, &key, &mut position, &sender, &mut owe_lag, &shared).await
            }
            None => connect(&shared).await.map(|new| connection = Some(new)),
        };
        match result {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(err) => {
                tracing::debug!(%chat_id, %err, "Redis: reading a chat's stream failed; reconnecting");
                connection = None;
                // While Redis is away, each attempt sends the subscribers to the log, which
                // is how they keep up during an outage.
                shared.lag(&sender);
                owe_lag = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One `XREAD` from the reader's position, delivered.
async fn read(
    connection: &mut MultiplexedConnection,
    key: &str,
    position: &mut Option<String>,
    sender: &broadcast::Sender<Item>,
    owe_lag: &mut bool,
    shared: &Shared,
) -> Result<(), String> {
    let from = match position {
        Some(position) => position.clone(),
        None => {
            // `subscribe` could not ask; start at the stream's end now, and make the
            // subscribers read the log for what came before.
            position.insert(super::position(key, connection).await?).clone()
        }
    };
    if std::mem::take(owe_lag) {
        shared.lag(sender);
    }
    let mut command = redis::cmd("XREAD");
    command.arg("COUNT").arg(COUNT).arg("BLOCK").arg(BLOCK.as_millis() as u64);
    command.arg("STREAMS").arg(key).arg(&from);
    let reply: Option<StreamReadReply> =
        timed(&command, connection, BLOCK + COMMAND_TIMEOUT).await?;
    for entry in reply.into_iter().flat_map(|reply| reply.keys).flat_map(|stream| stream.ids) {
        let _ = sender.send(codec::decode(&entry));
        *position = Some(entry.id);
    }
    Ok(())
}

/// A connection for this reader alone: a blocking `XREAD` holds its connection.
async fn connect(shared: &Shared) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        // Our own timeout covers `XREAD BLOCK`, which may rightly take `BLOCK`.
        .set_response_timeout(None);
    let mut connection = shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|err| err.to_string())?;
    // Named so an operator (or a test) can find the readers in `CLIENT LIST`.
    let name: String = format!("{}reader", shared.prefix)
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let mut command = redis::cmd("CLIENT");
    command.arg("SETNAME").arg(name);
    timed::<()>(&command, &mut connection, COMMAND_TIMEOUT).await?;
    Ok(connection)
}

/// Whether the chat still has subscribers here; if not, the reader leaves the map (under
/// the lock `subscribe` takes, so a new subscriber either joins us before or starts anew).
fn watched(shared: &Shared, chat_id: Uuid, sender: &broadcast::Sender<Item>) -> bool {
    let mut chats = shared.chats.lock().unwrap_or_else(PoisonError::into_inner);
    if sender.receiver_count() > 0 {
        return true;
    }
    if chats.get(&chat_id).is_some_and(|ours| ours.same_channel(sender)) {
        chats.remove(&chat_id);
    }
    false
}
