//! Skills extraction (seed 002's enrich stage): a small gazetteer with aliases, matched on word
//! boundaries so "Go" does not match "good" and "Java" does not match "JavaScript".
use aho_corasick::AhoCorasick;

/// (canonical name, lowercase aliases). Order is the order skills are reported in.
const GAZETTEER: &[(&str, &[&str])] = &[
    ("Python", &["python"]),
    ("Rust", &["rust"]),
    ("Go", &["golang", "go"]),
    ("Java", &["java"]),
    ("JavaScript", &["javascript", "js"]),
    ("TypeScript", &["typescript"]),
    ("C++", &["c++"]),
    ("C#", &["c#"]),
    ("Ruby", &["ruby"]),
    ("Kotlin", &["kotlin"]),
    ("Scala", &["scala"]),
    ("SQL", &["sql"]),
    ("PostgreSQL", &["postgresql", "postgres"]),
    ("MySQL", &["mysql"]),
    ("Redis", &["redis"]),
    ("MongoDB", &["mongodb"]),
    ("Kafka", &["kafka"]),
    ("Spark", &["spark"]),
    ("Airflow", &["airflow"]),
    ("AWS", &["aws"]),
    ("GCP", &["gcp"]),
    ("Azure", &["azure"]),
    ("Docker", &["docker"]),
    ("Kubernetes", &["kubernetes", "k8s"]),
    ("Terraform", &["terraform"]),
    ("Linux", &["linux"]),
    ("React", &["react"]),
    ("Node.js", &["node.js", "nodejs"]),
    ("Django", &["django"]),
    ("Machine Learning", &["machine learning"]),
    ("Pandas", &["pandas"]),
    ("Tableau", &["tableau"]),
    ("Excel", &["excel"]),
];

/// Every alias in one Aho-Corasick automaton, each pattern knowing its skill's index.
static MATCHER: std::sync::LazyLock<(AhoCorasick, Vec<usize>)> = std::sync::LazyLock::new(|| {
    let (patterns, skills): (Vec<&str>, Vec<usize>) = GAZETTEER
        .iter()
        .enumerate()
        .flat_map(|(skill, (_, aliases))| aliases.iter().map(move |alias| (*alias, skill)))
        .unzip();
    let matcher = AhoCorasick::new(patterns).expect("the gazetteer's aliases build an automaton");
    (matcher, skills)
});

/// Canonical names of the skills mentioned in `text`, each once, in gazetteer order. One pass
/// over the text however many aliases there are; a match counts only on word boundaries.
pub fn extract(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    let (matcher, skills) = &*MATCHER;
    let mut found = vec![false; GAZETTEER.len()];
    let is_word_char = |c: char| c.is_alphanumeric() || c == '+' || c == '#';
    for hit in matcher.find_overlapping_iter(&lower) {
        let mut before = lower[..hit.start()].chars().rev();
        let after = lower[hit.end()..].chars().next();
        // A dot inside a word ("node.js") joins it: "js" there is not JavaScript.
        let joined = match before.next() {
            Some('.') => before.next().is_some_and(char::is_alphanumeric),
            other => other.is_some_and(is_word_char),
        };
        if !joined && !after.is_some_and(is_word_char) {
            found[skills[hit.pattern().as_usize()]] = true;
        }
    }
    GAZETTEER
        .iter()
        .zip(found)
        .filter(|(_, hit)| *hit)
        .map(|((name, _), _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_on_word_boundaries_with_aliases() {
        let text =
            "We seek experienced Python and SQL developer with AWS, k8s and Docker experience";
        assert_eq!(
            extract(text),
            ["Python", "SQL", "AWS", "Docker", "Kubernetes"]
        );
        assert_eq!(extract("good javascript skills"), ["JavaScript"]);
        assert_eq!(extract("C++ and C# and Go"), ["Go", "C++", "C#"]);
        assert!(extract("trusty rustic gopher").is_empty());
        assert_eq!(
            extract("Node.js, Postgres and PostgreSQL (node.js)"),
            ["PostgreSQL", "Node.js"]
        );
        assert_eq!(extract("C++/Python"), ["Python", "C++"]);
    }
}
