// The CPUs this process may run on (its affinity mask), for the default --jobs.
#define _GNU_SOURCE
#include "cscan.h"
#ifdef __linux__
#include <sched.h>
#endif

int cscan_allowed_cpus(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
#else
    return -1;
#endif
}

