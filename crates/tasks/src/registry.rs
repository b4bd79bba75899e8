//! The kinds a process runs, by name.
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use queue_core::store::RunReport;
use queue_core::{Payload, Plan, Task, TaskError};

use crate::{Handler, HandlerError, RunContext};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler with its payload type erased: what the registry holds, so one worker loop serves
/// every kind. Implemented for every `Handler`; payloads cross it as JSON objects and are read
/// with the kind's strict type on the way in.
pub trait DynHandler: Send + Sync {
    fn kind(&self) -> &'static str;
    fn queue(&self) -> &'static str;
    /// Reads the payload with the kind's type and checks it.
    fn decode(&self, payload: &Payload) -> Result<(), TaskError>;
    /// `Handler::plan`, returning the completed payload with the plan.
    fn plan(&self, payload: Payload) -> BoxFuture<'_, Result<(Payload, Plan), HandlerError>>;
    fn run(
        &self,
        ctx: RunContext,
        payload: Payload,
    ) -> BoxFuture<'static, Result<RunReport, HandlerError>>;
    fn close(&self) -> BoxFuture<'_, ()>;
}

struct Typed<H>(Arc<H>);

/// `handler` behind the erased interface, to run it outside a registry (the API's sync mode).
pub fn erased<H: Handler>(handler: H) -> Arc<dyn DynHandler> {
    Arc::new(Typed(Arc::new(handler)))
}

fn read<H: Handler>(payload: &Payload) -> Result<H::Payload, TaskError> {
    let invalid = |reason: String| TaskError::Payload {
        kind: H::KIND.to_owned(),
        reason,
    };
    let typed: H::Payload = serde_json::from_value(serde_json::Value::Object(payload.clone()))
        .map_err(|err| invalid(err.to_string()))?;
    H::check(&typed).map_err(invalid)?;
    Ok(typed)
}

impl<H: Handler> DynHandler for Typed<H> {
    fn kind(&self) -> &'static str {
        H::KIND
    }

    fn queue(&self) -> &'static str {
        H::QUEUE
    }

    fn decode(&self, payload: &Payload) -> Result<(), TaskError> {
        read::<H>(payload).map(|_| ())
    }

    fn plan(&self, payload: Payload) -> BoxFuture<'_, Result<(Payload, Plan), HandlerError>> {
        Box::pin(async move {
            let mut typed = read::<H>(&payload).map_err(HandlerError::fatal)?;
            let plan = self.0.plan(&mut typed).await?;
            Ok((queue_core::payload_of(&typed), plan))
        })
    }

    fn run(
        &self,
        ctx: RunContext,
        payload: Payload,
    ) -> BoxFuture<'static, Result<RunReport, HandlerError>> {
        let handler = self.0.clone();
        Box::pin(async move {
            let typed = read::<H>(&payload).map_err(HandlerError::fatal)?;
            handler.run(ctx, typed).await
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.close())
    }
}

/// The kinds a worker runs. A task without a kind is of the default kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn DynHandler>>,
    default_kind: Option<&'static str>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind. The first kind registered is the default until `default_kind` says
    /// otherwise.
    pub fn register<H: Handler>(mut self, handler: H) -> Self {
        self.default_kind.get_or_insert(H::KIND);
        self.handlers.insert(H::KIND, erased(handler));
        self
    }

    /// The kind of tasks that do not name one.
    pub fn default_kind(mut self, kind: &'static str) -> Self {
        self.default_kind = Some(kind);
        self
    }

    /// The kind of tasks that do not name one ("" if nothing is registered).
    pub fn default_kind_name(&self) -> &'static str {
        self.default_kind.unwrap_or("")
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    /// Every queue the registered kinds use, each once, sorted.
    pub fn queues(&self) -> Vec<&'static str> {
        let mut queues: Vec<_> = self.handlers.values().map(|h| h.queue()).collect();
        queues.sort_unstable();
        queues.dedup();
        queues
    }

    /// Releases what every handler holds (`Handler::close`).
    pub async fn close(&self) {
        for handler in self.handlers.values() {
            handler.close().await;
        }
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn DynHandler>> {
        self.handlers.get(kind)
    }

    /// The handler of the task's kind, and the payload read strictly by it.
    pub fn resolve(&self, task: &Task) -> Result<&Arc<dyn DynHandler>, TaskError> {
        let kind = task.kind.as_deref().or(self.default_kind).unwrap_or("");
        let handler = self.get(kind).ok_or_else(|| TaskError::UnknownKind {
            kind: kind.to_owned(),
            known: self.kinds().join(", "),
        })?;
        handler.decode(&task.payload)?;
        Ok(handler)
    }
}

/// Kinds known by name and payload type only, without their handlers: what a process that
/// submits work but does not run it (the API, the CLI) checks a task against before accepting
/// it, so a recurring task with a misspelt kind or a payload its kind refuses is turned away
/// at upsert instead of dead-lettered at every fire.
#[derive(Clone, Default)]
pub struct Catalog {
    kinds: BTreeMap<&'static str, KindSpec>,
}

#[derive(Clone, Copy)]
struct KindSpec {
    queue: &'static str,
    decode: fn(&Payload) -> Result<(), TaskError>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the kind `H` handles (its handler need not exist).
    pub fn with<H: Handler>(mut self) -> Self {
        let spec = KindSpec {
            queue: H::QUEUE,
            decode: |payload| read::<H>(payload).map(|_| ()),
        };
        self.kinds.insert(H::KIND, spec);
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    /// The kind's default queue, if the kind is known.
    pub fn queue(&self, kind: &str) -> Option<&'static str> {
        self.kinds.get(kind).map(|spec| spec.queue)
    }

    /// Every queue the kinds use, each once, sorted.
    pub fn queues(&self) -> Vec<&'static str> {
        let queues: std::collections::BTreeSet<_> =
            self.kinds.values().map(|spec| spec.queue).collect();
        queues.into_iter().collect()
    }

    /// Checks that `kind` is known and `payload` fits it, the way its worker will read it.
    pub fn check(&self, kind: &str, payload: &Payload) -> Result<(), TaskError> {
        let spec = self.kinds.get(kind).ok_or_else(|| TaskError::UnknownKind {
            kind: kind.to_owned(),
            known: self.kinds().join(", "),
        })?;
        (spec.decode)(payload)
    }
}
