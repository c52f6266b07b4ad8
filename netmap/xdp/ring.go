//go:build linux

package xdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one AF_XDP ring: a power-of-two array shared with the kernel and
// two free-running u32 indexes. One side produces, the other consumes; each
// keeps a cached copy of the other's index and reads the shared one only
// when the cache says it must (libxdp's pattern). Go's atomics are
// sequentially consistent, which covers the kernel's acquire/release
// contract (net/xdp/xsk_queue.h).
type ring struct {
	mem        []byte
	prod, cons *uint32
	flags      *uint32
	descs      unsafe.Pointer
	mask       uint32
	size       uint32
	cachedProd uint32
	cachedCons uint32
}

func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, n, entry uint32) (ring, error) {
	b, err := unix.Mmap(fd, pgoff, int(off.Desc)+int(n*entry), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	return ring{
		mem:   b,
		prod:  (*uint32)(unsafe.Pointer(&b[off.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&b[off.Consumer])),
		flags: (*uint32)(unsafe.Pointer(&b[off.Flags])),
		descs: unsafe.Pointer(&b[off.Desc]),
		mask:  n - 1,
		size:  n,
	}, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// needWakeup reports XDP_RING_NEED_WAKEUP: the kernel wants a system call
// to make progress on this ring.
func (r *ring) needWakeup() bool { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// Producer side.

// free is how many entries the producer may write, refreshing the consumer
// index only when the cache is short of want.
func (r *ring) free(want uint32) uint32 {
	f := r.size - (r.cachedProd - r.cachedCons)
	if f >= want {
		return f
	}
	r.cachedCons = atomic.LoadUint32(r.cons)
	return r.size - (r.cachedProd - r.cachedCons)
}

// submit publishes n written entries.
func (r *ring) submit(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.prod, r.cachedProd)
}

// Consumer side.

// avail is how many entries wait to be consumed.
func (r *ring) avail() uint32 {
	n := r.cachedProd - r.cachedCons
	if n == 0 {
		r.cachedProd = atomic.LoadUint32(r.prod)
		n = r.cachedProd - r.cachedCons
	}
	return n
}

// release gives back n consumed entries.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.cons, r.cachedCons)
}

// addr is entry i (an index counted like the ring's own) of a FILL or
// COMPLETION ring.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

// desc is entry i of an RX or TX ring.
func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*16))
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
