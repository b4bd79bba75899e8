mod cron;
mod failover;
mod pass;
mod recurring;
