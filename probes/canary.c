/* A plain shared object, linked without NODELETE: dlopen it, dlclose it, and
 * see whether this libc's dlclose really unmaps a library. */
int fips_matrix_canary(void)
{
    return 42;
}
