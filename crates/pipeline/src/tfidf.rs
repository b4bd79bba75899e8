//! TF-IDF as scikit-learn's `TfidfVectorizer` computes it with seed 002's settings (word 1–2
//! grams, at most 10,000 features, min df 2, max df 0.8, English stop words, accents stripped,
//! smooth idf, L2 norm), plus URLs and e-mail addresses removed first. A fitted [`Model`] keeps
//! its vocabulary and idf: it scores new text exactly as it scored the corpus (the idf is
//! fixed at fit time, never recomputed on transform).
use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::stop_words::ENGLISH;

static URL_OR_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+").expect("valid")
});

/// How a model is fitted (stored with each version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub ngram_range: (usize, usize),
    pub max_features: usize,
    pub min_df: u32,
    pub max_df: f64,
}

impl Default for Settings {
    /// Seed 002's settings.
    fn default() -> Self {
        Settings {
            ngram_range: (1, 2),
            max_features: 10_000,
            min_df: 2,
            max_df: 0.8,
        }
    }
}

/// A posting's vector: feature indexes ascending, weights L2-normed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    pub features: Vec<i32>,
    pub weights: Vec<f64>,
}

impl SparseVector {
    /// Packed for storage: (feature u32, weight f32) pairs, little-endian.
    pub fn pack(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.features.len() * 8);
        for (feature, weight) in self.features.iter().zip(&self.weights) {
            bytes.extend_from_slice(&(*feature as u32).to_le_bytes());
            bytes.extend_from_slice(&(*weight as f32).to_le_bytes());
        }
        bytes
    }

    /// The vector `pack` made; None for bytes that are not one.
    pub fn unpack(bytes: &[u8]) -> Option<SparseVector> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let mut vector = SparseVector::default();
        for pair in bytes.chunks_exact(8) {
            let feature = u32::from_le_bytes(pair[..4].try_into().ok()?);
            let weight = f32::from_le_bytes(pair[4..].try_into().ok()?);
            vector.features.push(i32::try_from(feature).ok()?);
            vector.weights.push(f64::from(weight));
        }
        Some(vector)
    }

    /// Cosine similarity of two normed vectors (their dot product).
    pub fn dot(&self, other: &SparseVector) -> f64 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0);
        while i < self.features.len() && j < other.features.len() {
            match self.features[i].cmp(&other.features[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.weights[i] * other.weights[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }
}

/// A fitted vocabulary: terms in feature order (alphabetical, as scikit-learn orders them) and
/// each term's idf.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub settings: Settings,
    pub terms: Vec<String>,
    pub idf: Vec<f64>,
    index: FxHashMap<String, usize>,
}

/// The English stop words the vectorizer drops (scikit-learn's list).
pub fn stop_words() -> &'static [&'static str] {
    ENGLISH
}

/// Lowercased, accents stripped, URLs and e-mail addresses removed: the text the tokenizer sees.
pub fn preprocess(text: &str) -> String {
    let folded = trawl_scrape::text::fold(text);
    URL_OR_EMAIL.replace_all(&folded, " ").into_owned()
}

/// The unigrams of a preprocessed text, stop words removed: scikit-learn's default token
/// pattern `\b\w\w+\b` (runs of two or more word characters, Python's `\w` being letters,
/// digits and `_`), scanned by hand, several times faster than the regex.
fn tokens(text: &str) -> Vec<&str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.split(|c: char| !is_word(c))
        .filter(|t| t.chars().nth(1).is_some())
        .filter(|t| ENGLISH.binary_search(t).is_err())
        .collect()
}

/// Preprocesses every document, on every core.
fn preprocess_all(documents: &[String]) -> Vec<String> {
    crate::records::parallel_map(documents, |d| preprocess(d))
}

/// A term of the corpus while counting, as unigram ids: unigrams and bigrams (seed 002's
/// range) without an allocation each, longer n-grams boxed.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Gram {
    Uni(u32),
    Bi(u32, u32),
    Longer(Box<[u32]>),
}

impl Gram {
    fn of(window: &[u32]) -> Gram {
        match *window {
            [a] => Gram::Uni(a),
            [a, b] => Gram::Bi(a, b),
            _ => Gram::Longer(window.into()),
        }
    }

    /// Its words joined by spaces, as scikit-learn names n-grams.
    fn name(&self, words: &[String]) -> String {
        let word = |id: &u32| words[*id as usize].as_str();
        match self {
            Gram::Uni(a) => word(a).to_owned(),
            Gram::Bi(a, b) => format!("{} {}", word(a), word(b)),
            Gram::Longer(ids) => ids.iter().map(word).collect::<Vec<_>>().join(" "),
        }
    }
}

impl Model {
    fn new(settings: Settings, terms: Vec<String>, idf: Vec<f64>) -> Self {
        let index = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Model {
            settings,
            terms,
            idf,
            index,
        }
    }

    /// A stored model, read back.
    pub fn from_parts(settings: Settings, terms: Vec<String>, idf: Vec<f64>) -> Self {
        Model::new(settings, terms, idf)
    }

    /// Fits a model to `documents` and returns it with each document's vector.
    pub fn fit(documents: &[String], settings: Settings) -> (Model, Vec<SparseVector>) {
        let (ngram_min, ngram_max) = settings.ngram_range;
        let mut unigrams: FxHashMap<String, u32> = FxHashMap::default();
        let mut unigram_names: Vec<String> = Vec::new();
        let mut grams: FxHashMap<Gram, u32> = FxHashMap::default();
        let mut gram_keys: Vec<Gram> = Vec::new();
        let mut counts: Vec<Vec<(u32, u32)>> = Vec::with_capacity(documents.len());
        let mut doc_counts: FxHashMap<u32, u32> = FxHashMap::default();
        for text in preprocess_all(documents) {
            let ids: Vec<u32> = tokens(&text)
                .into_iter()
                .map(|token| match unigrams.get(token) {
                    Some(id) => *id,
                    None => {
                        let id = unigram_names.len() as u32;
                        unigram_names.push(token.to_owned());
                        unigrams.insert(token.to_owned(), id);
                        id
                    }
                })
                .collect();
            doc_counts.clear();
            for n in ngram_min.max(1)..=ngram_max {
                for window in ids.windows(n) {
                    let gram = Gram::of(window);
                    let id = match grams.get(&gram) {
                        Some(id) => *id,
                        None => {
                            let id = gram_keys.len() as u32;
                            gram_keys.push(gram.clone());
                            grams.insert(gram, id);
                            id
                        }
                    };
                    *doc_counts.entry(id).or_default() += 1;
                }
            }
            counts.push(doc_counts.iter().map(|(&id, &c)| (id, c)).collect());
        }

        let name = |gram: &Gram| gram.name(&unigram_names);
        let mut df = vec![0u32; gram_keys.len()];
        let mut tf = vec![0u64; gram_keys.len()];
        for doc in &counts {
            for &(id, c) in doc {
                df[id as usize] += 1;
                tf[id as usize] += u64::from(c);
            }
        }
        let high = settings.max_df * documents.len() as f64;
        let mut kept: Vec<(String, u32)> = (0..gram_keys.len() as u32)
            .filter(|&id| {
                let d = df[id as usize];
                d >= settings.min_df && f64::from(d) <= high
            })
            .map(|id| (name(&gram_keys[id as usize]), id))
            .collect();
        // Alphabetical first, then the most frequent (ties: alphabetical) up to max_features.
        kept.sort_unstable();
        if kept.len() > settings.max_features {
            let mut by_frequency: Vec<usize> = (0..kept.len()).collect();
            by_frequency.sort_by_key(|&i| std::cmp::Reverse(tf[kept[i].1 as usize]));
            let mut chosen = vec![false; kept.len()];
            by_frequency[..settings.max_features]
                .iter()
                .for_each(|&i| chosen[i] = true);
            kept = kept
                .into_iter()
                .zip(chosen)
                .filter(|(_, c)| *c)
                .map(|(k, _)| k)
                .collect();
        }
        let n = documents.len() as f64;
        let mut feature_of = vec![u32::MAX; gram_keys.len()];
        let mut terms = Vec::with_capacity(kept.len());
        let mut idf = Vec::with_capacity(kept.len());
        for (feature, (term, id)) in kept.into_iter().enumerate() {
            feature_of[id as usize] = feature as u32;
            idf.push(((1.0 + n) / (1.0 + f64::from(df[id as usize]))).ln() + 1.0);
            terms.push(term);
        }
        let vectors = counts
            .iter()
            .map(|doc| {
                let weighted = doc.iter().filter_map(|&(id, c)| {
                    let feature = feature_of[id as usize];
                    (feature != u32::MAX).then(|| (feature as usize, f64::from(c)))
                });
                normed(weighted, &idf)
            })
            .collect();
        (Model::new(settings, terms, idf), vectors)
    }

    /// The vector of a new text under this model's vocabulary and idf.
    pub fn transform(&self, text: &str) -> SparseVector {
        let text = preprocess(text);
        let unigrams = tokens(&text);
        let mut counts: FxHashMap<usize, f64> = FxHashMap::default();
        let (ngram_min, ngram_max) = self.settings.ngram_range;
        let mut count = |term: &str| {
            if let Some(&feature) = self.index.get(term) {
                *counts.entry(feature).or_default() += 1.0;
            }
        };
        for n in ngram_min.max(1)..=ngram_max {
            match n {
                1 => unigrams.iter().for_each(|t| count(t)),
                _ => unigrams.windows(n).for_each(|w| count(&w.join(" "))),
            }
        }
        normed(counts.into_iter(), &self.idf)
    }
}

/// tf × idf, L2-normed, features ascending.
fn normed(counts: impl Iterator<Item = (usize, f64)>, idf: &[f64]) -> SparseVector {
    let mut weighted: Vec<(usize, f64)> = counts.map(|(f, c)| (f, c * idf[f])).collect();
    weighted.sort_unstable_by_key(|(f, _)| *f);
    let norm = weighted.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
    SparseVector {
        features: weighted.iter().map(|(f, _)| *f as i32).collect(),
        weights: weighted
            .iter()
            .map(|(_, w)| if norm > 0.0 { w / norm } else { 0.0 })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        [
            "Senior Rust engineer: Rust, PostgreSQL, see https://x.io/jobs or mail jobs@x.io",
            "Rust engineer for data pipelines",
            "Data engineer, Python and PostgreSQL",
            "Python data scientist at a CAFE",
            "Café barista — café à Paris",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn fits_like_scikit_learn_and_transforms_new_text_with_the_same_idf() {
        let (model, vectors) = Model::fit(&corpus(), Settings::default());
        // df ≥ 2 and ≤ 0.8 × 5: "engineer" (3), "rust" (2), "data" (3), "python" (2), ...
        assert!(
            model.terms.contains(&"rust engineer".to_owned()),
            "{:?}",
            model.terms
        );
        assert!(
            model.terms.contains(&"cafe".to_owned()),
            "accents stripped: {:?}",
            model.terms
        );
        assert!(
            !model.terms.iter().any(|t| t.contains("io") || t == "jobs"),
            "URL and e-mail removed: {:?}",
            model.terms
        );
        assert!(!model.terms.contains(&"and".to_owned()), "stop word");
        let mut sorted = model.terms.clone();
        sorted.sort();
        assert_eq!(sorted, model.terms, "features in alphabetical order");
        let engineer = model.terms.iter().position(|t| t == "engineer").unwrap();
        assert!((model.idf[engineer] - ((6.0f64 / 4.0).ln() + 1.0)).abs() < 1e-12);
        for (document, vector) in corpus().iter().zip(&vectors) {
            let again = model.transform(document);
            assert_eq!(again.features, vector.features);
            for (a, b) in again.weights.iter().zip(&vector.weights) {
                assert!((a - b).abs() < 1e-12);
            }
            let norm: f64 = vector.weights.iter().map(|w| w * w).sum();
            assert!(vector.weights.is_empty() || (norm - 1.0).abs() < 1e-12);
        }
        assert!(vectors[0].dot(&vectors[1]) > vectors[0].dot(&vectors[3]));
    }

    #[test]
    fn trigrams_are_counted_and_transformed_like_bigrams() {
        let docs: Vec<String> = [
            "alpha beta gamma delta",
            "alpha beta gamma",
            "beta gamma delta",
        ]
        .map(str::to_owned)
        .to_vec();
        let settings = Settings {
            ngram_range: (1, 3),
            max_features: 100,
            min_df: 2,
            max_df: 1.0,
        };
        let (model, vectors) = Model::fit(&docs, settings);
        assert!(
            model.terms.contains(&"alpha beta gamma".to_owned()),
            "{:?}",
            model.terms
        );
        assert!(
            model.terms.contains(&"beta gamma delta".to_owned()),
            "{:?}",
            model.terms
        );
        assert_eq!(model.transform(&docs[0]), vectors[0]);
    }

    #[test]
    fn a_vector_packs_and_unpacks() {
        let vector = SparseVector {
            features: vec![0, 7, 9_999],
            weights: vec![0.5, 0.25, 0.125],
        };
        assert_eq!(SparseVector::unpack(&vector.pack()), Some(vector));
        assert_eq!(SparseVector::unpack(&[1, 2, 3]), None);
    }

    #[test]
    fn max_features_keeps_the_most_frequent_ties_alphabetical() {
        let docs: Vec<String> = ["b b a c", "b a c d", "d b c a"]
            .map(str::to_owned)
            .to_vec();
        let settings = Settings {
            ngram_range: (1, 1),
            max_features: 2,
            min_df: 1,
            max_df: 1.0,
        };
        // 1-char tokens are not tokens: nothing to keep.
        assert!(Model::fit(&docs, settings.clone()).0.terms.is_empty());
        let docs: Vec<String> = ["bb bb aa cc", "bb aa cc dd", "dd bb cc aa"]
            .map(str::to_owned)
            .to_vec();
        let (model, _) = Model::fit(&docs, settings);
        assert_eq!(
            model.terms,
            ["aa", "bb"],
            "bb (4), then aa and cc (3) tie: aa"
        );
    }
}
