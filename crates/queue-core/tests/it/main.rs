mod lock;
mod pace;
mod queue;
mod recovery;
mod slots;
mod store;
