/*
 * Stub for the pci_ptnet.c syntax check: see README.
 * lib/libvmmapi/vmmapi.h (14.x and 15.x) and the memory-segment ids, which
 * 14.x declares in vmmapi.h and 15.x in sys/dev/vmm/vmm_mem.h (reached
 * through <machine/vmm.h>).
 */
#ifndef STUB_VMMAPI_H
#define	STUB_VMMAPI_H
#include <stddef.h>
#include <stdint.h>

typedef uint64_t vm_paddr_t;		/* machine/_types.h: __vm_paddr_t */
typedef int64_t vm_ooffset_t;		/* sys/types.h: __int64_t */

struct vmctx;

#ifdef STUB_FREEBSD15
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
#else
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
const char *vm_get_name(struct vmctx *ctx);
#endif
