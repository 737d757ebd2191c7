// The stop signals are blocked before main runs, so that a SIGTERM (a pod drained right after
// it started), SIGINT or SIGHUP that arrives while the runtime starts and the arguments are
// parsed stays pending instead of killing the process with status 143. The driver's handlers
// are installed first thing in main and then unblock them: a pending signal is delivered to
// the handler at that moment and the job stops with status 75 as at any other time.
//
// Only the program's own startup is covered: the dynamic loader runs before any constructor,
// so a signal in the first millisecond after exec still takes its default action.
#include <signal.h>
#include "cstartup.h"

static int blocked;

static void cstartup_block_stop_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    blocked = sigprocmask(SIG_BLOCK, &set, 0) == 0;
}

// An entry of the executable's .preinit_array runs once the loader has mapped the libraries and
// before any of their constructors (the Swift runtime's and Foundation's take milliseconds);
// a constructor is the fallback where this object is linked into a shared library.
__attribute__((section(".preinit_array"), used))
static void (*const cstartup_preinit)(void) = cstartup_block_stop_signals;

__attribute__((constructor))
static void cstartup_constructor(void) {
    if (!blocked) cstartup_block_stop_signals();
}

int cstartup_stop_signals_blocked(void) {
    return blocked;
}
