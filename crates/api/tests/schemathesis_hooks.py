"""Teaches schemathesis the two string formats of trawl's OpenAPI description that JSON Schema
has no keyword for, so that its "valid" requests are valid:

- `cron`: a 5-field cron expression (minute hour day-of-month month day-of-week);
- `time-zone`: an IANA time zone name.

Loaded through SCHEMATHESIS_HOOKS by the API's schemathesis test (crates/api/tests/it/openapi.rs).
"""
import schemathesis
from hypothesis import strategies as st


def field(low, high):
    """One cron field over [low, high]: any, a value, a step, a range or a list."""
    value = st.integers(low, high)
    ranged = st.tuples(value, value).map(sorted).map(lambda pair: f"{pair[0]}-{pair[1]}")
    listed = st.lists(value, min_size=2, max_size=3, unique=True).map(
        lambda values: ",".join(map(str, sorted(values)))
    )
    step = st.integers(1, max(1, high - low)).map(lambda n: f"*/{n}")
    return st.one_of(st.just("*"), value.map(str), ranged, listed, step)


# Days of the month stop at 28, so every generated expression fires in every month.
CRON = st.tuples(field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)).map(" ".join)

ZONES = ["UTC", "Europe/Paris", "Europe/Berlin", "America/New_York", "Asia/Tokyo",
         "Australia/Sydney", "America/Sao_Paulo", "Africa/Nairobi"]

schemathesis.openapi.format("cron", CRON)
schemathesis.openapi.format("time-zone", st.sampled_from(ZONES))
