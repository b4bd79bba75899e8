-- Career pages (seed 004): the companies whose own career pages trawl watches, each page's job
-- links at every check (snapshots), what changed between two checks (diffs, once per diff
-- hash: seed 004's idempotent diff queue), the state of every link ever seen, and the years of
-- experience each posting asks for. A company's check schedule is its row in `schedules`
-- (named `career-<slug>`, kind `career_snapshot`), so interval, cron and time zone work as for
-- any recurring task.
CREATE TABLE companies (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,47}$'),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url TEXT NOT NULL CHECK (url ~ '^https?://'),
    -- How the page is read: plain HTTP, or a browser (pages rendered by JavaScript).
    fetch_mode TEXT NOT NULL DEFAULT 'http' CHECK (fetch_mode IN ('http', 'browser')),
    -- Browser: the page counts as rendered once this CSS selector matches.
    wait_for TEXT,
    -- Browser: a "load more" button, clicked until it is gone (at most max_pages - 1 times).
    load_more TEXT,
    -- A "next page" link, followed (at most max_pages pages).
    next_page TEXT,
    max_pages INTEGER NOT NULL DEFAULT 5 CHECK (max_pages BETWEEN 1 AND 50),
    enabled BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE career_snapshots (
    id BIGSERIAL PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The page's job links, normalised and sorted.
    links TEXT[] NOT NULL,
    -- ATS boards the page links to ([{ats, board}]), read through their JSON APIs.
    boards JSONB NOT NULL DEFAULT '[]',
    pages INTEGER NOT NULL,
    added INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    -- Set when the page suddenly showed no links: kept for the record, never diffed against.
    warning TEXT,
    diff_hash TEXT,
    -- Whether this snapshot created its diff (false: nothing added, or the diff existed).
    diff_enqueued BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX career_snapshots_latest ON career_snapshots (company_id, id DESC);

CREATE TABLE career_diffs (
    diff_hash TEXT PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    snapshot_id BIGINT NOT NULL REFERENCES career_snapshots(id) ON DELETE CASCADE,
    added TEXT[] NOT NULL,
    removed TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every job link a company's page has shown: when, whether it is gone, the detail run queued
-- for it (once per appearance) and the posting that run stored.
CREATE TABLE career_links (
    company_id BIGINT NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    removed_at TIMESTAMPTZ,
    detail_run_id TEXT,
    job_id UUID REFERENCES jobs(job_id) ON DELETE SET NULL,
    PRIMARY KEY (company_id, url)
);
CREATE INDEX career_links_job ON career_links (job_id) WHERE job_id IS NOT NULL;

-- Years of experience a posting asks for, and how they were read.
CREATE TABLE posting_experience (
    job_id UUID PRIMARY KEY REFERENCES jobs(job_id) ON DELETE CASCADE,
    min_years REAL CHECK (min_years BETWEEN 0 AND 40),
    max_years REAL CHECK (max_years BETWEEN 0 AND 40),
    -- The words that say it, as they appear in the posting.
    phrase TEXT,
    -- rules | llm | none (neither found a number).
    method TEXT NOT NULL CHECK (method IN ('rules', 'llm', 'none')),
    -- Why the LLM's answer was discarded, when it was.
    note TEXT,
    extracted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((min_years IS NULL) = (method = 'none'))
);

-- Subscribers and their e-mail (seed 004's digests): filters, double opt-in (`token` is in the
-- confirmation and unsubscribe links), and the digest's cron in their time zone (the schedule
-- row `digest-<id>` is made at confirmation). Postings first seen after `since` are new to them.
CREATE TABLE subscribers (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    keywords TEXT[] NOT NULL DEFAULT '{}',
    companies TEXT[] NOT NULL DEFAULT '{}',
    locations TEXT[] NOT NULL DEFAULT '{}',
    remote_only BOOLEAN NOT NULL DEFAULT false,
    max_min_years REAL CHECK (max_min_years BETWEEN 0 AND 40),
    salary_at_least DOUBLE PRECISION CHECK (salary_at_least >= 0),
    token UUID NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    cron TEXT NOT NULL DEFAULT '0 8 * * *',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    since TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every mail: prepared (its Message-ID fixed) before it is sent, `sent` once the server took
-- it, `failed` when the server refused it for good (its answer kept). A crash between sending
-- and recording leaves it `prepared`: the next attempt sends the same mail, same Message-ID.
CREATE TABLE mails (
    id BIGSERIAL PRIMARY KEY,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('confirm', 'digest')),
    run_id TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'prepared' CHECK (state IN ('prepared', 'sent', 'failed')),
    postings INTEGER NOT NULL DEFAULT 0,
    -- Sends tried (more than one: a retry after a 4xx, or a re-send after a crash).
    sends INTEGER NOT NULL DEFAULT 0,
    smtp_response TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX mails_one_prepared ON mails (subscriber_id, kind) WHERE state = 'prepared';

-- Per (subscriber, posting) e-mail state: a posting is in at most one mail to a subscriber
-- (the primary key); its state is that mail's.
CREATE TABLE mailed_postings (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    job_id UUID NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    mail_id BIGINT NOT NULL REFERENCES mails(id) ON DELETE CASCADE,
    PRIMARY KEY (subscriber_id, job_id)
);
CREATE INDEX mailed_postings_mail ON mailed_postings (mail_id);
