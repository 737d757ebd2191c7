#ifndef CSTARTUP_H
#define CSTARTUP_H

/// Whether the stop signals (SIGTERM, SIGINT, SIGHUP) were blocked when the process started,
/// before any Swift code ran. Linking the command line's target runs that block; calling this
/// keeps the object file in the link.
int cstartup_stop_signals_blocked(void);

#endif
