//go:build linux

package kernel

import (
	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// EXTMEM allocators, as netmap_mem_ext_create (netmap_mem2.c) builds them
// and REGISTER uses them:
//
//   - The option's pool parameters of 0 take netmap_min_priv_params (if
//     2 x 1024, ring 4 x 5*PAGE_SIZE, buf 4098 x 2048); those defaults are
//     all the kernel writes back into the option (its nro_info is filled in
//     place, nothing else; the real geometry comes from POOLS_INFO_GET).
//   - The pages: on Linux nr_memsize bytes from usrptr rounded down to a
//     page, pinned (EFAULT if any is not mapped); on FreeBSD the whole VM
//     object behind usrptr, from its start (ENOMEM, vm_mmap_to_errno's
//     KERN_INVALID_ADDRESS, when usrptr is not mapped), whatever usrptr's
//     offset in it and whatever nr_memsize says. Here a FreeBSD VM object is
//     the block of user memory (addUser, anon) that holds usrptr.
//   - An allocator over the same pages (Linux: the same page list;
//     FreeBSD: the same object) that still exists is reused as is.
//   - _netmap_mem_private_new checks, when nr_memsize is not 0, that the
//     pools fit it one after the other without rounding (ENOMEM, "request
//     too large"), and gives whatever is left to the buffer pool, rounded
//     up to a whole buffer.
//   - The pools are then cut from the pages, each starting on a page
//     boundary: objects are placed back to back until the count is reached
//     or the pages run out; an object cut by the end of the pages is
//     counted but marked invalid, and the pools after it are empty. A
//     pool's memtotal is objtotal x objsize rounded up to a page, which
//     makes POOLS_INFO_GET's offsets (if at 0, ring after the if pool's
//     memtotal, buf after the ring pool's) the offsets in the user memory,
//     and nr_memsize the rounded sum of the memtotals.
//   - netmap_mem_finalize (at REGISTER) fails with ENOMEM when a pool has
//     no valid object or fewer than 2 buffers are valid.
//   - The netmap_if, rings and buffers are written into the user's pages:
//     the kernel's view is the user memory.
//   - The port's allocator is replaced only while nobody has it open, and
//     restored when the last user leaves; the EXTMEM allocator then goes
//     away with its last reference.
//
// Deviations: an object cut short is not usable at all here (the kernel
// would accept the buffer index and reach past the pages); mmap of a
// descriptor on an EXTMEM allocator is refused (EOPNOTSUPP), as the fake
// cannot map anonymous pages twice; netmap_get_na's assignment is undone
// when a REGISTER fails, where the kernel leaves it until the next
// unregistration.

// extKey names the pages of an EXTMEM allocator: FreeBSD's VM object (the
// block's base), Linux's page list (first page and count).
type extKey struct {
	base, pages uint64
}

const extPageSize = 4096

// netmap_min_priv_params, netmap_mem2.c.
var minPrivParams = [3][2]uint32{ // {num, size} of if, ring, buf
	{2, 1024},
	{4, 5 * extPageSize},
	{4098, 2048},
}

// extPool is one pool as netmap_mem_ext_create cuts it.
type extPool struct {
	total    uint32
	memtotal uint64
	lastBad  bool // the last object runs past the pages
}

// extCut is the loop of netmap_mem_ext_create over pages pages: params is
// {num, size} per pool.
func extCut(pages uint64, params [3][2]uint32) (pools [3]extPool) {
	remaining := pages
	for i, pr := range params {
		num, size := pr[0], uint64(pr[1])
		if remaining == 0 {
			continue
		}
		var off uint64
		j := uint32(0)
		bad := false
		for ; j < num && remaining > 0; j++ {
			noff := off + size
			if noff < extPageSize {
				off = noff
				continue
			}
			for noff >= extPageSize {
				noff -= extPageSize
				remaining--
				if noff > 0 && remaining == 0 {
					bad = true // out of space: drop this object
				}
				if remaining == 0 {
					break
				}
			}
			off = noff
		}
		p := &pools[i]
		p.total, p.lastBad = j, bad
		p.memtotal = uint64(j) * size
		if p.memtotal%extPageSize != 0 {
			p.memtotal += extPageSize - p.memtotal%extPageSize
			if remaining > 0 {
				remaining--
			}
		}
	}
	return pools
}

// extmemCreate is netmap_mem_ext_create for the EXTMEM option o.
func (k *fakeNetmap) extmemCreate(o *kopt) (*fakeMem, unix.Errno) {
	body := o.body[extmemInfo-OptionHeaderSize:]
	usrptr := le.Uint64(o.body[extmemUsrPtr-OptionHeaderSize:])
	var pi PoolsInfo
	pi.Decode(body)
	fields := [3][2]*uint32{
		{&pi.IfPoolObjTotal, &pi.IfPoolObjSize},
		{&pi.RingPoolObjTotal, &pi.RingPoolObjSize},
		{&pi.BufPoolObjTotal, &pi.BufPoolObjSize},
	}
	var params [3][2]uint32
	for i, f := range fields {
		for j := range 2 {
			if *f[j] == 0 {
				*f[j] = minPrivParams[i][j]
			}
			params[i][j] = *f[j]
		}
	}
	pi.Encode(body) // the defaults, written in place

	// nm_os_extmem_create.
	var key extKey
	var kmem []byte
	if k.freebsd {
		u := k.block(usrptr)
		if u == nil {
			return nil, unix.ENOMEM
		}
		n := len(u.b) / extPageSize * extPageSize
		key, kmem = extKey{base: uint64(u.base)}, u.b[:n:n]
	} else {
		start := usrptr &^ (extPageSize - 1)
		end := (usrptr + pi.MemSize + extPageSize - 1) &^ (extPageSize - 1)
		if end < start {
			return nil, unix.EFAULT
		}
		b, err := k.mem(start, int(end-start))
		if err != 0 && end > start {
			return nil, unix.EFAULT
		}
		key, kmem = extKey{base: start, pages: (end - start) / extPageSize}, b
	}
	for _, m := range k.mems {
		if m.ext && m.extKey == key {
			return m, 0
		}
	}

	// _netmap_mem_private_new.
	if pi.MemSize > 0 {
		left := pi.MemSize
		for i := range params {
			sz := uint64(params[i][0]) * uint64(params[i][1])
			if left < sz {
				return nil, unix.ENOMEM
			}
			left -= sz
		}
		if left > 0 {
			sz := uint64(params[2][1])
			params[2][0] += uint32((left + sz - 1) / sz)
		}
	}
	pools := extCut(uint64(len(kmem))/extPageSize, params)

	id := k.nextID
	k.nextID++
	info := PoolsInfo{MemID: id,
		IfPoolObjTotal: pools[0].total, IfPoolObjSize: params[0][1],
		RingPoolOffset: pools[0].memtotal, RingPoolObjTotal: pools[1].total, RingPoolObjSize: params[1][1],
		BufPoolOffset: pools[0].memtotal + pools[1].memtotal, BufPoolObjTotal: pools[2].total, BufPoolObjSize: params[2][1],
	}
	info.MemSize = pools[0].memtotal + pools[1].memtotal + pools[2].memtotal
	if r := info.MemSize % extPageSize; r != 0 {
		info.MemSize += extPageSize - r
	}
	m := &fakeMem{info: info, ext: true, extKey: key, kmem: kmem, memfd: -1}

	// netmap_mem_init_bitmaps, run by the finalize at REGISTER.
	for _, p := range pools {
		if p.total == 0 || (p.total == 1 && p.lastBad) {
			m.finalErr = unix.ENOMEM
		}
	}
	valid := info
	if pools[2].lastBad {
		valid.BufPoolObjTotal--
	}
	valid.MemSize = min(info.MemSize, uint64(len(kmem)))
	if m.finalErr == 0 {
		region, err := netmap.NewRegion(kmem, netmap.PoolsInfo(valid))
		if err != nil {
			m.finalErr = unix.ENOMEM // fewer than 2 buffers, or none to hand out
		} else {
			m.region = region
		}
	}
	m.ifUsed = make([]bool, info.IfPoolObjTotal)
	m.ringUsed = make([]bool, info.RingPoolObjTotal)
	for i, used := range [][]bool{m.ifUsed, m.ringUsed} {
		if pools[i].lastBad {
			used[len(used)-1] = true
		}
	}
	k.mems[id] = m
	return m, 0
}

// block is the block of user memory holding a (FreeBSD's VM object).
func (k *fakeNetmap) block(a uint64) *userMem {
	for i, u := range k.user {
		if uint64(u.base) <= a && a < uint64(u.base)+uint64(len(u.b)) {
			return &k.user[i]
		}
	}
	return nil
}

// activeFds is na->active_fds: the descriptors registered on port.
func (k *fakeNetmap) activeFds(port *fakePort) int {
	n := 0
	for _, p := range k.fds {
		if p.port == port {
			n++
		}
	}
	return n
}

// switchMem gives port allocator m, keeping the rings it had in the old
// one for when it comes back.
func (k *fakeNetmap) switchMem(port *fakePort, m *fakeMem) {
	if port.stash == nil {
		port.stash = map[*fakeMem][2][]fakeRing{}
	}
	port.stash[port.mem] = port.rings
	if port.memPrev == nil {
		port.memPrev = port.mem
	}
	port.mem = m
	if r, ok := port.stash[m]; ok {
		port.rings = r
	} else {
		port.rings = [2][]fakeRing{make([]fakeRing, len(port.krings[tTX])), make([]fakeRing, len(port.krings[tRX]))}
	}
	delete(port.stash, m)
	port.bufSize = uint64(m.info.BufPoolObjSize)
}

// restoreMem is netmap_mem_restore: once nobody has port open, its own
// allocator comes back.
func (k *fakeNetmap) restoreMem(port *fakePort) {
	if port == nil || port.memPrev == nil || k.activeFds(port) > 0 {
		return
	}
	prev := port.memPrev
	port.memPrev = nil
	k.switchMem(port, prev)
	port.memPrev = nil
}

// dropUnusedMems deletes the EXTMEM allocators no port holds any more.
func (k *fakeNetmap) dropUnusedMems() {
	for id, m := range k.mems {
		if !m.ext {
			continue
		}
		used := false
		for _, port := range k.ports {
			used = used || port.mem == m
		}
		if used {
			continue
		}
		delete(k.mems, id)
		for _, port := range k.ports {
			delete(port.stash, m)
		}
	}
}
