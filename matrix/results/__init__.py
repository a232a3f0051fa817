"""Results on disk: their records, the results directory, merging runs."""
