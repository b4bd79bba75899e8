//! `trawl-bench embed` (b): all-MiniLM-L6-v2 on this machine at 128 and 256 tokens — trawl's
//! own pass (`MiniLm`) and, on the same texts, candle's `BertModel` (a padded batch on candle's
//! threads, what trawl ran before) — each in GFLOP/s beside a plain large matrix multiply
//! measured before and after them in the same run.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::{Device, Tensor};
use trawl_embedder::{CandleBert, MiniLm};

/// FLOPs of one all-MiniLM-L6-v2 forward pass over `n` tokens: per layer, the Q, K, V and
/// output projections (4·n·h² multiply-adds), the feed-forward (2·n·h·4h) and attention's two
/// n×n products (2·n²·h); two FLOPs per multiply-add. Embeddings and norms are left out.
fn minilm_flops(n: f64) -> f64 {
    let (h, layers) = (384.0, 6.0);
    layers * 2.0 * (4.0 * n * h * h + 2.0 * n * h * 4.0 * h + 2.0 * n * n * h)
}

pub fn run(dir: Option<PathBuf>, texts: usize, batch: usize) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(trawl_embedder::default_model_dir);
    let batch = batch.max(1);
    let before = matmul_gflops()?;
    println!("embed (b): all-MiniLM-L6-v2 on the CPU, batches of {batch}, 2 cores");
    println!("plain matmul 1024×1024 · 1024×1024 f32 (candle), before: {before:.1} GFLOP/s");
    let mut lines = Vec::new();
    for tokens in [128, 256] {
        let model =
            MiniLm::load(&dir, tokens, batch).context("the model (deploy/model.sh fetches it)")?;
        let text = "engineer ".repeat(tokens * 2);
        let inputs = vec![text; texts];
        let n = model.token_counts(&inputs[..1])?[0];
        model.embed_blocking(&inputs[..4])?; // warm up
        let started = Instant::now();
        for chunk in inputs.chunks(batch) {
            model.embed_blocking(chunk)?;
        }
        lines.push((
            "trawl (own pass)",
            n,
            texts,
            started.elapsed().as_secs_f64(),
        ));
        let seconds = candle_seconds(&dir, tokens, &inputs, batch)?;
        lines.push(("candle BertModel", n, texts, seconds));
    }
    let after = matmul_gflops()?;
    println!("plain matmul 1024×1024 · 1024×1024 f32 (candle), after:  {after:.1} GFLOP/s");
    // The faster of the two readings: the ratio errs on the low side.
    let matmul = before.max(after);
    println!(
        "{:<18} {:<7} {:>6} {:>11} {:>9} {:>10}",
        "pass", "tokens", "texts", "postings/s", "GFLOP/s", "of matmul"
    );
    for (pass, n, texts, seconds) in lines {
        let rate = texts as f64 / seconds;
        let gflops = rate * minilm_flops(n as f64) / 1e9;
        println!(
            "{pass:<18} {n:<7} {texts:>6} {rate:>11.1} {gflops:>9.1} {:>9.0}%",
            gflops / matmul * 100.0
        );
    }
    Ok(())
}

/// Seconds candle's own `BertModel` takes over `inputs` in batches of `batch`.
fn candle_seconds(
    dir: &std::path::Path,
    tokens: usize,
    inputs: &[String],
    batch: usize,
) -> anyhow::Result<f64> {
    let bert = CandleBert::load(dir, tokens)?;
    bert.embed_blocking(&inputs[..4])?; // warm up
    let started = Instant::now();
    for chunk in inputs.chunks(batch) {
        bert.embed_blocking(chunk)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The best of five readings of ten 1024³ products each: a short reading is at the mercy of
/// whatever else the machine does for that moment.
fn matmul_gflops() -> anyhow::Result<f64> {
    let device = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (1024, 1024), &device)?;
    let b = Tensor::randn(0f32, 1.0, (1024, 1024), &device)?;
    a.matmul(&b)?; // warm up
    let rounds = 10;
    let mut best = 0f64;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..rounds {
            a.matmul(&b)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        best = best.max(rounds as f64 * 2.0 * 1024f64.powi(3) / seconds / 1e9);
    }
    Ok(best)
}
