"""Reports of a run, made from its results alone: tables, HTML, JUnit, summary."""
