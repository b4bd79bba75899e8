//! The arithmetic of one BERT pass on plain row-major `f32` slices, written so the compiler
//! vectorises it: matrix products through `gemm` (the kernels candle itself calls), and the
//! element-wise steps — GELU, softmax, layer norm — as branch-free loops with their own `exp`
//! and `erf`, since the standard library's are scalar calls that stop vectorisation.

/// A PyTorch `Linear` layer: `weight` is `[outputs × inputs]` row-major, as the weights file
/// keeps it.
pub(super) struct Linear {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl Linear {
    /// `out[rows × outputs] = residual + input[rows × inputs] · weightᵀ + bias`, where the
    /// residual (when given, `[rows × outputs]`) is added in the same pass.
    pub fn apply(&self, input: &[f32], rows: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        assert_eq!(input.len(), rows * self.inputs);
        assert_eq!(out.len(), rows * self.outputs);
        for (row, out_row) in out.chunks_exact_mut(self.outputs).enumerate() {
            out_row.copy_from_slice(&self.bias);
            if let Some(residual) = residual {
                let residual = &residual[row * self.outputs..(row + 1) * self.outputs];
                out_row.iter_mut().zip(residual).for_each(|(o, r)| *o += r);
            }
        }
        // SAFETY: the asserts above bound every index gemm touches: lhs is rows × inputs with
        // row stride `inputs`, rhs is the weight read transposed (inputs × outputs, element
        // (k, j) at j·inputs + k), dst is rows × outputs with row stride `outputs`.
        unsafe {
            gemm::gemm(
                rows,
                self.outputs,
                self.inputs,
                out.as_mut_ptr(),
                1,
                self.outputs as isize,
                true,
                input.as_ptr(),
                1,
                self.inputs as isize,
                self.weight.as_ptr(),
                self.inputs as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Self-attention of one text: `qkv` is `[n × 3h]` (queries, keys, values side by side, head
/// after head), `context` receives `[n × h]` (its rows at stride `h`), `scores` is scratch of at
/// least n² floats.
pub(super) fn attention(
    qkv: &[f32],
    n: usize,
    heads: usize,
    context: &mut [f32],
    scores: &mut [f32],
) {
    let h = context.len() / n;
    let head = h / heads;
    assert_eq!(qkv.len(), n * 3 * h);
    assert_eq!(context.len(), n * h);
    assert_eq!(h, head * heads);
    let scores = &mut scores[..n * n];
    let scale = 1.0 / (head as f32).sqrt();
    let stride = 3 * h as isize;
    for index in 0..heads {
        let query = qkv[index * head..].as_ptr();
        let key = qkv[h + index * head..].as_ptr();
        let value = qkv[2 * h + index * head..].as_ptr();
        // SAFETY: query, key and value rows are `head` floats at stride 3h within qkv (n rows,
        // asserted); scores is n × n; the context block is n rows of `head` floats at stride h.
        unsafe {
            // scores = scale · Q · Kᵀ (Kᵀ's element (k, j) is K[j][k], at j·3h + k).
            gemm::gemm(
                n,
                n,
                head,
                scores.as_mut_ptr(),
                1,
                n as isize,
                false,
                query,
                1,
                stride,
                key,
                stride,
                1,
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        scores.chunks_exact_mut(n).for_each(softmax);
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                n,
                head,
                n,
                context[index * head..].as_mut_ptr(),
                1,
                h as isize,
                false,
                scores.as_ptr(),
                1,
                n as isize,
                value,
                1,
                stride,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Lanes for hand-split reductions: float additions are not reassociated by the compiler, so
/// a plain `sum()` runs one add at a time.
const LANES: usize = 8;

fn lanes_sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn lanes_max(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m });
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = if *v > *a { *v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, v| if *v > m { *v } else { m })
}

/// In place, over one row of attention scores.
pub(super) fn softmax(row: &mut [f32]) {
    let max = lanes_max(row);
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    let scale = 1.0 / lanes_sum(row);
    row.iter_mut().for_each(|v| *v *= scale);
}

/// In place, each `gamma.len()`-wide row normalised to mean 0 and variance 1, then scaled and
/// shifted.
pub(super) fn layer_norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for row in rows.chunks_exact_mut(width) {
        let mean = lanes_sum(row) / width as f32;
        row.iter_mut().for_each(|v| *v -= mean);
        let mut squares = [0.0f32; LANES];
        for chunk in row.chunks_exact(LANES) {
            for (s, v) in squares.iter_mut().zip(chunk) {
                *s += v * v;
            }
        }
        let tail: f32 = row
            .chunks_exact(LANES)
            .remainder()
            .iter()
            .map(|v| v * v)
            .sum();
        let variance = (squares.iter().sum::<f32>() + tail) / width as f32;
        let inverse = 1.0 / (variance + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inverse * g + b;
        }
    }
}

/// In place: GELU as BERT defines it, `x · Φ(x)` with the exact (erf) normal CDF.
pub(super) fn gelu(values: &mut [f32]) {
    values
        .iter_mut()
        .for_each(|x| *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2)));
}

/// eˣ to within a few units in the last place for x ≤ 88: x = n·ln2 + r with |r| ≤ ln2/2, eʳ by
/// its Taylor series to r⁷ (error < 2·10⁻⁷ relative), 2ⁿ built in the exponent bits.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // Rounds to the nearest integer with additions only (no call, so it vectorises).
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error < 1.5·10⁻⁷).
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let want = x.exp();
            assert!(
                (exp(x) - want).abs() <= want * 4e-7,
                "exp({x}) = {} not {want}",
                exp(x)
            );
        }
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = libm_erf(x as f64) as f32;
            assert!(
                (erf(x) - want).abs() < 3e-7,
                "erf({x}) = {} not {want}",
                erf(x)
            );
        }
    }

    /// erf by its series (x small) or continued fraction (x large), in f64: a reference
    /// independent of the approximation under test.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let value = if a < 3.0 {
            let (mut term, mut sum, mut k) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                k += 1.0;
                term *= -a * a / k;
                sum += term / (2.0 * k + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut fraction = 0.0;
            for k in (1..60).rev() {
                fraction = (k as f64 / 2.0) / (a + fraction);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + fraction)
        };
        value.copysign(x)
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        let original = row.clone();
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let total: f64 = original.iter().map(|v| (*v as f64).exp()).sum();
        for (p, v) in row.iter().zip(&original) {
            assert!((*p as f64 - (*v as f64).exp() / total).abs() < 1e-6);
        }
    }

    #[test]
    fn layer_norm_centres_and_scales_each_row() {
        let mut rows: Vec<f32> = (0..2 * 19).map(|i| i as f32 * 1.5 - 7.0).collect();
        let gamma = vec![2.0; 19];
        let beta = vec![1.0; 19];
        layer_norm(&mut rows, &gamma, &beta, 1e-12);
        for row in rows.chunks_exact(19) {
            let mean = row.iter().sum::<f32>() / 19.0;
            let variance = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 19.0;
            assert!((mean - 1.0).abs() < 1e-5, "{mean}");
            assert!((variance - 4.0).abs() < 1e-4, "{variance}");
        }
    }

    #[test]
    fn linear_adds_bias_and_residual() {
        // weight [2 × 3]: outputs 0 and 1 read inputs (1, 0, 2) and (0, 1, -1).
        let layer = Linear {
            weight: vec![1.0, 0.0, 2.0, 0.0, 1.0, -1.0],
            bias: vec![0.5, -0.5],
            inputs: 3,
            outputs: 2,
        };
        let input = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let residual = [10.0, 20.0, 30.0, 40.0];
        let mut out = [0.0; 4];
        layer.apply(&input, 2, Some(&residual), &mut out);
        assert_eq!(out, [17.5, 18.5, 31.5, 38.5]);
    }
}
