//! Digests against real PostgreSQL, Redis, a real SMTP server (aiosmtpd) and an in-process
//! worker running trawl's kinds; mail is read back from the server's Maildir.
mod delivery;
mod helpers;
mod subscriptions;
