"""Results on disk: their records, the results directory, merging and diffing runs."""
