//! candle's own `BertModel` over all-MiniLM-L6-v2 — what trawl ran before its own pass: a
//! padded batch, masked, mean-pooled, L2-normalised. Kept as the reference our pass is checked
//! against (tests) and measured beside (`trawl-bench embed`); production never calls it.
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{EmbedError, normalize};

pub struct CandleBert {
    model: BertModel,
    tokenizer: Tokenizer,
}

fn model_error(error: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(error.to_string())
}

impl CandleBert {
    /// The model in `dir` (as `MiniLm::load` reads it), at most `max_tokens` per text.
    pub fn load(dir: &Path, max_tokens: usize) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(dir.join("config.json")).map_err(model_error)?;
        let config: Config = serde_json::from_str(&text).map_err(model_error)?;
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(model_error)?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(model_error)?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        // SAFETY: the weights file is memory-mapped read-only and nothing rewrites it while
        // the process runs (deploy/model.sh writes it once).
        let vars = unsafe {
            candle_nn::VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &Device::Cpu,
            )
            .map_err(model_error)?
        };
        let model = BertModel::load(vars, &config).map_err(model_error)?;
        Ok(Self { model, tokenizer })
    }

    /// One vector per text, as one padded batch on candle's threads.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(model_error)?;
        let rows = |field: fn(&tokenizers::Encoding) -> &[u32]| {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(field(e), &Device::Cpu))
                .collect::<Result<Vec<_>, _>>()?;
            Tensor::stack(&rows, 0)
        };
        let mut vectors = (|| {
            let mask = rows(|e| e.get_attention_mask())?;
            let ids = rows(|e| e.get_ids())?;
            let types = rows(|e| e.get_type_ids())?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            hidden
                .broadcast_mul(&mask)?
                .sum(1)?
                .broadcast_div(&mask.sum(1)?)?
                .to_vec2::<f32>()
        })()
        .map_err(model_error)?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}
