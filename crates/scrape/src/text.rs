//! Text folding shared by enrichment and the vectorizer: lowercase with accents removed
//! (canonical decomposition, combining marks dropped), so "Télétravail" matches "teletravail".
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// Lowercase, accents removed.
pub fn fold(text: &str) -> String {
    strip_accents(&text.to_lowercase())
}

/// Accents removed exactly as scikit-learn's `strip_accents="unicode"` does: NFKD, and if that
/// changed anything, every character with a combining class dropped.
pub fn strip_accents(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let decomposed: String = text.nfkd().collect();
    if decomposed == text {
        return decomposed;
    }
    decomposed
        .chars()
        .filter(|c| canonical_combining_class(*c) == 0)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_case_and_accents() {
        assert_eq!(super::fold("Télétravail À Lyon"), "teletravail a lyon");
        assert_eq!(super::fold("plain"), "plain");
    }
}
