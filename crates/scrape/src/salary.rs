//! Salary text → (min, max, currency, period): "60,000 - 80,000 EUR", "$120k–$150k/yr",
//! "£45k", "€50/hour". [`yearly`] turns an amount of any period into a yearly one.

#[derive(Debug, Clone, PartialEq)]
pub struct Salary {
    pub min: f64,
    pub max: f64,
    pub currency: Option<&'static str>,
    pub period: Option<&'static str>,
}

const CURRENCIES: &[(&str, &str)] = &[
    ("eur", "EUR"),
    ("€", "EUR"),
    ("usd", "USD"),
    ("us$", "USD"),
    ("gbp", "GBP"),
    ("£", "GBP"),
    ("chf", "CHF"),
    ("cad", "CAD"),
    ("aud", "AUD"),
    ("$", "USD"),
];
const PERIODS: &[(&str, &str)] = &[
    ("/hour", "HOUR"),
    ("per hour", "HOUR"),
    ("hourly", "HOUR"),
    ("/h", "HOUR"),
    ("an hour", "HOUR"),
    ("/day", "DAY"),
    ("per day", "DAY"),
    ("daily", "DAY"),
    ("/month", "MONTH"),
    ("per month", "MONTH"),
    ("monthly", "MONTH"),
    ("a month", "MONTH"),
    ("/yr", "YEAR"),
    ("/year", "YEAR"),
    ("per year", "YEAR"),
    ("a year", "YEAR"),
    ("annual", "YEAR"),
    ("p.a.", "YEAR"),
];

pub fn parse(text: &str) -> Option<Salary> {
    let lower = text.to_lowercase().replace(['\u{a0}', '\u{202f}'], " ");
    let amounts = amounts(&lower);
    let (&min, max) = (
        amounts.first()?,
        amounts.get(1).copied().unwrap_or(amounts[0]),
    );
    let currency = CURRENCIES
        .iter()
        .find(|(token, _)| lower.contains(token))
        .map(|(_, code)| *code);
    let period = PERIODS
        .iter()
        .find(|(token, _)| lower.contains(token))
        .map(|(_, p)| *p)
        // Seed 002's figures carry no period: large amounts are yearly.
        .or_else(|| (min >= 10_000.0).then_some("YEAR"));
    Some(Salary {
        min: min.min(max),
        max: min.max(max),
        currency,
        period,
    })
}

/// Working hours, days, weeks and months in a year, to compare salaries of any period.
const PER_YEAR: &[(&str, f64)] = &[
    ("HOUR", 1820.0), // 35 h × 52 weeks, France's legal week
    ("DAY", 218.0),   // France's forfait jours
    ("WEEK", 52.0),
    ("MONTH", 12.0),
    ("YEAR", 1.0),
];

/// The yearly equivalent of `amount` paid per `period`; None for a period it does not know.
pub fn yearly(amount: f64, period: &str) -> Option<f64> {
    let period = period.trim().to_ascii_uppercase();
    PER_YEAR
        .iter()
        .find(|(name, _)| period == *name || period.strip_suffix('S') == Some(name))
        .map(|(_, factor)| (amount * factor).round())
}

/// Numbers in the text with thousands separators removed and a `k` suffix applied.
fn amounts(text: &str) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (matches!(chars[i], ',' | '.' | ' ')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                    && thousands_group(&chars, i)))
        {
            if chars[i].is_ascii_digit() {
                digits.push(chars[i]);
            }
            i += 1;
        }
        let mut value: f64 = digits.parse().unwrap_or(0.0);
        if chars.get(i) == Some(&'k') {
            value *= 1000.0;
        }
        if value > 0.0 {
            found.push(value);
        }
    }
    found
}

/// A separator followed by exactly three digits groups thousands ("60,000"), anything else ends
/// the number ("4.5", "1, 2").
fn thousands_group(chars: &[char], at: usize) -> bool {
    let group: Vec<&char> = chars[at + 1..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    group.len() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_shapes() {
        let s = parse("60,000 - 80,000 EUR").unwrap();
        assert_eq!(
            (s.min, s.max, s.currency, s.period),
            (60000.0, 80000.0, Some("EUR"), Some("YEAR"))
        );
        let s = parse("$120k–$150k/yr").unwrap();
        assert_eq!(
            (s.min, s.max, s.currency, s.period),
            (120000.0, 150000.0, Some("USD"), Some("YEAR"))
        );
        let s = parse("£45k").unwrap();
        assert_eq!((s.min, s.max, s.currency), (45000.0, 45000.0, Some("GBP")));
        let s = parse("€50/hour").unwrap();
        assert_eq!(
            (s.min, s.currency, s.period),
            (50.0, Some("EUR"), Some("HOUR"))
        );
        let s = parse("€60000 – €80000 a year").unwrap();
        assert_eq!((s.min, s.max, s.period), (60000.0, 80000.0, Some("YEAR")));
        assert_eq!(parse("competitive"), None);
        assert_eq!(yearly(50.0, "HOUR"), Some(91000.0));
        assert_eq!(yearly(4000.0, "month"), Some(48000.0));
        assert_eq!(yearly(60000.0, "YEAR"), Some(60000.0));
        assert_eq!(yearly(1.0, "fortnight"), None);
    }
}
