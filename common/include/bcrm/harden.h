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

/* Zeroes the STACK_SCRUB_BYTES of the calling thread's stack below its frame.
 * Functions that have returned leave copies of what they handled there, and so
 * do the register saves of signal delivery and of the dynamic linker's lazy
 * binding (every vector register, holding whatever a memcpy or strlen last moved:
 * a token, a person's name). A loop that handles secrets calls it between rounds,
 * so that its dead stack keeps nothing longer than the caches it wipes. */
#define STACK_SCRUB_BYTES (64 * 1024)
void stack_scrub(void);

#endif
