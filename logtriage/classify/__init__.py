"""The classifier: rule files (rules/*.toml) -> Rule objects -> class columns on event batches."""
