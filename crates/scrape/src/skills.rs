//! Skills extraction (seed 002's enrich stage): a small gazetteer with aliases, matched on word
//! boundaries so "Go" does not match "good" and "Java" does not match "JavaScript".

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

/// Canonical names of the skills mentioned in `text`, each once, in gazetteer order.
pub fn extract(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    GAZETTEER
        .iter()
        .filter(|(_, aliases)| aliases.iter().any(|alias| contains_word(&lower, alias)))
        .map(|(name, _)| *name)
        .collect()
}

fn contains_word(haystack: &str, word: &str) -> bool {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '+' || c == '#';
    haystack.match_indices(word).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + word.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
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
    }
}
