/* bcrmctl.h: what the command files of bcrmctl share. */
#ifndef BCRMCTL_H
#define BCRMCTL_H

/* Exit statuses: EXIT_SUCCESS done, EXIT_FAILURE the operation failed. */
#define EXIT_USAGE 2 /* the command line or the configuration is wrong */

/* Prints "bcrmctl: <fmt with arg>" and the usage text to stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, const char *arg);

/* bcrmctl vault <command> [args]: argv[0] is the command (vault_cmds.c). */
int cmd_vault(int argc, char **argv);

#endif
