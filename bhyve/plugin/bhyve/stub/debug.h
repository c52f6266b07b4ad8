/* Stub for the pci_ptnet.c syntax check: see README.  usr.sbin/bhyve/debug.h */
#ifndef STUB_DEBUG_H
#define	STUB_DEBUG_H
#include <stdio.h>
/*
 * bhyve's EPRINTLN(fmt, args...) prints fmt plus a line end suited to the
 * terminal mode.  This stub insists on at least one argument after fmt,
 * which pci_ptnet.c always passes.
 */
#define	EPRINTLN(fmt, ...)	fprintf(stderr, fmt "\n", __VA_ARGS__)
#endif
