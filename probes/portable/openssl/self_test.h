/* The portable probe's own headers: everything is in one place. */
#include "../fips_probe_ossl.h"
