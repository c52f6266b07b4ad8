/*
 * Stub for the pci_ptnet.c syntax check: see ../../../README.
 * FreeBSD 15.x sys/dev/vmm/vmm_mem.h, userland part only: the guest
 * memory-segment numbering.  One system-memory id per guest NUMA domain
 * (0 .. VM_MAXSYSMEM - 1), then the boot ROM, framebuffer and PCI ROM ids.
 * 14.x has no such header; its ids are in vmmapi.h (see ../../../vmmapi.h).
 * Only the 15.x run of `make check` puts stub/15 on the include path.
 */
#ifndef STUB_DEV_VMM_MEM_H
#define	STUB_DEV_VMM_MEM_H
#define	VM_MAXMEMDOM	8
#define	VM_MAXSYSMEM	VM_MAXMEMDOM
enum {
	VM_SYSMEM = 0,
	VM_BOOTROM = VM_MAXSYSMEM,
	VM_FRAMEBUFFER,
	VM_PCIROM,
	VM_MEMSEG_END
};
#define	VM_MAX_MEMSEGS	VM_MEMSEG_END
#endif
