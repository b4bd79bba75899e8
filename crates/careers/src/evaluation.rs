//! How well the experience rules read: labelled sentences and their score (exact share,
//! precision and recall of the minimum years), for the tests and `trawl-bench experience`.
use serde::Serialize;

use crate::experience::Experience;

/// The labelled sentences the rules are measured on (English and French, ranges, numbers in
/// words, traps): `min<TAB>max<TAB>sentence`, `-` for none.
pub const LABELLED_SET: &str = include_str!("experience_set.tsv");
/// Sentences written after the rules were settled and never used to tune them.
pub const HOLDOUT_SET: &str = include_str!("experience_holdout.tsv");

/// One labelled sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub min_years: Option<f32>,
    pub max_years: Option<f32>,
    pub text: String,
}

/// Reads a set in [`LABELLED_SET`]'s format.
pub fn labelled(set: &str) -> Vec<Labelled> {
    let value = |v: &str| (v != "-").then(|| v.parse().expect("a number or -"));
    set.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let (min, max, text) = (
                fields.next().expect("min"),
                fields.next().expect("max"),
                fields.next().expect("sentence"),
            );
            Labelled {
                min_years: value(min),
                max_years: value(max),
                text: text.to_owned(),
            }
        })
        .collect()
}

/// How the rules do on a labelled set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub sentences: usize,
    /// Sentences where min and max (or their absence) are exactly the label's.
    pub exact: usize,
    /// Of the sentences given a number, the share whose min is right.
    pub precision: f64,
    /// Of the sentences labelled with a number, the share found with the right min.
    pub recall: f64,
    /// The sentences read wrongly: (sentence, label, found).
    pub misses: Vec<(String, Option<f32>, Option<f32>)>,
}

impl Evaluation {
    pub fn exact_share(&self) -> f64 {
        self.exact as f64 / self.sentences.max(1) as f64
    }
}

/// Runs `read` over the set and scores it.
pub fn evaluate(set: &[Labelled], read: impl Fn(&str) -> Option<Experience>) -> Evaluation {
    let mut scored = Evaluation {
        sentences: set.len(),
        ..Default::default()
    };
    let (mut given, mut given_right, mut labelled_numbers, mut found_right) = (0, 0, 0, 0);
    for sentence in set {
        let found = read(&sentence.text);
        let (min, max) = found
            .as_ref()
            .map_or((None, None), |e| (Some(e.min_years), e.max_years));
        if (min, max) == (sentence.min_years, sentence.max_years) {
            scored.exact += 1;
        } else {
            scored
                .misses
                .push((sentence.text.clone(), sentence.min_years, min));
        }
        if min.is_some() {
            given += 1;
            given_right += usize::from(min == sentence.min_years);
        }
        if sentence.min_years.is_some() {
            labelled_numbers += 1;
            found_right += usize::from(min == sentence.min_years);
        }
    }
    scored.precision = given_right as f64 / given.max(1) as f64;
    scored.recall = found_right as f64 / labelled_numbers.max(1) as f64;
    scored
}
