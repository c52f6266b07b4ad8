/* Stub for the pci_ptnet.c syntax check: see README.  usr.sbin/bhyve/config.h */
#ifndef STUB_CONFIG_H
#define	STUB_CONFIG_H
#include <sys/nv.h>

/* Returned strings are stable only until the next call (as documented). */
const char *get_config_value_node(const nvlist_t *parent, const char *name);
const char *get_config_value(const char *path);
#endif
