/* Stub for the pci_ptnet.c syntax check: see ../README. */
#ifndef STUB_SYS_NV_H
#define	STUB_SYS_NV_H
typedef struct nvlist nvlist_t;		/* opaque, as in libnv */
#endif
