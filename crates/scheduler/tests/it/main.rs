mod failover;
mod pass;
