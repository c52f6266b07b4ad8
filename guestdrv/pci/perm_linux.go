package pci

import (
	"errors"
	"io/fs"
)

// rootHint is the fix to append to an error: the sysfs resource, config
// and bind files and the VFIO devices all belong to root.
func rootHint(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return ": not root: run the driver as root"
	}
	return ""
}
