# Version skew, as validated providers are deployed: the probe and libcrypto of one cell's
# image, the fips.so of another's. Nothing is compiled; both images exist already.
ARG LIBCRYPTO_IMAGE
ARG PROVIDER_IMAGE
FROM ${PROVIDER_IMAGE} AS provider

FROM ${LIBCRYPTO_IMAGE} AS runtime
COPY --from=provider /opt/fips-matrix/lib/ossl-modules/fips.so /opt/fips-matrix/lib/ossl-modules/fips.so
