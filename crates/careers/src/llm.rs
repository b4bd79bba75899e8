//! The second reader of experience: an OpenAI-compatible chat endpoint asked for strict JSON,
//! used only when the rules find nothing. Its answer is believed only when it holds together: a
//! number in 0-40 and a quote that appears in the posting. Anything else is discarded with the
//! reason, which is stored beside the posting.
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::experience::{Experience, MAX_YEARS};

/// Longest posting text sent (characters): the requirement is nearly always in the first pages.
const MAX_TEXT_CHARS: usize = 12_000;

const INSTRUCTIONS: &str = "You read job postings. Answer with one JSON object and nothing \
    else: {\"min_years\": number or null, \"max_years\": number or null, \"quote\": string or \
    null}. min_years is the minimum years of professional experience the posting requires \
    (max_years only when it gives a range); quote is the exact words of the posting that say \
    it, copied verbatim. If the posting asks for no number of years, answer \
    {\"min_years\": null, \"max_years\": null, \"quote\": null}.";

#[derive(Clone)]
pub struct LlmSettings {
    /// The API's base URL, e.g. http://127.0.0.1:8080/v1 (`/chat/completions` is appended).
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct Llm {
    client: reqwest::Client,
    settings: LlmSettings,
}

impl std::fmt::Debug for Llm {
    /// The endpoint and model, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("url", &self.settings.url)
            .field("model", &self.settings.model)
            .finish()
    }
}

/// What the endpoint said, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmReading {
    Found(Experience),
    /// The model says the posting asks for no number of years.
    Nothing,
    /// The answer was unusable; the reason is stored.
    Discarded(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    min_years: Option<f64>,
    #[serde(default)]
    max_years: Option<f64>,
    #[serde(default)]
    quote: Option<String>,
}

impl Llm {
    pub fn new(settings: LlmSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self { client, settings })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Asks the endpoint about `text`. Transport failures are readings too (`Discarded` with
    /// the reason): the posting is stored either way, and the reason says why it has no number.
    pub async fn read(&self, text: &str) -> LlmReading {
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        let url = format!(
            "{}/chat/completions",
            self.settings.url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.settings.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": text},
            ],
        });
        let mut request = self.client.post(&url).json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return LlmReading::Discarded(format!("llm request failed: {e}")),
        };
        let status = response.status();
        if !status.is_success() {
            return LlmReading::Discarded(format!("llm answered HTTP {}", status.as_u16()));
        }
        let reply: serde_json::Value = match response.json().await {
            Ok(reply) => reply,
            Err(e) => return LlmReading::Discarded(format!("llm reply is not JSON: {e}")),
        };
        let Some(content) = reply
            .pointer("/choices/0/message/content")
            .and_then(|c| c.as_str())
        else {
            return LlmReading::Discarded("llm reply has no choices[0].message.content".into());
        };
        check(content, &text)
    }
}

/// Checks the model's answer against the posting it was asked about.
pub fn check(content: &str, text: &str) -> LlmReading {
    let discarded = |why: String| LlmReading::Discarded(why);
    let answer: Answer = match serde_json::from_str(content.trim()) {
        Ok(answer) => answer,
        Err(e) => return discarded(format!("llm answer is not the JSON asked for: {e}")),
    };
    let Some(min) = answer.min_years else {
        return LlmReading::Nothing;
    };
    let in_range = |v: f64| v.is_finite() && (0.0..=f64::from(MAX_YEARS)).contains(&v);
    if !in_range(min)
        || answer
            .max_years
            .is_some_and(|max| !in_range(max) || max < min)
    {
        return discarded(format!(
            "llm answer out of range: min_years {min}, max_years {:?} (0-40, min <= max)",
            answer.max_years
        ));
    }
    let Some(quote) = answer.quote.filter(|q| !q.trim().is_empty()) else {
        return discarded("llm answer has no quote to check".into());
    };
    if !squeeze(text).contains(&squeeze(&quote)) {
        return discarded(format!(
            "llm quote does not appear in the posting (hallucinated?): {quote:?}"
        ));
    }
    LlmReading::Found(Experience {
        min_years: min as f32,
        max_years: answer.max_years.map(|m| m as f32),
        phrase: quote.trim().to_owned(),
    })
}

/// Lower case with runs of white space as one space: quotes are compared as words.
fn squeeze(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTING: &str = "We need someone seasoned.\nYou bring  a decade of experience in ops.";

    #[test]
    fn answers_are_believed_only_when_they_hold_together() {
        let good = r#"{"min_years": 10, "max_years": null, "quote": "a decade of experience"}"#;
        assert!(matches!(check(good, POSTING), LlmReading::Found(e) if e.min_years == 10.0));
        let none = r#"{"min_years": null, "max_years": null, "quote": null}"#;
        assert_eq!(check(none, POSTING), LlmReading::Nothing);
        for (bad, why) in [
            ("Sure! The answer is 10 years.", "not the JSON"),
            (
                r#"{"min_years": 60, "quote": "a decade of experience"}"#,
                "out of range",
            ),
            (
                r#"{"min_years": 5, "max_years": 3, "quote": "a decade"}"#,
                "out of range",
            ),
            (
                r#"{"min_years": 10, "quote": "10+ years of experience"}"#,
                "does not appear",
            ),
            (r#"{"min_years": 10}"#, "no quote"),
            (
                r#"{"min_years": 10, "quote": "x", "confidence": 1}"#,
                "not the JSON",
            ),
        ] {
            match check(bad, POSTING) {
                LlmReading::Discarded(reason) => assert!(reason.contains(why), "{bad}: {reason}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
