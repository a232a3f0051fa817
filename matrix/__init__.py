"""fips-reload-matrix: can a process recover when the OpenSSL 3 FIPS provider fails?"""

__version__ = "0.1.0"
