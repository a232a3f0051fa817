"""Doing a run: the engine, the builds, the schedule, the probe containers, locks and bundles."""
