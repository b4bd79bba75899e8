//! The experience rules measured on a labelled set (issue 12: at least 95% exact): exact
//! share, precision and recall of the minimum years, and every sentence read wrongly.
use std::path::PathBuf;

use trawl_careers::experience::{LABELLED_SET, evaluate, extract, labelled};

#[derive(clap::Args)]
pub struct Options {
    /// Another set in the same format (`min<TAB>max<TAB>sentence`, `-` for none); default: the
    /// set the tests use (crates/careers/src/experience_set.tsv).
    #[arg(long)]
    set: Option<PathBuf>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let text = match &options.set {
        Some(path) => std::fs::read_to_string(path)?,
        None => LABELLED_SET.to_owned(),
    };
    let set = labelled(&text);
    let numbered = set.iter().filter(|s| s.min_years.is_some()).count();
    let started = std::time::Instant::now();
    let scored = evaluate(&set, extract);
    let elapsed = started.elapsed();
    println!(
        "experience rules on {} sentences ({numbered} asking for years, {} traps or none)",
        set.len(),
        set.len() - numbered
    );
    println!(
        "  exact (min and max or none): {}/{} = {:.1}%",
        scored.exact,
        scored.sentences,
        100.0 * scored.exact_share()
    );
    println!("  precision of min_years: {:.3}", scored.precision);
    println!("  recall of min_years:    {:.3}", scored.recall);
    println!(
        "  {:.0} sentences/s ({:.1} µs each)",
        set.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / set.len().max(1) as f64
    );
    for (sentence, label, found) in &scored.misses {
        println!("  miss: {sentence:?}: labelled {label:?}, read {found:?}");
    }
    Ok(())
}
