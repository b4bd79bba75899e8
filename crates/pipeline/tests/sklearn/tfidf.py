"""scikit-learn's TfidfVectorizer with seed 002's settings over a corpus trawl wrote.

stdin: {"documents": [...], "stop_words": [...]}; stdout: {"terms": [...], "idf": [...],
"rows": [{"feature": weight, ...}, ...]} with features as indexes into terms.
"""
import json
import sys

from sklearn.feature_extraction.text import TfidfVectorizer

given = json.load(sys.stdin)
vectorizer = TfidfVectorizer(
    lowercase=True,
    strip_accents="unicode",
    ngram_range=(1, 2),
    max_features=10_000,
    min_df=2,
    max_df=0.8,
    stop_words=given["stop_words"],
)
matrix = vectorizer.fit_transform(given["documents"]).tocsr()
terms = vectorizer.get_feature_names_out().tolist()
rows = []
for i in range(matrix.shape[0]):
    start, end = matrix.indptr[i], matrix.indptr[i + 1]
    rows.append({str(j): float(w) for j, w in zip(matrix.indices[start:end], matrix.data[start:end])})
json.dump({"terms": terms, "idf": vectorizer.idf_.tolist(), "rows": rows}, sys.stdout)
