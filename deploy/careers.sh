# Seed 004's flow on the local stack, sourced by deploy/dev.sh: two companies' career pages on
# the demo board (one server-rendered with "next" links, one rendered by JavaScript with a
# "Load more" button), a subscriber who confirms by the link in their mail, a check of each
# page, a change on one, the diff and its detail scrapes, and a digest delivered to a local
# SMTP server (aiosmtpd) whose Maildir is printed.

# Starts the local SMTP server the workers mail through (before the workers start).
start_smtp() {
  need_aiosmtpd
  SMTP_PORT=${TRAWL_SMTP_PORT:-$((API_PORT + 25))}
  MAILDIR="$STATE/mail"
  rm -rf "$MAILDIR" && mkdir -p "$MAILDIR"/{tmp,new,cur}
  start_process smtp "$TRAWL_AIOSMTPD_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$MAILDIR"
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
    sleep 0.2
  done
  export SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" PUBLIC_URL="http://127.0.0.1:$API_PORT/"
  # The demo's companies live on the demo board (a loopback address, refused by default), and
  # so do the ATS APIs of boards their pages link to.
  export MAIL_FROM="trawl alerts <alerts@trawl.localhost>" CAREERS_ALLOW_PRIVATE=true
  export CAREERS_ATS_BASE_URL="http://127.0.0.1:$DEMO_PORT/"
}

# Waits for a run to end; prints its status.
wait_run() { # run_id seconds
  local status=queued
  for _ in $(seq "$2"); do
    status=$(sql "SELECT status FROM task_runs WHERE run_id = '$1'")
    case "$status" in queued | running | '') sleep 1 ;; *) break ;; esac
  done
  echo "$status"
}

# Waits until no career_detail run is queued or running.
wait_details() {
  for _ in $(seq 120); do
    [ "$(sql "SELECT count(*) FROM task_runs WHERE kind = 'career_detail' AND status IN ('queued', 'running')")" -eq 0 ] && return 0
    sleep 1
  done
  die "detail scrapes did not finish in 120 s; see $STATE/logs/"
}

# The plain-text part of a delivered mail, decoded (bodies travel quoted-printable).
mail_text() { # file
  python3 -c 'import email, sys
message = email.message_from_binary_file(open(sys.argv[1], "rb"))
part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
print(part.get_payload(decode=True).decode())' "$1"
}

json_field() { sed -n "s/.*\"$1\": *\"\\{0,1\\}\\([^\",]*\\).*/\\1/p" | head -1; }

snapshot() { # company
  local run status
  run=$("$BIN/trawl" careers snapshot "$1" | json_field run_id)
  status=$(wait_run "$run" 120)
  [ "$status" = succeeded ] || die "the check of $1 ended $status; see $STATE/logs/"
  wait_details
}

run_careers() {
  local board="http://127.0.0.1:$DEMO_PORT" subscriber mail link run status
  log "career pages (seed 004): two companies, a subscriber, checks, a change, a diff, a digest"
  # The demo starts from scratch each time (the demo board's pages do): its own companies,
  # their postings and its subscriber are removed first.
  sql "DELETE FROM jobs WHERE site IN ('career:globex', 'career:initech');
       DELETE FROM companies WHERE slug IN ('globex', 'initech');
       DELETE FROM schedules WHERE name IN ('career-globex', 'career-initech');
       DELETE FROM schedules WHERE name IN (SELECT 'digest-' || id FROM subscribers WHERE email = 'ada@example.com');
       DELETE FROM subscribers WHERE email = 'ada@example.com'" >/dev/null
  "$BIN/trawl" careers add Globex "$board/careers/globex" --next-page a.next >/dev/null
  "$BIN/trawl" careers add Initech "$board/careers/initech/js" --fetch browser \
    --wait-for 'ul#jobs[data-loaded]' --load-more '#load-more' >/dev/null
  "$BIN/trawl" careers subscribe ada@example.com --keyword engineer --keyword developer \
    --max-years 5 --time-zone Europe/Paris >/dev/null
  subscriber=$(sql "SELECT id FROM subscribers WHERE email = 'ada@example.com'")
  for _ in $(seq 60); do
    mail=$(grep -l "confirm?token=" "$MAILDIR"/new/* 2>/dev/null | head -1) && [ -n "$mail" ] && break
    sleep 0.5
  done
  [ -n "${mail:-}" ] || die "no confirmation mail reached $MAILDIR; see $STATE/logs/"
  link=$(mail_text "$mail" | grep -o "http://[^ ]*confirm?token=[0-9a-f-]*" | head -1)
  log "confirmation mail $mail; following its link $link"
  curl -fsS -o /dev/null "$link"
  snapshot globex
  snapshot initech
  log "the demo board changes Globex's page: one posting added, one removed"
  curl -fsS -X POST "$board/_admin/careers/globex/postings" -H 'Content-Type: application/json' \
    -d '{"title": "Staff Rust Engineer"}' >/dev/null
  curl -fsS -X DELETE "$board/_admin/careers/globex/postings/2"
  snapshot globex
  psql "$DATABASE_URL" -Xq -c "SELECT c.slug AS company, s.links, s.pages, s.added, s.removed, d.diff_hash IS NOT NULL AS diff_enqueued, left(s.diff_hash, 8) AS diff, s.warning FROM career_snapshots s JOIN companies c ON c.id = s.company_id LEFT JOIN career_diffs d ON d.snapshot_id = s.id ORDER BY s.id"
  psql "$DATABASE_URL" -Xq -c "SELECT j.job_title, j.is_active AS active, e.min_years, e.max_years, e.method, e.phrase FROM career_links l JOIN jobs j ON j.job_id = l.job_id LEFT JOIN posting_experience e ON e.job_id = j.job_id ORDER BY l.first_seen_at, j.job_title"
  run=$("$BIN/trawl" careers digest "$subscriber" | json_field run_id)
  status=$(wait_run "$run" 60)
  [ "$status" = succeeded ] || die "the digest ended $status; see $STATE/logs/"
  psql "$DATABASE_URL" -Xq -c "SELECT kind, state, postings, sends, message_id, smtp_response FROM mails ORDER BY id"
  mail=$(grep -l "^Message-ID: <digest-" "$MAILDIR"/new/* | head -1)
  [ -n "$mail" ] || die "the digest did not reach $MAILDIR"
  log "the digest: $mail ($(grep -m1 '^Subject:' "$mail")); its text:"
  mail_text "$mail"
}
