"""What the probes' observations mean: a verdict per scenario, an outcome per cell.
Pure functions."""
