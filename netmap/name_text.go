package netmap

// MarshalText makes Family read as its name in JSON output for scripts.
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// MarshalText makes PipeRole read as its name in JSON output for scripts.
func (p PipeRole) MarshalText() ([]byte, error) { return []byte(p.String()), nil }
