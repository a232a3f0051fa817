"""The run itself: its parts wired once, the schedule of its work, each cell's pipeline from
image to probes to result file, and the fingerprint that says where a result was measured."""
