// Package daemon is what `ptbhyve serve` runs: it gives every configured VM
// a ptnet device over QEMU's ivshmem-doorbell (a device memory and an
// ivshmem server socket each), one host sync loop serving them all, and
// attaches and detaches netmap ports to the devices on request. Attaching
// is link up and detaching link down; neither needs the VM to restart.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/ptbhyve/ptbhyve/bhyve"
	"github.com/ptbhyve/ptbhyve/bhyve/vmm"
	"github.com/ptbhyve/ptbhyve/internal/config"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/ivshmem"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/backend"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"github.com/ptbhyve/ptbhyve/shmdev"
)

// Errors the control API maps to HTTP statuses.
var (
	ErrNoVM     = errors.New("no such VM")
	ErrConflict = errors.New("conflict")
)

// Daemon owns the devices of the configured VMs.
type Daemon struct {
	cfg  *config.Config
	opts Options
	file string
	log  *slog.Logger
	loop *ptnetmap.Loop

	mu       sync.Mutex // serialises attach, detach and shutdown
	vms      map[string]*vm
	order    []string
	memories map[string]*memory
	closed   bool
}

// memory is one device memory: the BAR of the VMs that share it.
type memory struct {
	name   string
	layout shmdev.Layout
	mem    *shm.Mem
	// users of the region: the VMs whose ports live in it. A port of one
	// VM owns it alone; the two ends of one pipe share it.
	users map[string]string // VM -> port name
}

type vm struct {
	cfg config.VM
	// QEMU VMs (vmm = "qemu"):
	mem    *memory
	index  int
	dev    *shmdev.Device
	server *ivshmem.Server
	qemu   bool // a QEMU is connected
	// bhyve VMs (vmm = "bhyve"):
	bhyve *bhyveVM
}

// Options adjust the daemon.
type Options struct {
	// OpenMachine reaches a bhyve VM (vmm.Open if nil; a vmm.Fake in
	// tests).
	OpenMachine func(name string) (vmm.Machine, error)
}

// New builds every VM's device memory, device and ivshmem socket, and
// attaches the ports the configuration names. file is the configuration's
// path, for messages.
func New(cfg *config.Config, file string, log *slog.Logger, opts Options) (d *Daemon, err error) {
	d = &Daemon{cfg: cfg, opts: opts, file: file, log: log, vms: map[string]*vm{}, memories: map[string]*memory{}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Daemon.RunDir, 0o700); err != nil {
		return d, fmt.Errorf("run directory: %w", err)
	}
	d.loop, err = ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: cfg.Daemon.Spin, SafetyPoll: cfg.Daemon.SafetyPoll, CPU: cfg.Daemon.CPU})
	if err != nil {
		return d, err
	}
	d.loop.Start()
	for _, v := range cfg.VMs {
		add := d.addVM
		if v.VMM == config.VMMBhyve {
			add = d.addBhyveVM
		}
		if err := add(v); err != nil {
			return d, fmt.Errorf("vm %s: %w", v.Name, err)
		}
	}
	for _, v := range cfg.VMs {
		if v.Port == "" || v.VMM == config.VMMBhyve {
			continue
		}
		if _, err := d.Attach(v.Name, v.Port); err != nil {
			return d, fmt.Errorf("%s:%d: vm.%s.port: %w", file, v.Line, v.Name, err)
		}
	}
	return d, nil
}

func (d *Daemon) addVM(c config.VM) error {
	m := d.memories[c.Memory]
	if m == nil {
		members := d.cfg.Members(c.Memory)
		l, err := shmdev.LayoutFor(shmdev.Geometry{Devices: len(members), Rings: c.Rings, Slots: c.Slots, BufSize: c.BufSize})
		if err != nil {
			return err
		}
		sm, err := shm.New("ptbhyve-"+c.Memory, int(l.Size))
		if err != nil {
			return err
		}
		m = &memory{name: c.Memory, layout: l, mem: sm, users: map[string]string{}}
		d.memories[c.Memory] = m
		if err := shmdev.InitMemory(sm.Bytes(), l); err != nil {
			return err
		}
	}
	index := 0
	for i, o := range d.cfg.Members(c.Memory) {
		if o.Name == c.Name {
			index = i
		}
	}
	v := &vm{cfg: c, mem: m, index: index}
	server, err := ivshmem.Listen(d.SocketPath(c.Name), m.mem.Fd(), shmdev.Vectors(c.Rings))
	if err != nil {
		return err
	}
	v.server = server
	server.FixedID = int64(index + 1)
	var mac [6]byte
	copy(mac[:], c.MAC)
	v.dev, err = shmdev.New(shmdev.Config{Name: c.Name, Mem: m.mem.Bytes(), Layout: m.layout, Index: index,
		MAC: mac, Kicks: server.Self().Vectors, Loop: d.loop})
	if err != nil {
		server.Close()
		return err
	}
	server.Connected = func(p *ivshmem.Peer) {
		v.dev.SetInterrupts(p.Vectors)
		d.setQEMU(v, true)
		d.log.Info("QEMU connected", "vm", c.Name, "peer", p.ID)
	}
	server.Disconnected = func(*ivshmem.Peer) {
		v.dev.SetInterrupts(nil)
		d.setQEMU(v, false)
		d.log.Info("QEMU disconnected", "vm", c.Name)
	}
	server.Refused = func(err error) { d.log.Warn("refused a QEMU", "vm", c.Name, "err", err) }
	go server.Serve()
	d.vms[c.Name] = v
	d.order = append(d.order, c.Name)
	d.log.Info("device ready", "vm", c.Name, "socket", server.Path(), "memory", c.Memory, "bytes", m.layout.Size)
	return nil
}

func (d *Daemon) setQEMU(v *vm, on bool) {
	d.mu.Lock()
	v.qemu = on
	d.mu.Unlock()
}

// SocketPath is the ivshmem socket of VM name, what its QEMU connects to.
func (d *Daemon) SocketPath(name string) string {
	return filepath.Join(d.cfg.Daemon.RunDir, name+".ivshmem")
}

func (d *Daemon) lookup(name string) (*vm, error) {
	v := d.vms[name]
	if v == nil {
		known := strings.Join(d.order, ", ")
		if known == "" {
			known = "none"
		}
		return nil, fmt.Errorf("%w: no VM named %q in %s (configured: %s); add a [vm.%s] table and restart the daemon", ErrNoVM, name, d.file, known, name)
	}
	return v, nil
}

// Attach opens port in VM name's memory and brings its link up.
func (d *Daemon) Attach(name, port string) (VMInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return VMInfo{}, err
	}
	if v.bhyve != nil {
		if _, err := netmap.ParseName(port); err != nil {
			return VMInfo{}, err
		}
		if err := v.bhyve.dev.SetPort(port); err != nil {
			return VMInfo{}, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		d.log.Info("attached", "vm", name, "port", port, "vmm", "bhyve")
		return d.infoLocked(v), nil
	}
	if p := v.dev.Port(); p != nil {
		return VMInfo{}, fmt.Errorf("%w: vm %s already has port %s attached; detach it first", ErrConflict, name, p.Name())
	}
	n, err := netmap.ParseName(port)
	if err != nil {
		return VMInfo{}, err
	}
	if err := d.claimRegion(v, n); err != nil {
		return VMInfo{}, err
	}
	c := v.cfg
	p, err := backend.Open(port, backend.Options{Rings: c.Rings, Slots: c.Slots, BufSize: c.BufSize, Mem: v.dev.Region()})
	if err != nil {
		delete(v.mem.users, name)
		if errors.Is(err, shm.ErrTooSmall) {
			hint := fmt.Sprintf("vm %s's device holds at most %d rings of %d slots per direction: name fewer rings (xdp:IF-0) or raise rings/slots in %s", name, c.Rings, c.Slots, d.file)
			if n.Family == netmap.FamilyPipe {
				hint = fmt.Sprintf("a zero-copy pipe joins two VMs sharing a memory: give both memory = %q in %s", v.mem.name, d.file)
			}
			err = fmt.Errorf("%w; %s", err, hint)
		}
		return VMInfo{}, fmt.Errorf("vm %s: %w", name, err)
	}
	if err := v.dev.Attach(p); err != nil {
		p.Close()
		delete(v.mem.users, name)
		if n.Family == netmap.FamilyPipe {
			err = fmt.Errorf("%w (a zero-copy pipe joins two VMs that share a memory: give both memory = %q)", err, v.mem.name)
		}
		return VMInfo{}, err
	}
	d.log.Info("attached", "vm", name, "port", n.String())
	return d.infoLocked(v), nil
}

// claimRegion records v's port as a user of its memory's region: one port
// alone, or the two ends of one pipe, since both build in the same bytes.
func (d *Daemon) claimRegion(v *vm, n netmap.Name) error {
	for other, port := range v.mem.users {
		if other == v.cfg.Name {
			continue
		}
		on, _ := netmap.ParseName(port)
		samePipe := n.Family == netmap.FamilyPipe && on.Family == netmap.FamilyPipe &&
			on.Port == n.Port && on.PipeID == n.PipeID && on.PipeRole != n.PipeRole
		if !samePipe {
			return fmt.Errorf("%w: memory %s is in use by vm %s's port %s; VMs sharing a memory can only be joined by the two ends of one pipe (e.g. pipe:%s{0 and pipe:%s}0)",
				ErrConflict, v.mem.name, other, port, v.mem.name, v.mem.name)
		}
	}
	v.mem.users[v.cfg.Name] = n.String()
	return nil
}

// Detach takes VM name's link down and closes its port.
func (d *Daemon) Detach(name string) (VMInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return VMInfo{}, err
	}
	if v.bhyve != nil {
		if port, _ := v.bhyve.dev.Port(); port == "" {
			return VMInfo{}, fmt.Errorf("%w: vm %s has no port attached", ErrConflict, name)
		}
		if err := v.bhyve.dev.SetPort(""); err != nil {
			return VMInfo{}, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		d.log.Info("detached", "vm", name, "vmm", "bhyve")
		return d.infoLocked(v), nil
	}
	p := v.dev.Detach()
	if p == nil {
		return VMInfo{}, fmt.Errorf("%w: vm %s has no port attached", ErrConflict, name)
	}
	delete(v.mem.users, name)
	if err := p.Close(); err != nil {
		d.log.Warn("closing port", "vm", name, "port", p.Name(), "err", err)
	}
	d.log.Info("detached", "vm", name, "port", p.Name())
	return d.infoLocked(v), nil
}

// VMInfo is what `ptbhyve list` shows of a VM.
type VMInfo struct {
	Name string `json:"name"`
	VMM  string `json:"vmm"`
	Port string `json:"port,omitempty"`
	// Link is up while the port serves the guest: for QEMU from attach to
	// detach, for bhyve while a running guest's device uses it.
	Link bool `json:"link"`
	// Connected: the VM's QEMU or bhyve is connected to the daemon.
	Connected bool   `json:"connected"`
	Socket    string `json:"socket"`
	Memory    string `json:"memory,omitempty"`
	Bytes     uint64 `json:"memory_bytes,omitempty"`
	MAC       string `json:"mac"`
	Rings     int    `json:"rings"`
	Slots     uint32 `json:"slots"`
	Vectors   int    `json:"vectors"`
}

func (d *Daemon) infoLocked(v *vm) VMInfo {
	if v.bhyve != nil {
		port, up := v.bhyve.dev.Port()
		return VMInfo{Name: v.cfg.Name, VMM: config.VMMBhyve, Port: port, Link: up, Connected: v.bhyve.connected,
			Socket: v.bhyve.server.Path(), MAC: v.cfg.MAC.String(), Rings: v.cfg.Rings, Slots: v.cfg.Slots, Vectors: 2 * v.cfg.Rings}
	}
	i := VMInfo{Name: v.cfg.Name, VMM: config.VMMQEMU, Connected: v.qemu, Socket: v.server.Path(), Memory: v.mem.name, Bytes: v.mem.layout.Size,
		MAC: v.cfg.MAC.String(), Rings: v.cfg.Rings, Slots: v.cfg.Slots, Vectors: shmdev.Vectors(v.cfg.Rings)}
	if p := v.dev.Port(); p != nil {
		i.Port, i.Link = v.mem.users[v.cfg.Name], true
	}
	return i
}

// List describes every VM, in configuration order.
func (d *Daemon) List() []VMInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]VMInfo, 0, len(d.order))
	for _, n := range d.order {
		out = append(out, d.infoLocked(d.vms[n]))
	}
	return out
}

// Info describes one VM.
func (d *Daemon) Info(name string) (VMInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return VMInfo{}, err
	}
	return d.infoLocked(v), nil
}

// Stats are a VM's counters: the device's, and the attached port's own
// (bytes, drops) where its backend keeps them.
type Stats struct {
	VM string `json:"vm"`
	shmdev.Stats
	Backend any `json:"backend,omitempty"`
	// Path is how a bhyve VM's port reaches its memory, while a guest
	// runs: zero copy or copy, and which sync loop.
	Path *bhyve.Path `json:"path,omitempty"`
}

// backendStats is implemented by ports that count what the ring counters
// cannot see: bytes, and frames dropped outside the rings (xdp, switch).
type backendStats interface{ BackendStats() any }

// Stats returns VM name's counters.
func (d *Daemon) Stats(name string) (Stats, error) {
	d.mu.Lock()
	v, err := d.lookup(name)
	if err == nil && v.bhyve != nil {
		d.mu.Unlock()
		port, up := v.bhyve.dev.Port()
		st := Stats{VM: name}
		st.Link, st.Rings = up, v.bhyve.dev.Stats()
		if up {
			st.Port = port
			p := v.bhyve.dev.Path()
			st.Path = &p
		}
		return st, nil
	}
	var port string
	var backend any
	if err == nil {
		port = v.mem.users[name]
		if b, ok := v.dev.Port().(backendStats); ok {
			backend = b.BackendStats()
		}
	}
	d.mu.Unlock()
	if err != nil {
		return Stats{}, err
	}
	s := v.dev.Stats()
	if s.Link {
		s.Port = port // the name as the operator wrote it, canonicalised
	}
	sort.Slice(s.Rings, func(i, j int) bool {
		if s.Rings[i].Dir != s.Rings[j].Dir {
			return s.Rings[i].Dir > s.Rings[j].Dir // tx before rx
		}
		return s.Rings[i].Ring < s.Rings[j].Ring
	})
	return Stats{VM: name, Stats: s, Backend: backend}, nil
}

// QEMUArgs are the flags that give VM name its device. Interrupt mode
// (guestdrv over vfio-pci) also needs a q35 machine with an emulated
// IOMMU, and the guest kernel needs intel_iommu=on.
func (d *Daemon) QEMUArgs(name string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	if v.bhyve != nil {
		return nil, fmt.Errorf("%w: vm %s is a bhyve VM (vmm = \"bhyve\"): use 'ptbhyve bhyve-args %s'", ErrConflict, name, name)
	}
	return QEMUArgs(name, v.server.Path(), shmdev.Vectors(v.cfg.Rings)), nil
}

// QEMUArgs are the QEMU flags for a device whose socket is path.
func QEMUArgs(name, path string, vectors int) []string {
	id := "ptbhyve-" + name
	return []string{
		"-machine", "q35", "-device", "intel-iommu,intremap=on",
		"-chardev", "socket,path=" + path + ",id=" + id,
		"-device", fmt.Sprintf("ivshmem-doorbell,chardev=%s,vectors=%d", id, vectors),
	}
}

// Close detaches every port, hangs up on the VMs, removes the sockets and
// stops the loop.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	vms := d.vms
	d.mu.Unlock()
	var errs []error
	for _, n := range d.order {
		v := vms[n]
		if v.bhyve != nil {
			errs = append(errs, v.bhyve.server.Close())
			v.bhyve.dev.Close()
			continue
		}
		if p := v.dev.Close(); p != nil {
			errs = append(errs, p.Close())
		}
		errs = append(errs, v.server.Close())
	}
	for _, m := range d.memories {
		errs = append(errs, m.mem.Close())
	}
	if d.loop != nil {
		errs = append(errs, d.loop.Stop())
	}
	return errors.Join(errs...)
}
