//! One Redis node: a lazily made, self-healing connection, pipelined
//! script calls and commands bounded by the node timeout, and whether the
//! server takes `SET … IFEQ` (compare-and-set).
//!
//! A node is one standalone Redis server, never a Redis Cluster: the batch
//! scripts name keys from any hash slot in one call, which a cluster would
//! refuse (`CROSSSLOT`).
//!
//! The connection is made on first use, not at start-up (a node that is down
//! when the service starts must not stop it: a majority may still be up).
//! Any connection-level failure or timeout drops it, and the next call
//! connects again, so a restarted server is picked up without a new client.
//! A call on a cached connection that turns out dead (the server restarted)
//! is tried once more on a new connection within the same time budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, Value,
};

/// One script call: its keys (`KEYS`) and arguments (`ARGV`). The extend
/// and release scripts take one key; the acquire and complete scripts a
/// whole batch.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

/// A node's answer to one entry of a pipeline: the script's reply, or why
/// that entry failed (the text names the node).
pub(crate) type EntryReply = Result<Value, String>;

/// What one pipeline carries: script calls, or plain commands.
#[derive(Clone, Copy)]
enum Request<'a> {
    Script(&'a Script, &'a [Invocation]),
    Commands(&'a [redis::Cmd]),
    /// `commands` where the server of the connection used takes
    /// `SET … IFEQ`, else the script calls. `probe_key` is a key of the
    /// request, which the probe may read but never writes.
    CommandsOrScript {
        commands: &'a [redis::Cmd],
        script: &'a Script,
        calls: &'a [Invocation],
        probe_key: &'a str,
    },
}

impl Request<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Request::Script(_, calls) => calls.is_empty(),
            Request::Commands(cmds) => cmds.is_empty(),
            Request::CommandsOrScript { commands, .. } => commands.is_empty(),
        }
    }
}

/// What one pipeline runs.
#[derive(Clone, Copy)]
enum Form<'a> {
    Script(&'a Script, &'a [Invocation]),
    Commands(&'a [redis::Cmd]),
}

/// Which form of a [`Node::commands_or_script`] request a node was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Commands,
    Script,
}

/// The value the probe compares with: never a lock's or a record's (those
/// are hex tokens, or `done:` and a token), so the probe never writes.
const PROBE_VALUE: &str = "iniesta:compare-and-set-probe";

/// One Redis server of the Redlock set.
pub(crate) struct Node {
    /// The URL with the password redacted: the only form ever logged.
    pub label: String,
    client: redis::Client,
    timeout: Duration,
    slot: Mutex<Slot>,
    /// Serializes connecting, so concurrent callers share one new
    /// connection instead of each opening their own.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    /// Bumped on every new connection, so a caller only drops the
    /// connection it saw fail, not a newer one.
    generation: u64,
    conn: Option<MultiplexedConnection>,
    /// Whether the server of `conn` takes `SET key value IFEQ old`
    /// (Redis 8.4, Valkey 8.1): probed on the connection's first request
    /// that could use it; `None` until a probe gave a clear answer.
    compare_and_set: Option<bool>,
}

impl Node {
    pub fn new(label: String, client: redis::Client, timeout: Duration) -> Self {
        Node {
            label,
            client,
            timeout,
            slot: Mutex::new(Slot::default()),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs `script` once per invocation, in one pipeline, within the node
    /// timeout. `Err` (naming the node) when the node as a whole failed;
    /// otherwise one reply per invocation, in order.
    pub async fn eval(
        &self,
        script: &Script,
        calls: &[Invocation],
    ) -> Result<Vec<EntryReply>, String> {
        let sent = self
            .send(Request::Script(script, calls), self.timeout)
            .await;
        sent.map(|(replies, _)| replies)
    }

    /// Sends `cmds` in one pipeline within `budget` (at most the node
    /// timeout), as [`eval`](Self::eval) sends script calls: one reply per
    /// command, in order.
    pub async fn commands(
        &self,
        cmds: &[redis::Cmd],
        budget: Duration,
    ) -> Result<Vec<EntryReply>, String> {
        let budget = budget.min(self.timeout);
        let sent = self.send(Request::Commands(cmds), budget).await;
        sent.map(|(replies, _)| replies)
    }

    /// Sends `commands` if the server takes `SET … IFEQ`, else the script
    /// calls, within the node timeout, and says which went. Whether it
    /// does is the connection's own answer (probed on its first such
    /// request with `probe_key`), so a connection remade to another server
    /// is asked again.
    pub async fn commands_or_script(
        &self,
        commands: &[redis::Cmd],
        script: &Script,
        calls: &[Invocation],
        probe_key: &str,
    ) -> Result<(Vec<EntryReply>, Sent), String> {
        let request = Request::CommandsOrScript {
            commands,
            script,
            calls,
            probe_key,
        };
        self.send(request, self.timeout).await
    }

    /// How long one call to this node may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(
        &self,
        request: Request<'_>,
        budget: Duration,
    ) -> Result<(Vec<EntryReply>, Sent), String> {
        if request.is_empty() {
            return Ok((Vec::new(), Sent::Commands));
        }
        let used = AtomicU64::new(0);
        match tokio::time::timeout(budget, self.send_inner(request, &used)).await {
            Ok(result) => result,
            Err(_) => {
                // A stalled server or a half-open connection: start afresh
                // next time rather than queue behind a request that may
                // never be answered.
                self.invalidate(used.load(Ordering::Relaxed));
                Err(format!(
                    "{}: no answer within {:?} (node_timeout)",
                    self.label, self.timeout
                ))
            }
        }
    }

    async fn send_inner(
        &self,
        request: Request<'_>,
        used: &AtomicU64,
    ) -> Result<(Vec<EntryReply>, Sent), String> {
        // A cached connection that fails as a connection gets one retry
        // on a new one; a fresh connection, or a second failure, does not.
        let mut retried = false;
        loop {
            let (generation, fresh, mut conn) =
                self.connection().await.map_err(|e| self.describe(&e))?;
            used.store(generation, Ordering::Relaxed);
            match self.run_on(generation, &mut conn, request).await {
                Ok((replies, sent)) => return Ok((self.label_entries(replies), sent)),
                Err(e) => {
                    self.invalidate(generation);
                    if fresh || retried || !is_connection_error(&e) {
                        return Err(self.describe(&e));
                    }
                    tracing::debug!(node = %self.label, error = %e, "cached connection failed; reconnecting");
                    retried = true;
                }
            }
        }
    }

    /// Runs `request` on `conn` (of `generation`), choosing its form
    /// first if it has two.
    async fn run_on(
        &self,
        generation: u64,
        conn: &mut MultiplexedConnection,
        request: Request<'_>,
    ) -> RedisResult<(Vec<RedisResult<Value>>, Sent)> {
        let (commands, script, calls, probe_key) = match request {
            Request::Script(script, calls) => {
                return Ok((run(conn, Form::Script(script, calls)).await?, Sent::Script))
            }
            Request::Commands(cmds) => {
                return Ok((run(conn, Form::Commands(cmds)).await?, Sent::Commands))
            }
            Request::CommandsOrScript {
                commands,
                script,
                calls,
                probe_key,
            } => (commands, script, calls, probe_key),
        };
        let known = {
            let slot = self.lock_slot();
            (slot.generation == generation)
                .then_some(slot.compare_and_set)
                .flatten()
        };
        let cas = match known {
            Some(cas) => cas,
            None => {
                let answer = probe_compare_and_set(conn, probe_key).await?;
                let mut slot = self.lock_slot();
                if slot.generation == generation {
                    slot.compare_and_set = answer;
                }
                tracing::debug!(node = %self.label, compare_and_set = ?answer, "probed SET IFEQ");
                answer.unwrap_or(false)
            }
        };
        if cas {
            Ok((run(conn, Form::Commands(commands)).await?, Sent::Commands))
        } else {
            Ok((run(conn, Form::Script(script, calls)).await?, Sent::Script))
        }
    }

    fn label_entries(&self, replies: Vec<RedisResult<Value>>) -> Vec<EntryReply> {
        replies
            .into_iter()
            .map(|r| r.map_err(|e| self.describe(&e)))
            .collect()
    }

    fn describe(&self, e: &RedisError) -> String {
        format!("{}: {e}", self.label)
    }

    fn lock_slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Nothing panics while holding the lock; if something did, the slot
        // is still consistent (two plain fields).
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let slot = self.lock_slot();
        slot.conn.clone().map(|c| (slot.generation, c))
    }

    fn invalidate(&self, generation: u64) {
        if generation == 0 {
            return;
        }
        let mut slot = self.lock_slot();
        if slot.generation == generation && slot.conn.is_some() {
            slot.conn = None;
            tracing::debug!(node = %self.label, "dropped connection");
        }
    }

    /// The cached connection, or a new one. The flag tells whether it was
    /// made by this call.
    async fn connection(&self) -> RedisResult<(u64, bool, MultiplexedConnection)> {
        if let Some((generation, conn)) = self.current() {
            return Ok((generation, false, conn));
        }
        let _connecting = self.connecting.lock().await;
        if let Some((generation, conn)) = self.current() {
            return Ok((generation, true, conn));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut slot = self.lock_slot();
        slot.generation += 1;
        slot.conn = Some(conn.clone());
        slot.compare_and_set = None;
        tracing::debug!(node = %self.label, "connected");
        Ok((slot.generation, true, conn))
    }
}

/// Whether `e` means the connection itself is gone (as opposed to an error
/// reply from a live server).
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// Whether the server takes `SET key value IFEQ old PX ms GET`, the form
/// a complete sends, asked on `key` (a key of the request, so an ACL that
/// lets the client at its keys lets the probe at it too) with a value no
/// lock or record holds, so nothing is ever written. `Some(false)` only for
/// a syntax error (an older server); another error reply (`LOADING`,
/// `NOPERM`, `WRONGTYPE`, `OOM`, …) says nothing, `None`, and the next
/// request asks again. Connection failures are errors.
async fn probe_compare_and_set(
    conn: &mut MultiplexedConnection,
    key: &str,
) -> RedisResult<Option<bool>> {
    let reply: RedisResult<Value> = redis::cmd("SET")
        .arg(key)
        .arg(PROBE_VALUE)
        .arg("IFEQ")
        .arg(PROBE_VALUE)
        .arg("PX")
        .arg(1)
        .arg("GET")
        .query_async(conn)
        .await;
    match reply {
        Ok(_) => Ok(Some(true)),
        Err(e) if is_connection_error(&e) => Err(e),
        Err(e) if e.to_string().to_ascii_lowercase().contains("syntax error") => Ok(Some(false)),
        Err(_) => Ok(None),
    }
}

/// Sends `request` in one pipeline: commands as they are; script calls as
/// EVALSHA, and when the server does not know the script (new or restarted
/// server, SCRIPT FLUSH), loads it and sends the calls that missed it once
/// more.
async fn run(
    conn: &mut MultiplexedConnection,
    form: Form<'_>,
) -> RedisResult<Vec<RedisResult<Value>>> {
    let (script, calls) = match form {
        Form::Script(script, calls) => (script, calls),
        Form::Commands(cmds) => {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for cmd in cmds {
                pipe.add_command(cmd.clone());
            }
            let replies: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
            return check_count(replies, cmds.len());
        }
    };
    let mut replies = send(conn, script, calls.iter()).await?;
    let missing: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(r, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
        })
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        script.load_async(conn).await?;
        let again = send(conn, script, missing.iter().map(|&i| &calls[i])).await?;
        for (i, reply) in missing.into_iter().zip(again) {
            replies[i] = reply;
        }
    }
    check_count(replies, calls.len())
}

fn check_count(
    replies: Vec<RedisResult<Value>>,
    sent: usize,
) -> RedisResult<Vec<RedisResult<Value>>> {
    if replies.len() != sent {
        return Err(RedisError::from((
            ErrorKind::Client,
            "pipeline answered a different number of replies than requests",
        )));
    }
    Ok(replies)
}

async fn send<'a>(
    conn: &mut MultiplexedConnection,
    script: &Script,
    calls: impl Iterator<Item = &'a Invocation>,
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for call in calls {
        let mut invocation = script.prepare_invoke();
        for key in &call.keys {
            invocation.key(key);
        }
        for arg in &call.args {
            invocation.arg(arg);
        }
        pipe.invoke_script(&invocation);
    }
    pipe.query_async(conn).await
}
