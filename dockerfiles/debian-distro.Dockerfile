# The distribution's own OpenSSL: Debian's libcrypto and its packaged FIPS provider
# (openssl-provider-fips, trixie and later), exactly as a user of that distribution gets them.
# Nothing of OpenSSL is built here; only the probe is compiled, against Debian's headers
# (and the batch driver, which needs no OpenSSL).
# Runtime paths as in the contract: fips.so is linked to where the package puts it.
ARG BASE_IMAGE=debian:trixie

# The first step of each stage is debian.Dockerfile's, word for word: on the same base image
# the engine makes those layers once for both platforms; the distribution's OpenSSL on top.
FROM ${BASE_IMAGE} AS toolchain
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make perl \
 && rm -rf /var/lib/apt/lists/*
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl-dev openssl-provider-fips \
 && rm -rf /var/lib/apt/lists/*

FROM toolchain AS link
COPY probes/ /src/probes/
RUN mkdir -p /opt/fips-matrix/bin /opt/fips-matrix/lib/ossl-modules \
 && gcc -O1 -Wall -shared -fPIC -o /opt/fips-matrix/lib/libfipsmatrix-canary.so /src/probes/canary.c \
 && gcc -O1 -Wall -o /opt/fips-matrix/bin/fips_probe /src/probes/fips_probe.c -lcrypto -ldl -pthread \
 && gcc -O1 -Wall -o /opt/fips-matrix/bin/fips_batch /src/probes/fips_batch.c

FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-minimal python3-cffi \
 && rm -rf /var/lib/apt/lists/*
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl-provider-fips \
 && rm -rf /var/lib/apt/lists/*
COPY --from=link /opt/fips-matrix /opt/fips-matrix
RUN ln -s "$(dpkg -L openssl-provider-fips | grep '/ossl-modules/fips\.so$')" \
      /opt/fips-matrix/lib/ossl-modules/fips.so \
 && test -e /opt/fips-matrix/lib/ossl-modules/fips.so
ENTRYPOINT ["/opt/fips-matrix/bin/fips_probe"]
