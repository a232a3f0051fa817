"""What the tests stand on instead of a Docker engine and real runs: see README.md here."""
