/*
 * alloc_fail.h - make the Nth allocation fail, to walk every out-of-memory
 * path of the code under test.
 *
 * A test executable gets this by linking alloc_fail.c and the linker options
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,
 * --wrap=free (tests/unit/CMakeLists.txt: add the test's name to
 * ALLOC_FAIL_TESTS); alloc_fail_jansson() routes jansson through the same
 * counter. Only the thread that armed the counter is counted, so helper
 * threads (the HTTP stub) never trip it, and while armed every block it hands
 * out is tracked until freed, so a run can be checked for leaks.
 *
 * The usual use is alloc_fail_walk: run a function with the 1st, 2nd, 3rd...
 * allocation failing until a run completes without reaching the failure.
 * Each run must end cleanly (success or a reported error, the function's own
 * check of its outputs passed) and free everything it allocated.
 */
#ifndef ORDER_TEST_ALLOC_FAIL_H
#define ORDER_TEST_ALLOC_FAIL_H

#include <stdbool.h>
#include <stddef.h>

/* Routes jansson's allocations through the counter: they are always tracked
 * for leaks, and counted (so one of them may be the one to fail) only while
 * may_fail is true. Parsing needs false: jansson 2.14's parser does not
 * survive a failed allocation (it drops a byte and may write past its buffer,
 * akheron/jansson#362 and #747), so a walk over a decoder fails only the
 * decoder's own allocations; builders and dumps can take true. */
void alloc_fail_jansson(bool may_fail);

/* Counts this thread's allocations from now on; the nth one (1-based) fails,
 * and every one after it succeeds. n = 0 counts without failing. */
void alloc_fail_arm(unsigned long n);

struct alloc_fail_stats {
    unsigned long allocations; /* attempted while armed, the failed one included */
    bool failed;               /* the nth allocation was reached and failed */
    size_t live;               /* blocks handed out while armed and not freed since */
};
/* Stops counting and says what happened since alloc_fail_arm. */
struct alloc_fail_stats alloc_fail_disarm(void);

/* What the function under test reports: ALLOC_FAIL_OK when it succeeded and
 * checked its outputs are right, ALLOC_FAIL_ERROR when it failed cleanly (an
 * error returned, nothing half-done), ALLOC_FAIL_WRONG when its outputs were
 * wrong (the walk stops there). It must free what it got before returning. */
enum { ALLOC_FAIL_OK = 0, ALLOC_FAIL_ERROR = 1, ALLOC_FAIL_WRONG = -1 };

struct alloc_fail_walk {
    unsigned long runs;        /* runs made, the final complete one included */
    unsigned long allocations; /* allocations of the complete run */
    char why[256];             /* when the walk failed: the run and the reason */
};

/* Runs fn(arg) with allocation 1, 2, ... failing until a run completes
 * without reaching its failing allocation (that run must return
 * ALLOC_FAIL_OK). Returns 0, or -1 with out->why saying which run leaked,
 * returned a wrong result or failed without an injected failure. */
int alloc_fail_walk(int (*fn)(void *arg), void *arg, unsigned long max_runs,
                    struct alloc_fail_walk *out);

#endif
