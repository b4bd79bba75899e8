//! A stage's records travel as JSON text between `batch_records` and the stage's types, encoded
//! and decoded on every core: at 50,000 postings a batch, the JSON is much of a stage's work.
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `f` over `items` on every core, in order.
pub fn parallel_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    if items.len() < 256 {
        return items.iter().map(f).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a record's conversion does not panic"))
            .collect()
    })
}

/// Each item as JSON text.
pub fn encode_all<T: Serialize + Sync>(items: &[T]) -> Vec<String> {
    parallel_map(items, |item| {
        serde_json::to_string(item).expect("stage records serialize")
    })
}

/// Each text read as a `T`, or why it is not one.
pub fn decode_all<T: DeserializeOwned + Send>(
    texts: &[String],
) -> Vec<Result<T, serde_json::Error>> {
    parallel_map(texts, |text| serde_json::from_str(text))
}
