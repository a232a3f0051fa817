"""fips-reload-matrix: can a process recover when the OpenSSL 3 FIPS provider enters its error state?"""

__version__ = "0.1.0"
