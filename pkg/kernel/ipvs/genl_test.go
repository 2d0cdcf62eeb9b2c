//go:build linux

package ipvs

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// TestGenlFamily asks the running kernel's generic netlink controller: its own family resolves
// to its fixed id, a family nobody registered is ENOENT.
func TestGenlFamily(t *testing.T) {
	if id, err := genlFamily("nlctrl"); err != nil || id != genlIDCtrl {
		t.Errorf("nlctrl: id %d, %v; want %d", id, err, genlIDCtrl)
	}
	if _, err := genlFamily("NO_SUCH_FAMILY"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("unregistered family: %v, want ENOENT", err)
	}
}

// TestNewNetlinkWithoutIPVS: on a kernel without IPVS (this machine's; the lab kernel has it)
// NewNetlink says so with ErrNotAvailable instead of handing out a socket that talks to nothing.
func TestNewNetlinkWithoutIPVS(t *testing.T) {
	if _, err := os.Stat(procIPVS); err == nil {
		t.Skip("this kernel has IPVS")
	}
	if id, err := genlFamily(ipvsFamilyName); err == nil {
		t.Skipf("IPVS family registered (id %d) without %s", id, procIPVS)
	}
	n, err := NewNetlink()
	if !errors.Is(err, ErrNotAvailable) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("NewNetlink: %v, want ErrNotAvailable", err)
	}
}
