/*
 * Stub for the pci_ptnet.c syntax check: see README.
 * lib/libvmmapi/vmmapi.h of 14.x and 15.x: the functions pci_ptnet.c calls,
 * with libvmmapi's types and argument order.
 *
 * Memory-segment ids: 14.x declares them here (four ids, VM_SYSMEM = 0 ..
 * VM_PCIROM = 3).  15.x removed them from vmmapi.h; they live in
 * sys/dev/vmm/vmm_mem.h, which vmmapi.h does not include, so a 15.x user
 * includes it itself (stub/15/dev/vmm/vmm_mem.h here).
 */
#ifndef STUB_VMMAPI_H
#define	STUB_VMMAPI_H
#include <stddef.h>
#include <stdint.h>

typedef uint64_t vm_paddr_t;		/* amd64 machine/_types.h: 64-bit */
typedef int64_t vm_ooffset_t;		/* sys/_types.h: signed 64-bit */

struct vmctx;

#ifndef STUB_FREEBSD15
enum {
	VM_SYSMEM,
	VM_BOOTROM,
	VM_FRAMEBUFFER,
	VM_PCIROM,
};
#endif

int	vm_get_memseg(struct vmctx *ctx, int ident, size_t *lenp, char *name,
	    size_t namesiz);
void	*vm_create_devmem(struct vmctx *ctx, int segid, const char *name,
	    size_t len);
int	vm_mmap_memseg(struct vmctx *ctx, vm_paddr_t gpa, int segid,
	    vm_ooffset_t segoff, size_t len, int prot);
int	vm_munmap_memseg(struct vmctx *ctx, vm_paddr_t gpa, size_t len);
#endif
