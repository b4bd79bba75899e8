#!/usr/bin/env bash
# How much cheaper could the ledger's rows be for PostgreSQL? Three leaner schemas against today's.
#
# An end moves `finished_at` from NULL, so the run leaves the partial index `task_runs_unfinished`
# and PostgreSQL must write a new entry into every other index of `task_runs` (an update is HOT
# only when no indexed column, predicates included, changes); and every attempt writes a row of
# `task_run_attempts` at its start and updates it at its end. This probe runs the ledger's
# statements on four copies of the schema, alternating, and measures the backend's own CPU
# (utime + stime from /proc):
#   today             the migrations as they are;
#   no_active_index   the partial index dropped, so ends can be HOT: the most HOT ends could
#                     save, with nothing left to find active runs by;
#   open_runs_table   HOT ends done properly: active runs kept in a table of their own by
#                     triggers, so the index that finds them is not on `task_runs`;
#   bare_run_row      the floor of any ledger with a run row: no active-run index and no
#                     attempt rows at all (start and end touch the run row only).
#
# Each round submits its runs (one INSERT each: `store::insert_run`), then starts and ends them
# 50 a statement (`store::start_many`, `store::finish_runs`), each statement its own transaction.
# The statements are the ledger's own, read from `.sqlx/` by `ledger_statements.py`. The CPU is
# shown for the start and end alone and for the whole run, submit included (the open-runs table
# moves work to the submit). Needs psql, python3, PostgreSQL with pgvector (the migrations create
# it; `deploy/dev.sh test` installs it) and a superuser (`pg_read_file` of /proc).
#
# Usage: crates/bench/probes/ledger-variants.sh [ROUNDS]   (PGHOST, PGPORT, PGUSER as for psql;
# default 127.0.0.1, 5432, postgres; TRAWL_PROBE_RUNS runs a round, default 10,000). Prints each
# round's PostgreSQL CPU per run, the share of `task_runs` updates that were HOT, and what each
# copy ended and recorded. It creates and drops databases named trawl_probe_* (or
# $TRAWL_PROBE_PREFIX_*).
set -euo pipefail

rounds=${1:-6}
runs=${TRAWL_PROBE_RUNS:-10000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
prefix=${TRAWL_PROBE_PREFIX:-trawl_probe}
variants=(today no_active_index open_runs_table bare_run_row)
work=$(mktemp -d)
trap 'rm -rf "$work"; for v in "${variants[@]}"; do dropdb --if-exists "${prefix}_$v"; done' EXIT

pg() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

variant_sql() {
  case $1 in
    today) ;;
    no_active_index | bare_run_row) echo 'DROP INDEX task_runs_unfinished;' ;;
    open_runs_table) cat <<'SQL'
DROP INDEX task_runs_unfinished;
CREATE TABLE task_runs_open (run_id TEXT PRIMARY KEY, kind TEXT NOT NULL);
INSERT INTO task_runs_open SELECT run_id, kind FROM task_runs WHERE finished_at IS NULL;
CREATE FUNCTION task_runs_open_set() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' AND NEW.finished_at IS NULL THEN
        INSERT INTO task_runs_open VALUES (NEW.run_id, NEW.kind) ON CONFLICT DO NOTHING;
    ELSIF TG_OP <> 'INSERT' THEN
        DELETE FROM task_runs_open WHERE run_id = OLD.run_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER task_runs_open_inserted AFTER INSERT ON task_runs FOR EACH ROW
    WHEN (NEW.finished_at IS NULL) EXECUTE FUNCTION task_runs_open_set();
CREATE TRIGGER task_runs_open_changed AFTER UPDATE OF finished_at ON task_runs FOR EACH ROW
    WHEN ((OLD.finished_at IS NULL) <> (NEW.finished_at IS NULL))
    EXECUTE FUNCTION task_runs_open_set();
CREATE TRIGGER task_runs_open_deleted AFTER DELETE ON task_runs FOR EACH ROW
    WHEN (OLD.finished_at IS NULL) EXECUTE FUNCTION task_runs_open_set();
SQL
    ;;
  esac
}

echo "setting up ${#variants[@]} databases" >&2
for v in "${variants[@]}"; do
  db=${prefix}_$v
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db"
  for migration in "$root"/migrations/*.sql; do pg -d "$db" -f "$migration" >/dev/null; done
  variant_sql "$v" | pg -d "$db"
  pg -d "$db" -c 'SELECT pg_stat_reset()' >/dev/null
  bare=
  [ "$v" = bare_run_row ] && bare=--bare
  python3 "$here/ledger_statements.py" "$root/.sqlx" $bare >"$work/prepare_$v.sql"
done

backend_cpu="SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint
    FROM pg_read_file('/proc/' || pg_backend_pid() || '/stat') AS s;"

# One round: runs [offset, offset + runs) submitted, then started and ended 50 a statement,
# with the backend's CPU ticks read before, between and after.
round_sql() {
  pg -d "${prefix}_today" -c "SELECT format('EXECUTE submit(gen_random_uuid(), %L, %L, %L, %L, %L,
      %L, NULL, 3);', 'r' || lpad(i::text, 8, '0'), 'noop', 'default', 'submitted', 'manual', '{}')
    FROM generate_series($1, $1 + $runs - 1) i"
  echo "$backend_cpu"
  pg -d "${prefix}_today" -c "SELECT format(
      'EXECUTE start_many(%L, %L, %L, false); '
      'EXECUTE finish_runs(%L, %L, %L, %L, %L, %L);',
      ids, tasks, workers, ids, ones, statuses, messages, empties, empties)
    FROM (SELECT i / 50 AS batch,
                 array_agg('r' || lpad(i::text, 8, '0') ORDER BY i) AS ids,
                 array_agg('t' || i ORDER BY i) AS tasks,
                 array_agg('probe'::text ORDER BY i) AS workers,
                 array_agg(1 ORDER BY i) AS ones,
                 array_agg('succeeded'::text ORDER BY i) AS statuses,
                 array_agg('ok'::text ORDER BY i) AS messages,
                 array_agg('{}'::jsonb ORDER BY i) AS empties
          FROM generate_series($1, $1 + $runs - 1) i GROUP BY i / 50 ORDER BY batch) b"
}

per_run() { echo $(( ($1) * 1000000 / $(getconf CLK_TCK) / runs )); }

echo "PostgreSQL CPU per run, µs: start + end / submit + start + end ($runs runs a round)"
printf 'round'; printf ' | %s' "${variants[@]}"; echo
for ((r = 0; r < rounds; r++)); do
  round_sql $((r * runs)) >"$work/round.sql"
  declare -A cpu=()
  # Each round starts with a different variant, so none always runs first.
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v=${variants[$(((r + k) % ${#variants[@]}))]}
    ticks=$( { cat "$work/prepare_$v.sql"; echo "$backend_cpu"; cat "$work/round.sql";
               echo "$backend_cpu"; } | pg -d "${prefix}_$v" | grep -E '^[0-9]+$' | tr '\n' ' ')
    read -r before submitted after <<<"$ticks"
    cpu[$v]="$(per_run "after - submitted") / $(per_run "after - before")"
  done
  printf '%d' $((r + 1)); for v in "${variants[@]}"; do printf ' | %s' "${cpu[$v]}"; done; echo
done

sleep 1 # let the backends' statistics reach the cumulative views
printf 'HOT'
for v in "${variants[@]}"; do
  printf ' | %s' "$(pg -d "${prefix}_$v" -c "SELECT round(100.0 * n_tup_hot_upd
    / greatest(n_tup_upd, 1)) || '%' FROM pg_stat_user_tables WHERE relname = 'task_runs'")"
done
echo
# What each copy did, so a statement that silently changed nothing cannot pass for a cheap one.
printf 'runs ended / attempt rows'
for v in "${variants[@]}"; do
  printf ' | %s' "$(pg -d "${prefix}_$v" -c "SELECT count(*) FILTER (WHERE status = 'succeeded')
    || ' / ' || (SELECT count(*) FROM task_run_attempts) FROM task_runs")"
done
echo
