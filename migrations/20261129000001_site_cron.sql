-- A site runs on a cron expression (5 fields, in its time zone) instead of every
-- interval_minutes when `cron` is set. The expression and zone are checked by trawl at upsert;
-- the constraint keeps a hand-written row from naming a zone without an expression.
ALTER TABLE site_schedules
    ADD COLUMN cron TEXT,
    ADD COLUMN time_zone TEXT,
    ADD CONSTRAINT site_schedules_time_zone_needs_cron CHECK (time_zone IS NULL OR cron IS NOT NULL);
