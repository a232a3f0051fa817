"""The benchmark's measurements (`fips-matrix bench`)."""
