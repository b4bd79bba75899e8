//! The career kinds' settings, from flags or environment.
use std::time::Duration;

use crate::llm::{Llm, LlmSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct CareersConfig {
    /// Let company URLs point at loopback or private-network addresses (the demo board, tests).
    #[arg(long, env = "CAREERS_ALLOW_PRIVATE", default_value_t = false)]
    pub careers_allow_private: bool,
    /// Where the ATS APIs (Greenhouse, Lever, Ashby) of boards found on career pages are read,
    /// instead of their public hosts: `<base>/greenhouse`, `<base>/lever`, `<base>/ashby` (the
    /// demo board serves them). Unset: the public APIs.
    #[arg(long, env = "CAREERS_ATS_BASE_URL")]
    pub careers_ats_base_url: Option<url::Url>,
    /// An OpenAI-compatible API (e.g. http://127.0.0.1:8080/v1) asked for the years of
    /// experience when the rules find none. Unset: rules only.
    #[arg(long, env = "LLM_URL")]
    pub llm_url: Option<String>,
    #[arg(long, env = "LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,
    #[arg(long, env = "LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Seconds one LLM request may take.
    #[arg(long, env = "LLM_TIMEOUT", default_value_t = 30)]
    pub llm_timeout: u64,
}

impl CareersConfig {
    /// The LLM client, when LLM_URL is set; an error names the variable.
    pub fn llm(&self) -> Result<Option<Llm>, String> {
        let Some(url) = &self.llm_url else {
            return Ok(None);
        };
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(format!("LLM_URL: {url:?} is not an http(s) URL")),
        }
        if self.llm_timeout == 0 {
            return Err("LLM_TIMEOUT: must be at least 1".into());
        }
        Llm::new(LlmSettings {
            url: url.clone(),
            model: self.llm_model.clone(),
            api_key: self.llm_api_key.clone(),
            timeout: Duration::from_secs(self.llm_timeout),
        })
        .map(Some)
        .map_err(|e| format!("LLM_URL: cannot build the HTTP client: {e}"))
    }
}
