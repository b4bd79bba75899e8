//! Prometheus metrics: every name trawl records, described once, the process's recorder and the
//! `/metrics` endpoint workers and schedulers serve on `METRICS_BIND`.
//!
//! Libraries record through the `metrics` facade with the names below (a name typed twice is a
//! series split in two); a process that installed no recorder records into nothing, at the
//! cost of a branch. Label values come from closed sets (kinds and queues the process knows,
//! statuses, outcomes, matched routes), never from input, so a bad task cannot grow the series
//! without bound.
use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Tasks of one queue waiting to be taken (label `queue`).
pub const QUEUE_PENDING: &str = "trawl_queue_pending";
/// Tasks taken by a worker and not yet acked (label `queue`).
pub const QUEUE_IN_FLIGHT: &str = "trawl_queue_in_flight";
/// Tasks waiting in the delayed set for a retry or a lock (label `queue`).
pub const QUEUE_DELAYED: &str = "trawl_queue_delayed";
/// Entries in the dead-letter list (label `queue`).
pub const QUEUE_DEAD: &str = "trawl_queue_dead";
/// 1 while the queue is paused (label `queue`).
pub const QUEUE_PAUSED: &str = "trawl_queue_paused";
/// Workers with a live heartbeat serving the queue (label `queue`).
pub const WORKERS_ALIVE: &str = "trawl_workers_alive";
/// Browser slots held across all workers (BROWSER_GLOBAL_SLOTS).
pub const BROWSER_SLOTS_IN_USE: &str = "trawl_browser_slots_in_use";

/// Attempts started (labels `kind`, `queue`).
pub const TASKS_STARTED: &str = "trawl_tasks_started_total";
/// Runs ended by their attempt (labels `kind`, `queue`, `status`: succeeded, partial, failed).
pub const TASKS_FINISHED: &str = "trawl_tasks_finished_total";
/// Attempts that failed transiently and were put back for a retry (labels `kind`, `queue`).
pub const TASKS_RETRIED: &str = "trawl_tasks_retried_total";
/// Tasks moved to the dead-letter list (labels `kind`, unknown for one that names none this
/// worker runs, and `queue`).
pub const TASKS_DEAD_LETTERED: &str = "trawl_tasks_dead_lettered_total";
/// Tasks that stepped aside into the delayed set, not counted against them (labels `kind`,
/// `queue`, `reason`: run_lock, row_held, recovered).
pub const TASKS_DEFERRED: &str = "trawl_tasks_deferred_total";
/// How long attempts ran, start to end (labels `kind`, `status`).
pub const RUN_DURATION: &str = "trawl_run_duration_seconds";

/// Pages requested from sites (label `outcome`: ok, http_error, network, timeout, blocked
/// by robots.txt, ...).
pub const PAGES_FETCHED: &str = "trawl_pages_fetched_total";
/// Postings stored by scrapes (label `outcome`: inserted, updated, unchanged).
pub const POSTINGS: &str = "trawl_postings_total";
/// Browser sessions open in this process.
pub const BROWSER_SESSIONS_OPEN: &str = "trawl_browser_sessions_open";
/// Browser sessions started.
pub const BROWSER_SESSIONS_STARTED: &str = "trawl_browser_sessions_started_total";
/// Browsers killed by the watchdog (a session past its deadline, or orphaned).
pub const BROWSER_SESSIONS_KILLED: &str = "trawl_browser_sessions_killed_total";
/// Waits of requests for their host's pacing (DOMAIN_RATE): `_count` is how many waited,
/// `_sum` how long in all.
pub const PACING_WAIT: &str = "trawl_pacing_wait_seconds";

/// Scheduler passes run by the leader (label `result`: ok, failed).
pub const SCHEDULER_PASSES: &str = "trawl_scheduler_passes_total";
/// Times this scheduler became leader or stopped being it.
pub const SCHEDULER_LEADER_CHANGES: &str = "trawl_scheduler_leader_changes_total";
/// Workers a scheduler pass found dead (heartbeat run out: killed, out of memory, host lost; a
/// worker stopped by SIGTERM deregisters and is not counted) and took tasks back from.
pub const WORKERS_PRESUMED_DEAD: &str = "trawl_workers_presumed_dead_total";
/// Tasks taken back from dead workers' in-flight lists (label `outcome`: requeued, poisoned —
/// dead-lettered because the workers holding it kept dying).
pub const TASKS_RECOVERED: &str = "trawl_tasks_recovered_total";
/// Active runs the reconciler found with no task in Redis (label `outcome`: requeued from the
/// ledger, failed — lost too often, held — left for the next pass, another session held the
/// row).
pub const RUNS_RECONCILED: &str = "trawl_runs_reconciled_total";
/// 1 while this scheduler is the leader.
pub const SCHEDULER_LEADER: &str = "trawl_scheduler_is_leader";

/// API requests answered (labels `method`, `route`, `status`).
pub const API_REQUESTS: &str = "trawl_api_requests_total";
/// API request latency (labels `method`, `route`).
pub const API_REQUEST_DURATION: &str = "trawl_api_request_duration_seconds";

/// Pipeline alerts raised (labels `pipeline`, `alert`: slow_stage, stage_failed,
/// high_failure_rate, batch_timeout).
pub const PIPELINE_ALERTS: &str = "trawl_pipeline_alerts_total";
/// Pipeline stages ended (labels `pipeline`, `stage`, `status`: success, failed, stopped).
pub const PIPELINE_STAGES: &str = "trawl_pipeline_stages_total";
/// How long each pipeline stage took (labels `pipeline`, `stage`).
pub const PIPELINE_STAGE_DURATION: &str = "trawl_pipeline_stage_duration_seconds";
/// Postings a pipeline stage handled (labels `pipeline`, `stage`, `outcome`).
pub const PIPELINE_RECORDS: &str = "trawl_pipeline_records_total";

/// Postings whose vectors a worker stored (label `model`).
pub const EMBEDDINGS_EMBEDDED: &str = "trawl_embeddings_embedded_total";
/// Postings an embedding attempt failed (labels `model`, `outcome`: retrying, failed).
pub const EMBEDDINGS_FAILURES: &str = "trawl_embeddings_failures_total";
/// Active postings: the coverage's denominator (read from the ledger at each scrape).
pub const EMBEDDINGS_ACTIVE_POSTINGS: &str = "trawl_embeddings_active_postings";
/// Active postings by embedding ledger state (labels `model`, `state`: embedded, pending,
/// processing, failed; read from the ledger at each scrape).
pub const EMBEDDINGS_POSTINGS: &str = "trawl_embeddings_postings";

/// Career-page checks recorded (label `outcome`: ok, warning — a page that lost every link).
pub const CAREER_SNAPSHOTS: &str = "trawl_career_snapshots_total";
/// Job links career-page checks found added.
pub const CAREER_LINKS_ADDED: &str = "trawl_career_links_added_total";
/// Career detail pages read (label `outcome`: stored, refused).
pub const CAREER_DETAILS: &str = "trawl_career_details_total";
/// Experience readings (label `method`: rules, llm, none; `discarded` when the LLM's answer was).
pub const CAREER_EXPERIENCE: &str = "trawl_career_experience_total";
/// Mails sent (labels `kind`: confirm, digest; `outcome`: sent, refused (5xx), retrying).
pub const MAILS: &str = "trawl_mails_total";
/// Age of the oldest mail prepared and not yet recorded sent or refused (0: none; read from
/// the mail ledger at each scrape).
pub const MAILS_PREPARED_OLDEST: &str = "trawl_mails_prepared_oldest_seconds";

/// Buckets of the `_seconds` histograms: API requests in milliseconds, runs in minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Where a worker or scheduler serves its metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsConfig {
    /// Address to serve Prometheus metrics on at /metrics (e.g. 0.0.0.0:9101); unset: none.
    #[arg(long, env = "METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
}

impl MetricsConfig {
    /// Starts the endpoint if METRICS_BIND is set; a bind that fails is a startup error.
    pub async fn serve(&self, shutdown: CancellationToken) -> std::io::Result<Option<SocketAddr>> {
        match self.metrics_bind {
            Some(bind) => serve(bind, shutdown).await.map(Some).map_err(|err| {
                std::io::Error::new(err.kind(), format!("METRICS_BIND={bind}: {err}"))
            }),
            None => Ok(None),
        }
    }
}

/// Installs this process's Prometheus recorder and describes every metric (once; later calls
/// return the same handle, so tests that start several servers in one process share it).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

/// The text exposition of everything recorded so far.
pub fn render(handle: &PrometheusHandle) -> String {
    // Histograms are drained into their buckets here, not on every observation.
    handle.run_upkeep();
    handle.render()
}

/// Serves `GET /metrics` on `bind` until `shutdown`. Returns once the socket is bound, with the
/// address (port 0 picks a free one); the server runs in the background.
pub async fn serve(bind: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let handle = install();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { exposition(render(&handle)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%address, "metrics served at /metrics");
    Ok(address)
}

/// A text exposition as an HTTP answer, with Prometheus's content type.
pub fn exposition(body: String) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

fn describe() {
    for (name, help) in [
        (QUEUE_PENDING, "Tasks waiting in the queue."),
        (
            QUEUE_IN_FLIGHT,
            "Tasks taken by a worker and not yet acked.",
        ),
        (
            QUEUE_DELAYED,
            "Tasks waiting in the delayed set (retries, busy locks).",
        ),
        (QUEUE_DEAD, "Entries in the queue's dead-letter list."),
        (QUEUE_PAUSED, "1 while the queue is paused."),
        (
            WORKERS_ALIVE,
            "Workers with a live heartbeat serving the queue.",
        ),
        (
            BROWSER_SLOTS_IN_USE,
            "Browser slots held across all workers.",
        ),
        (
            BROWSER_SESSIONS_OPEN,
            "Browser sessions open in this process.",
        ),
        (SCHEDULER_LEADER, "1 while this scheduler is the leader."),
        (
            EMBEDDINGS_ACTIVE_POSTINGS,
            "Active postings (coverage's denominator).",
        ),
        (
            EMBEDDINGS_POSTINGS,
            "Active postings by embedding model and ledger state.",
        ),
        (
            MAILS_PREPARED_OLDEST,
            "Age in seconds of the oldest mail not yet sent or refused.",
        ),
    ] {
        describe_gauge!(name, help);
    }
    for (name, help) in [
        (TASKS_STARTED, "Attempts started."),
        (TASKS_FINISHED, "Runs ended by their attempt, by status."),
        (
            TASKS_RETRIED,
            "Attempts that failed transiently and were put back for a retry.",
        ),
        (TASKS_DEAD_LETTERED, "Tasks moved to the dead-letter list."),
        (
            TASKS_DEFERRED,
            "Tasks put back into the delayed set without counting against them: their run's \
             lock held by another run (run_lock), their run's row held by another session \
             (row_held), a second recovered task (recovered).",
        ),
        (PAGES_FETCHED, "Pages requested from sites, by outcome."),
        (POSTINGS, "Postings stored by scrapes, by outcome."),
        (BROWSER_SESSIONS_STARTED, "Browser sessions started."),
        (BROWSER_SESSIONS_KILLED, "Browsers killed by the watchdog."),
        (SCHEDULER_PASSES, "Scheduler passes run by the leader."),
        (
            WORKERS_PRESUMED_DEAD,
            "Workers found dead by a scheduler pass, their tasks taken back.",
        ),
        (
            TASKS_RECOVERED,
            "Tasks taken back from dead workers, by outcome (requeued, poisoned).",
        ),
        (
            RUNS_RECONCILED,
            "Active runs found with no task in Redis, by outcome (requeued, failed, held).",
        ),
        (
            SCHEDULER_LEADER_CHANGES,
            "Times this scheduler became or stopped being leader.",
        ),
        (API_REQUESTS, "API requests answered."),
        (PIPELINE_ALERTS, "Pipeline alerts raised."),
        (PIPELINE_STAGES, "Pipeline stages ended, by status."),
        (
            EMBEDDINGS_EMBEDDED,
            "Postings embedded and stored, by model.",
        ),
        (
            EMBEDDINGS_FAILURES,
            "Postings an embedding attempt failed, by model and outcome.",
        ),
        (
            CAREER_SNAPSHOTS,
            "Career-page checks recorded, by outcome (warning: the page lost every link).",
        ),
        (
            CAREER_LINKS_ADDED,
            "Job links career-page checks found added.",
        ),
        (CAREER_DETAILS, "Career detail pages read, by outcome."),
        (
            CAREER_EXPERIENCE,
            "Experience readings of career postings, by method.",
        ),
        (MAILS, "Mails sent, refused (5xx) or to retry, by kind."),
        (
            PIPELINE_RECORDS,
            "Records handled by pipeline stages, by outcome.",
        ),
    ] {
        describe_counter!(name, help);
    }
    describe_histogram!(
        PACING_WAIT,
        Unit::Seconds,
        "Waits of requests for their host's pacing."
    );
    describe_histogram!(
        RUN_DURATION,
        Unit::Seconds,
        "How long attempts ran, start to end."
    );
    describe_histogram!(API_REQUEST_DURATION, Unit::Seconds, "API request latency.");
    describe_histogram!(
        PIPELINE_STAGE_DURATION,
        Unit::Seconds,
        "How long pipeline stages took."
    );
}
