//! Location standardisation (seed 002's enrich stage): French arrondissements and postcodes
//! dropped ("Paris 15e", "75015 Paris", "Lyon 3ème" → the city), proper case ("PARIS" →
//! "Paris"), a few aliases, and "Remote" / "Unknown" for work from anywhere and for nothing.
use crate::posting::clean_text;

/// (alias, standard name); aliases compared case- and accent-insensitively.
const ALIASES: &[(&str, &str)] = &[
    ("remote", "Remote"),
    ("teletravail", "Remote"),
    ("full remote", "Remote"),
    ("anywhere", "Remote"),
    ("worldwide", "Remote"),
    ("home based", "Remote"),
    ("work from home", "Remote"),
    ("unknown", "Unknown"),
    ("n/a", "Unknown"),
    ("paris la defense", "Paris La Défense"),
    ("la defense", "Paris La Défense"),
    ("ile-de-france", "Île-de-France"),
    ("idf", "Île-de-France"),
    ("nyc", "New York"),
    ("new york city", "New York"),
    ("sf", "San Francisco"),
];

/// Cities with arrondissements: anything after them that names one is dropped.
const ARRONDISSEMENT_CITIES: &[&str] = &["paris", "lyon", "marseille"];

/// The standard form of a location; empty → "Unknown".
pub fn standardize(location: &str) -> String {
    let cleaned = clean_text(location);
    if cleaned.is_empty() {
        return "Unknown".into();
    }
    let folded = crate::text::fold(&cleaned);
    if let Some((_, name)) = ALIASES.iter().find(|(alias, _)| *alias == folded) {
        return (*name).to_owned();
    }
    if folded.starts_with("remote") || folded.contains("(remote)") {
        return "Remote".into();
    }
    for city in ARRONDISSEMENT_CITIES {
        if names_arrondissement(&folded, city) {
            return proper_case(city);
        }
    }
    proper_case(&cleaned)
}

/// "paris 15e", "paris 15eme arrondissement", "paris 8", "75015 paris", "lyon 3e" → true
/// for that city: the words besides the city are all postcode or arrondissement words.
fn names_arrondissement(folded: &str, city: &str) -> bool {
    let words: Vec<&str> = folded
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '-' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    if !words.contains(&city) || words.len() == 1 {
        return false;
    }
    words.iter().filter(|w| **w != city).all(|word| {
        let digits = word.trim_end_matches(|c: char| c.is_alphabetic());
        let suffix = &word[digits.len()..];
        (!digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && matches!(
                suffix,
                "" | "e" | "er" | "eme" | "ieme" | "th" | "st" | "nd" | "rd"
            ))
            || matches!(
                *word,
                "arrondissement" | "arr" | "arrt" | "france" | "cedex"
            )
    })
}

/// "PARIS" → "Paris", "saint-denis" → "Saint-Denis", "new york" → "New York".
fn proper_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphanumeric() && c != '\'';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::standardize;

    #[test]
    fn standardizes_french_cities_case_and_aliases() {
        for (input, expected) in [
            ("Paris 15e Arrondissement", "Paris"),
            ("PARIS 8E", "Paris"),
            ("75015 Paris", "Paris"),
            ("Lyon 3ème", "Lyon"),
            ("Marseille 13e, France", "Marseille"),
            ("paris", "Paris"),
            ("saint-denis", "Saint-Denis"),
            ("  Berlin  ", "Berlin"),
            ("Télétravail", "Remote"),
            ("Remote - EU", "Remote"),
            ("", "Unknown"),
            ("N/A", "Unknown"),
            ("La Défense", "Paris La Défense"),
            ("Parisian Suburbs", "Parisian Suburbs"),
        ] {
            assert_eq!(standardize(input), expected, "{input:?}");
        }
    }
}
