//! What text a posting is embedded from: the one function every embedder and the content hash
//! agree on.

/// Text past this many characters is cut before it reaches a model: all-MiniLM-L6-v2 reads
/// 256 tokens (about 1,000 characters of English), an HTTP provider's window is rarely above
/// 8,192 tokens, and a posting of megabytes must not cost megabytes per request.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// The fields of a posting that say what the job is.
#[derive(Debug, Clone, Default)]
pub struct PostingText<'a> {
    pub title: &'a str,
    pub company: &'a str,
    pub location: &'a str,
    /// `skills_required` as stored: comma-separated.
    pub skills: &'a str,
    pub description: &'a str,
}

/// `"<title>. <company>. <location>. Skills: a, b. <description>"`, whitespace collapsed,
/// empty parts left out, cut at [`MAX_TEXT_CHARS`] on a character boundary. The title comes
/// first because a model's window keeps the beginning: what the job is must survive the cut.
/// The content hash that decides re-embedding (`posting_embedding_hash` in SQL) covers exactly
/// these fields.
pub fn posting_text(posting: &PostingText<'_>) -> String {
    let skills = if posting.skills.trim().is_empty() {
        String::new()
    } else {
        format!("Skills: {}", posting.skills.trim())
    };
    let parts = [
        posting.title,
        posting.company,
        posting.location,
        &skills,
        posting.description,
    ];
    let mut text = String::new();
    for part in parts {
        let collapsed = part.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push_str(if text.ends_with(['.', '!', '?']) {
                " "
            } else {
                ". "
            });
        }
        text.push_str(&collapsed);
    }
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_fields_title_first_and_skips_empty_ones() {
        let text = posting_text(&PostingText {
            title: "  Backend   engineer ",
            company: "Acme",
            location: "",
            skills: "Rust, SQL",
            description: "Build\nthings.",
        });
        assert_eq!(
            text,
            "Backend engineer. Acme. Skills: Rust, SQL. Build things."
        );
    }

    #[test]
    fn cuts_huge_text_on_a_character_boundary() {
        let description = "é".repeat(MAX_TEXT_CHARS * 3);
        let text = posting_text(&PostingText {
            title: "T",
            description: &description,
            ..Default::default()
        });
        assert_eq!(text.chars().count(), MAX_TEXT_CHARS);
        assert!(text.starts_with("T. é"));
    }

    #[test]
    fn empty_posting_is_empty_text() {
        assert_eq!(posting_text(&PostingText::default()), "");
    }
}
