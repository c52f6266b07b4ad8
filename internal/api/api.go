// Package api is the daemon's control API: HTTP with JSON bodies on a UNIX
// socket that only root can open. The routes are few and flat:
//
//	GET  /v1/vms                 every VM (daemon.VMInfo)
//	GET  /v1/vms/{vm}            one VM
//	POST /v1/vms/{vm}/attach     {"port": "xdp:eth0"} brings the link up
//	POST /v1/vms/{vm}/detach     takes it down
//	GET  /v1/vms/{vm}/stats      counters (daemon.Stats)
//	GET  /v1/vms/{vm}/qemu-args  {"args": [...]}
//	GET  /v1/vms/{vm}/bhyve-args?slot=N  {"args": [...]}
//
// Errors come back as {"error": "..."} with 404 for an unknown VM, 409 for
// a state conflict and 400 for anything else the request got wrong.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/daemon"
)

// AttachRequest is the body of an attach.
type AttachRequest struct {
	Port string `json:"port"`
}

// QEMUArgs is the body of a qemu-args or bhyve-args answer.
type QEMUArgs struct {
	Args []string `json:"args"`
}

type errorBody struct {
	Error string `json:"error"`
}

// Handler serves the API for d.
func Handler(d *daemon.Daemon) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/vms", func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.List(), nil)
	})
	mux.HandleFunc("GET /v1/vms/{vm}", func(w http.ResponseWriter, r *http.Request) {
		info, err := d.Info(r.PathValue("vm"))
		reply(w, info, err)
	})
	mux.HandleFunc("POST /v1/vms/{vm}/attach", func(w http.ResponseWriter, r *http.Request) {
		var req AttachRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Port == "" {
			reply(w, nil, fmt.Errorf("attach needs a JSON body {\"port\": \"NAME\"}: %v", err))
			return
		}
		info, err := d.Attach(r.PathValue("vm"), req.Port)
		reply(w, info, err)
	})
	mux.HandleFunc("POST /v1/vms/{vm}/detach", func(w http.ResponseWriter, r *http.Request) {
		info, err := d.Detach(r.PathValue("vm"))
		reply(w, info, err)
	})
	mux.HandleFunc("GET /v1/vms/{vm}/stats", func(w http.ResponseWriter, r *http.Request) {
		st, err := d.Stats(r.PathValue("vm"))
		reply(w, st, err)
	})
	mux.HandleFunc("GET /v1/vms/{vm}/qemu-args", func(w http.ResponseWriter, r *http.Request) {
		args, err := d.QEMUArgs(r.PathValue("vm"))
		reply(w, QEMUArgs{Args: args}, err)
	})
	mux.HandleFunc("GET /v1/vms/{vm}/bhyve-args", func(w http.ResponseWriter, r *http.Request) {
		slot, err := strconv.Atoi(r.URL.Query().Get("slot"))
		if err != nil || slot < 1 || slot > 31 {
			reply(w, nil, fmt.Errorf("bhyve-args needs ?slot=N with N in 1..31"))
			return
		}
		args, err := d.BhyveArgs(r.PathValue("vm"), slot)
		reply(w, QEMUArgs{Args: args}, err)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, daemon.ErrNoVM):
			status = http.StatusNotFound
		case errors.Is(err, daemon.ErrConflict):
			status = http.StatusConflict
		}
		w.WriteHeader(status)
		v = errorBody{Error: err.Error()}
	}
	json.NewEncoder(w).Encode(v)
}

// Listen creates the control socket at path, readable and writable by root
// only, replacing a stale socket left by a daemon that died.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another ptbhyve daemon is running", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Client talks to a daemon.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient is a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, hc: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", socket)
		}},
	}}
}

func (c *Client) do(method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequest(method, "http://ptbhyve"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no ptbhyve daemon at %s: start one with `ptbhyve serve`, or give its socket with --socket", c.Socket)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s: permission denied: the control socket is root's; run as root", c.Socket)
	case err != nil:
		return fmt.Errorf("no answer from the daemon at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &Error{Status: resp.StatusCode, Msg: e.Error}
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Error is an error the daemon answered with.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// List lists the VMs.
func (c *Client) List() ([]daemon.VMInfo, error) {
	var out []daemon.VMInfo
	return out, c.do("GET", "/v1/vms", nil, &out)
}

// Info describes one VM.
func (c *Client) Info(vm string) (daemon.VMInfo, error) {
	var out daemon.VMInfo
	return out, c.do("GET", "/v1/vms/"+vm, nil, &out)
}

// Attach attaches port to vm.
func (c *Client) Attach(vm, port string) (daemon.VMInfo, error) {
	var out daemon.VMInfo
	return out, c.do("POST", "/v1/vms/"+vm+"/attach", AttachRequest{Port: port}, &out)
}

// Detach detaches vm's port.
func (c *Client) Detach(vm string) (daemon.VMInfo, error) {
	var out daemon.VMInfo
	return out, c.do("POST", "/v1/vms/"+vm+"/detach", nil, &out)
}

// Stats returns vm's counters.
func (c *Client) Stats(vm string) (daemon.Stats, error) {
	var out daemon.Stats
	return out, c.do("GET", "/v1/vms/"+vm+"/stats", nil, &out)
}

// BhyveArgs returns the bhyve options for vm at PCI slot slot.
func (c *Client) BhyveArgs(vm string, slot int) ([]string, error) {
	var out QEMUArgs
	return out.Args, c.do("GET", "/v1/vms/"+vm+"/bhyve-args?slot="+strconv.Itoa(slot), nil, &out)
}

// QEMUArgs returns the QEMU flags for vm.
func (c *Client) QEMUArgs(vm string) ([]string, error) {
	var out QEMUArgs
	return out.Args, c.do("GET", "/v1/vms/"+vm+"/qemu-args", nil, &out)
}
