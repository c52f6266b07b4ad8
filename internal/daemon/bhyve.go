package daemon

import (
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/bhyve"
	"github.com/ptbhyve/ptbhyve/bhyve/ptbp"
	"github.com/ptbhyve/ptbhyve/bhyve/vmm"
	"github.com/ptbhyve/ptbhyve/internal/config"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// bhyveVM is a VM whose device is bhyve's plugin (vmm = "bhyve"): bhyve
// connects to RUN_DIR/VM.plugin, and the port lives in the devmem segment
// bhyve creates.
type bhyveVM struct {
	dev       *bhyve.Device
	server    *ptbp.Server
	connected bool
}

// openMachine is vmm.Open as a vmm.Machine (no typed nil on error).
func openMachine(name string) (vmm.Machine, error) {
	v, err := vmm.Open(name)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (d *Daemon) addBhyveVM(c config.VM) error {
	if c.Port != "" {
		if _, err := netmap.ParseName(c.Port); err != nil {
			return err
		}
	}
	var mac [6]byte
	copy(mac[:], c.MAC)
	open := d.opts.OpenMachine
	if open == nil {
		open = openMachine
	}
	dev, err := bhyve.New(bhyve.Config{VM: c.Name, Rings: c.Rings, Slots: c.Slots, BufSize: c.BufSize, MAC: mac,
		Port: c.Port, Open: open, Datapath: c.Datapath, Sync: c.Sync, Loop: d.loop,
		Kernel: ptnetmap.KernelConfig{SleepUS: uint32(d.cfg.Daemon.KloopSleep / time.Microsecond)}})
	if err != nil {
		return err
	}
	server, err := ptbp.Listen(d.pluginPath(c.Name))
	if err != nil {
		dev.Close()
		return err
	}
	b := &bhyveVM{dev: dev, server: server}
	server.Open = func(name string) (*ptbp.Device, error) {
		if name != c.Name {
			return nil, fmt.Errorf("%w: this socket serves vm %s, not %s: give bhyve path=%s", syscall.ENOENT, c.Name, name, d.pluginPath(name))
		}
		if port, _ := dev.Port(); port == "" {
			return nil, fmt.Errorf("%w: no port attached to vm %s: run 'ptbhyve attach %s PORT' before starting the VM", syscall.ENXIO, c.Name, c.Name)
		}
		d.mu.Lock()
		b.connected = true
		d.mu.Unlock()
		d.log.Info("bhyve connected", "vm", c.Name)
		return dev.Plugin(), nil
	}
	server.Closed = func(_ string, err error) {
		dev.Disconnected()
		d.mu.Lock()
		b.connected = false
		d.mu.Unlock()
		d.log.Info("bhyve disconnected", "vm", c.Name, "err", err)
	}
	go server.Serve()
	d.vms[c.Name] = &vm{cfg: c, bhyve: b}
	d.order = append(d.order, c.Name)
	d.log.Info("device ready", "vm", c.Name, "vmm", "bhyve", "socket", server.Path())
	return nil
}

func (d *Daemon) pluginPath(name string) string {
	return filepath.Join(d.cfg.Daemon.RunDir, name+".plugin")
}

// BhyveArgs are the bhyve options that give VM name its two functions at
// PCI slot slot: ptnet on function 0, the memdev on function 1.
func (d *Daemon) BhyveArgs(name string, slot int) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	if v.bhyve == nil {
		return nil, fmt.Errorf("%w: vm %s is a QEMU VM (vmm = %q): use 'ptbhyve qemu-args %s'", ErrConflict, name, v.cfg.VMM, name)
	}
	path := v.bhyve.server.Path()
	return []string{"-s", fmt.Sprintf("%d:0,ptnet,path=%s", slot, path), "-s", fmt.Sprintf("%d:1,ptnetmap-memdev,path=%s", slot, path)}, nil
}
