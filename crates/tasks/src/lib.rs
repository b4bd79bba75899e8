//! Kinds of work. A kind is one [`Handler`]: its name, its default queue, a strict payload type
//! and `run`, whose error says whether another attempt is worth it. A [`Registry`] holds the
//! kinds a worker runs; [`Lifecycle`] runs one attempt of any kind's run and records how it
//! ended, the same way for every kind (compare-and-set on the attempt, retry with backoff,
//! time limit, cancel, panic).
mod handler;
mod lifecycle;
mod registry;

pub use handler::{BoxError, Handler, HandlerError, RunContext};
pub use lifecycle::{Ended, Lifecycle, retry_delay};
pub use registry::{Catalog, DynHandler, Registry, erased};
