//! When recurring work runs next: every N minutes with ±10% jitter, or on a cron expression
//! (5 fields: minute hour day-of-month month day-of-week) in a named time zone.
//!
//! Catch-up: the next time is always computed from *now*, never from the missed fire, so work
//! that missed any number of fires while no scheduler ran runs once when one comes back, not
//! once per missed fire.
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use rand::Rng;

/// Spread of an interval schedule's next time around the interval (±10%, seed 003), so sites
/// added together do not fire together forever.
pub const JITTER: f64 = 0.10;

/// A schedule that cannot be used, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

fn field(field: &'static str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Field {
        field,
        reason: reason.into(),
    }
}

/// When recurring work runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `minutes`, give or take `JITTER`.
    Every { minutes: u32 },
    /// On a cron expression, read on the wall clock of `zone`.
    Cron {
        expression: String,
        parsed: Box<Cron>,
        zone: Tz,
    },
}

impl Schedule {
    /// Every `minutes` minutes (at least 1).
    pub fn every(minutes: i32) -> Result<Self, ScheduleError> {
        match u32::try_from(minutes) {
            Ok(minutes) if minutes > 0 => Ok(Schedule::Every { minutes }),
            _ => Err(field(
                "interval_minutes",
                format!("must be positive, got {minutes}"),
            )),
        }
    }

    /// A 5-field cron expression in `time_zone` (an IANA name such as `Europe/Paris`; default
    /// UTC).
    pub fn cron(expression: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(field(
                "cron",
                format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), got \
                     {fields} in {expression:?}"
                ),
            ));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|err| field("cron", format!("{expression:?} is not valid: {err}")))?;
        let zone = match time_zone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                field(
                    "time_zone",
                    format!("unknown time zone {name:?}; use an IANA name such as Europe/Paris"),
                )
            })?,
        };
        // An expression that can never fire (31 February) is refused now, not at the first pass.
        if parsed
            .find_next_occurrence(&Utc::now().with_timezone(&zone), false)
            .is_err()
        {
            return Err(field("cron", format!("{expression:?} never fires")));
        }
        Ok(Schedule::Cron {
            expression: expression.split_whitespace().collect::<Vec<_>>().join(" "),
            parsed: Box::new(parsed),
            zone,
        })
    }

    /// The schedule a row describes: its cron when it has one, else its interval.
    pub fn from_row(
        interval_minutes: i32,
        cron: Option<&str>,
        time_zone: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        match cron {
            Some(expression) => Self::cron(expression, time_zone),
            None if time_zone.is_some() => Err(field("time_zone", "needs a cron expression")),
            None => Self::every(interval_minutes),
        }
    }

    /// The first time after `now` this work is due.
    pub fn next_after(&self, now: DateTime<Utc>, rng: &mut impl Rng) -> DateTime<Utc> {
        match self {
            Schedule::Every { minutes } => {
                let factor = rng.random_range((1.0 - JITTER)..=(1.0 + JITTER));
                now + Duration::milliseconds((f64::from(*minutes) * 60_000.0 * factor) as i64)
            }
            Schedule::Cron { parsed, zone, .. } => parsed
                .find_next_occurrence(&now.with_timezone(zone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc))
                // Checked at parse time; a schedule that ran out (years from now) waits a year.
                .unwrap_or(now + Duration::days(365)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn cron_fires_on_the_wall_clock_of_its_zone() {
        let mut rng = rand::rng();
        let paris = Schedule::cron("0 8 * * *", Some("Europe/Paris")).unwrap();
        // Winter: Paris is UTC+1; summer: UTC+2.
        assert_eq!(
            paris.next_after(at("2026-11-29T06:00:00Z"), &mut rng),
            at("2026-11-29T07:00:00Z")
        );
        assert_eq!(
            paris.next_after(at("2026-07-01T05:00:00Z"), &mut rng),
            at("2026-07-01T06:00:00Z")
        );
        let daily = Schedule::cron("30 0 * * *", None).unwrap();
        assert_eq!(
            daily.next_after(at("2026-11-29T00:30:00Z"), &mut rng),
            at("2026-11-30T00:30:00Z"),
            "strictly after now"
        );
        // Standard weekdays: 1-5 is Monday to Friday, 0 and 7 are Sunday. 2026-11-28 is a
        // Saturday.
        for spelling in ["0 9 * * 1-5", "0 9 * * MON-FRI"] {
            let weekdays = Schedule::cron(spelling, None).unwrap();
            assert_eq!(
                weekdays.next_after(at("2026-11-28T10:00:00Z"), &mut rng),
                at("2026-11-30T09:00:00Z"),
                "{spelling}"
            );
        }
        let sunday = Schedule::cron("0 9 * * 7", None).unwrap();
        assert_eq!(
            sunday.next_after(at("2026-11-28T10:00:00Z"), &mut rng),
            at("2026-11-29T09:00:00Z")
        );
    }

    #[test]
    fn missed_fires_are_caught_up_once() {
        let mut rng = rand::rng();
        let hourly = Schedule::cron("0 * * * *", None).unwrap();
        // Three days without a scheduler: the next time is the next hour after now, not the
        // 72 hours that were missed.
        let now = at("2026-11-29T10:15:00Z");
        assert_eq!(hourly.next_after(now, &mut rng), at("2026-11-29T11:00:00Z"));
    }

    #[test]
    fn intervals_jitter_within_ten_percent() {
        let mut rng = rand::rng();
        let every = Schedule::every(60).unwrap();
        let now = at("2026-11-29T10:00:00Z");
        for _ in 0..200 {
            let minutes = (every.next_after(now, &mut rng) - now).num_seconds() as f64 / 60.0;
            assert!((54.0..=66.0).contains(&minutes), "{minutes}");
        }
    }

    #[test]
    fn bad_schedules_name_the_field() {
        let err = |r: Result<Schedule, ScheduleError>| r.unwrap_err().to_string();
        assert!(err(Schedule::cron("0 8 * *", None)).starts_with("cron: expected 5 fields"));
        assert!(err(Schedule::cron("0 0 8 * * *", None)).starts_with("cron: expected 5 fields"));
        assert!(err(Schedule::cron("61 8 * * *", None)).starts_with("cron: \"61 8 * * *\" is"));
        assert!(err(Schedule::cron("0 0 31 2 *", None)).contains("never fires"));
        assert!(err(Schedule::cron("0 8 * * *", Some("Mars/Olympus"))).starts_with("time_zone:"));
        assert!(err(Schedule::every(0)).starts_with("interval_minutes:"));
        assert!(err(Schedule::from_row(60, None, Some("UTC"))).starts_with("time_zone:"));
    }
}
