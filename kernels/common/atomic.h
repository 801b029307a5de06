/* The one atomic counter of every compiled kernel: workers claim chunks, blocks or tasks of a
 * fixed plan through fe_fetch_add (launch.run_threaded's rule), so each piece is done exactly
 * once by one thread and results do not depend on the thread count. */
#ifndef FE_ATOMIC_H
#define FE_ATOMIC_H

/* atomically: old = *p; *p += v; return old */
static inline long long fe_fetch_add(long long *p, long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

#endif
