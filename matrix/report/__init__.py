"""Reports of a run, made from its results alone: tables, HTML, JUnit, summary, and what
changed since another run (diff)."""
