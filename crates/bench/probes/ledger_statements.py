"""The ledger's submit, start and end statements as PREPAREs, for `ledger-variants.sh`.

Read from the compile-time query data in `.sqlx/` (what `cargo sqlx prepare` stores for every
`query!`), so the probe measures the statements the ledger sends, not copies that drift from
them. With `--bare`, the start and end leave out their attempt-row CTEs.

Usage: ledger_statements.py SQLX_DIR [--bare]    (prints the PREPARE statements)
"""
import json
import pathlib
import re
import sys

# Each statement is found by text only it contains.
STATEMENTS = {
    "submit": "INSERT INTO task_runs (id, run_id, kind, queue, task_id, trigger, payload, lock_key",
    "start_many": "SELECT run_id, attempt, worker_id FROM started)",
    "finish_runs": "WITH done AS MATERIALIZED",
}
ATTEMPT_CTES = ("abandoned", "recorded", "ended")


def pg_type(sqlx_type):
    """sqlx's parameter type name as PostgreSQL's: `TextArray` -> `text[]`."""
    if sqlx_type.endswith("Array"):
        return pg_type(sqlx_type[: -len("Array")]) + "[]"
    return sqlx_type.lower()


def without_cte(sql, name):
    """`sql` without its CTE `name` (and the comma before it)."""
    found = re.search(r",\s*" + name + r" AS \(", sql)
    if not found:
        sys.exit(f"no CTE {name} in: {sql}")
    depth = 0
    for end in range(found.end() - 1, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            return sql[: found.start()] + sql[end + 1 :]
    sys.exit(f"CTE {name} never closes in: {sql}")


def main():
    sqlx_dir, bare = pathlib.Path(sys.argv[1]), "--bare" in sys.argv[2:]
    queries = [json.loads(path.read_text()) for path in sorted(sqlx_dir.glob("query-*.json"))]
    for name, marker in STATEMENTS.items():
        matching = [q for q in queries if marker in q["query"]]
        if len(matching) != 1:
            sys.exit(f"{len(matching)} queries in {sqlx_dir} contain {marker!r}; expected one")
        query = matching[0]
        sql = query["query"]
        if bare and name != "submit":
            for cte in ATTEMPT_CTES:
                if re.search(r"\b" + cte + r" AS \(", sql):
                    sql = without_cte(sql, cte)
        types = ", ".join(pg_type(t) for t in query["describe"]["parameters"]["Left"])
        print(f"PREPARE {name}({types}) AS\n{sql};")


if __name__ == "__main__":
    main()
