"""Build-time code: `make models` (build), `make eval` (evaluate) and what they share (datasets,
encoder conversion, training, the embedding cache). Nothing here is imported by a worker."""
