/* Stub for the pci_ptnet.c syntax check: see README.  usr.sbin/bhyve/debug.h */
#ifndef STUB_DEBUG_H
#define	STUB_DEBUG_H
/*
 * bhyve's EPRINTLN(fmt, args...) pastes a line end after the string literal
 * fmt ("\r\n" while the terminal is raw, else "\n") and prints to stderr.
 * Like bhyve's, this header includes nothing: the user includes <stdio.h>.
 * Unlike bhyve's (GNU named variadic, zero extra arguments allowed) this
 * one needs at least one argument after fmt, which pci_ptnet.c always gives.
 */
extern int raw_stdio;
#define	EPRINTLN(fmt, ...)						\
	do {								\
		if (raw_stdio)						\
			fprintf(stderr, fmt "\r\n", __VA_ARGS__);	\
		else							\
			fprintf(stderr, fmt "\n", __VA_ARGS__);		\
	} while (0)
#endif
