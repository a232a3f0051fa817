"""Doing a run, in the order of its flow: images/ (a cell's image), probes/ (its probe runs),
run/ (the run: schedule, each cell's pipeline, fingerprint). Here, what every part of a run
reads: the engine, the run's options and context, its timeline and its lock file."""
