mod lock;
mod queue;
mod recovery;
