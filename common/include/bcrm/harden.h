/* harden.h: keeping secrets in a process's memory out of other hands.
 *
 * A core file, or a debugger attached by the same user, would read keys and bot
 * tokens straight out of memory. Every process that holds them (the vault, the
 * senders) calls process_harden() first thing in main().
 */
#ifndef BCRM_HARDEN_H
#define BCRM_HARDEN_H

/* Disables core dumps (RLIMIT_CORE 0) and marks the process non-dumpable
 * (PR_SET_DUMPABLE 0: no core, no ptrace attach by the same user, /proc/<pid>/mem
 * readable by root only). 0, or -1 after logging why (log_init() first). */
int process_harden(void);

#endif
