"""One module per `fips-matrix` command: each resolves its options and does its job."""
