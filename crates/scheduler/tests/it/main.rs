mod cron;
mod failover;
mod pass;
