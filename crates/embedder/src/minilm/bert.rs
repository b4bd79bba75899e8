//! A BERT encoder pass (all-MiniLM-L6-v2's shape: post-norm layers, GELU, absolute
//! positions) over texts of different lengths *without padding*: every token of every text
//! is one row of one matrix for the dense layers, and attention runs per text over its own
//! rows — no padded token is ever computed, and no mask is needed. One pass runs on one
//! thread; callers spread texts over the cores.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::kernels::{Linear, attention, gelu, layer_norm};

/// The fields of a BERT `config.json` this pass reads.
#[derive(Debug, Deserialize)]
pub(super) struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections as one `Linear` (outputs side by side).
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub(super) struct Bert {
    hidden: usize,
    /// The feed-forward width (`intermediate_size`: 4 × hidden in BERT, not assumed).
    feed_forward: usize,
    heads: usize,
    eps: f32,
    max_positions: usize,
    words: Vec<f32>,
    positions: Vec<f32>,
    /// Token type 0's row: single-sentence inputs only.
    token_type: Vec<f32>,
    embeddings_norm: Norm,
    layers: Vec<Layer>,
}

/// The buffers of one pass, sized by its token count.
#[derive(Default)]
pub(super) struct Scratch {
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
}

impl Bert {
    /// Reads the weights of a `BertModel` saved by transformers (with or without the `bert.`
    /// prefix).
    pub fn load(weights: &Path, config: &Config) -> Result<Self, String> {
        if config.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?}: only \"gelu\" is supported",
                config.hidden_act
            ));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let weights = Weights { tensors };
        let prefix = if weights
            .tensors
            .contains_key("bert.embeddings.word_embeddings.weight")
        {
            "bert."
        } else {
            ""
        };
        let h = config.hidden_size;
        let linear = |name: &str, inputs: usize, outputs: usize| -> Result<Linear, String> {
            Ok(Linear {
                weight: weights.get(&format!("{prefix}{name}.weight"), &[outputs, inputs])?,
                bias: weights.get(&format!("{prefix}{name}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                gamma: weights.get(&format!("{prefix}{name}.weight"), &[h])?,
                beta: weights.get(&format!("{prefix}{name}.bias"), &[h])?,
            })
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let at = |part: &str| format!("encoder.layer.{index}.{part}");
            let (q, k, v) = (
                linear(&at("attention.self.query"), h, h)?,
                linear(&at("attention.self.key"), h, h)?,
                linear(&at("attention.self.value"), h, h)?,
            );
            layers.push(Layer {
                qkv: Linear {
                    weight: [q.weight, k.weight, v.weight].concat(),
                    bias: [q.bias, k.bias, v.bias].concat(),
                    inputs: h,
                    outputs: 3 * h,
                },
                attention_out: linear(&at("attention.output.dense"), h, h)?,
                attention_norm: norm(&at("attention.output.LayerNorm"))?,
                intermediate: linear(&at("intermediate.dense"), h, config.intermediate_size)?,
                output: linear(&at("output.dense"), config.intermediate_size, h)?,
                output_norm: norm(&at("output.LayerNorm"))?,
            });
        }
        let token_types = weights.get_rows(
            &format!("{prefix}embeddings.token_type_embeddings.weight"),
            h,
        )?;
        Ok(Self {
            hidden: h,
            feed_forward: config.intermediate_size,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            max_positions: config.max_position_embeddings,
            words: weights.get_rows(&format!("{prefix}embeddings.word_embeddings.weight"), h)?,
            positions: weights.get(
                &format!("{prefix}embeddings.position_embeddings.weight"),
                &[config.max_position_embeddings, h],
            )?,
            token_type: token_types[..h].to_vec(),
            embeddings_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// The last hidden state of each text, mean-pooled over its tokens: one `hidden`-wide
    /// vector per text (not normalised).
    pub fn mean_pooled(&self, texts: &[&[u32]], scratch: &mut Scratch) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let tokens: usize = texts.iter().map(|t| t.len()).sum();
        let longest = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        let Scratch {
            x,
            qkv,
            context,
            attended,
            intermediate,
            scores,
        } = scratch;
        let sized = |buffer: &mut Vec<f32>, len: usize| {
            buffer.clear();
            buffer.resize(len, 0.0);
        };
        sized(x, tokens * h);
        sized(qkv, tokens * 3 * h);
        sized(context, tokens * h);
        sized(attended, tokens * h);
        sized(intermediate, tokens * self.feed_forward);
        sized(scores, longest * longest);
        self.embed_tokens(texts, x);
        for layer in &self.layers {
            layer.qkv.apply(x, tokens, None, qkv);
            let mut start = 0;
            for text in texts {
                let n = text.len();
                attention(
                    &qkv[start * 3 * h..(start + n) * 3 * h],
                    n,
                    self.heads,
                    &mut context[start * h..(start + n) * h],
                    scores,
                );
                start += n;
            }
            layer
                .attention_out
                .apply(context, tokens, Some(x), attended);
            let norm = &layer.attention_norm;
            layer_norm(attended, &norm.gamma, &norm.beta, self.eps);
            layer
                .intermediate
                .apply(attended, tokens, None, intermediate);
            gelu(intermediate);
            layer.output.apply(intermediate, tokens, Some(attended), x);
            let norm = &layer.output_norm;
            layer_norm(x, &norm.gamma, &norm.beta, self.eps);
        }
        let mut start = 0;
        texts
            .iter()
            .map(|text| {
                let rows = &x[start * h..(start + text.len()) * h];
                start += text.len();
                let mut mean = vec![0.0f32; h];
                for row in rows.chunks_exact(h) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                let count = text.len().max(1) as f32;
                mean.iter_mut().for_each(|m| *m /= count);
                mean
            })
            .collect()
    }

    /// Word + position + token type embeddings, layer-normed, one row per token.
    fn embed_tokens(&self, texts: &[&[u32]], x: &mut [f32]) {
        let h = self.hidden;
        let vocabulary = self.words.len() / h;
        let mut rows = x.chunks_exact_mut(h);
        for text in texts {
            for (position, id) in text.iter().enumerate() {
                let row = rows.next().expect("one row per token");
                // The tokenizer only yields ids of its vocabulary and cuts at the window; a
                // mismatched tokenizer.json gets the unknown-word row 0, not a panic.
                let id = if (*id as usize) < vocabulary {
                    *id as usize
                } else {
                    0
                };
                // `MiniLm::load` refuses a window past the model's positions; never index past.
                let position = position.min(self.max_positions - 1);
                let word = &self.words[id * h..(id + 1) * h];
                let place = &self.positions[position * h..(position + 1) * h];
                for (((out, w), p), t) in row.iter_mut().zip(word).zip(place).zip(&self.token_type)
                {
                    *out = w + p + t;
                }
            }
        }
        let norm = &self.embeddings_norm;
        layer_norm(x, &norm.gamma, &norm.beta, self.eps);
    }
}

struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    fn tensor(&self, name: &str) -> Result<&Tensor, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("model.safetensors has no tensor {name}"))
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let tensor = self.tensor(name)?;
        if tensor.dims() != shape {
            return Err(format!(
                "{name} has shape {:?}, expected {shape:?}",
                tensor.dims()
            ));
        }
        Self::values(name, tensor)
    }

    /// A `[rows × width]` tensor of any row count, flattened.
    fn get_rows(&self, name: &str, width: usize) -> Result<Vec<f32>, String> {
        let tensor = self.tensor(name)?;
        match tensor.dims() {
            [rows, w] if *w == width && *rows > 0 => Self::values(name, tensor),
            dims => Err(format!("{name} has shape {dims:?}, expected [_, {width}]")),
        }
    }

    fn values(name: &str, tensor: &Tensor) -> Result<Vec<f32>, String> {
        tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| format!("{name}: {e}"))
    }
}
