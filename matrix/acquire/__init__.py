"""What a run needs from outside before it builds: the Debian mirror, verified OpenSSL
sources, base images."""
