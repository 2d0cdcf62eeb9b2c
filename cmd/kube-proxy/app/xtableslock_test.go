package app

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"k8s.io/klog/v2/textlogger"
)

// A pod's mount table: the lock mounted from the node (kubelet's bind mount of the hostPath).
const mountedLock = `1545 1437 0:120 / / rw,relatime master:500 - overlay overlay rw,lowerdir=/var/lib/containerd/l1
1560 1545 259:1 /run/xtables.lock /run/xtables.lock rw,nosuid,nodev - tmpfs tmpfs rw,size=401720k,mode=755
1561 1545 259:1 /lib/modules /lib/modules ro,relatime - ext4 /dev/root ro
`

const noLockMount = `1545 1437 0:120 / / rw,relatime master:500 - overlay overlay rw,lowerdir=/var/lib/containerd/l1
1561 1545 259:1 /lib/modules /lib/modules ro,relatime - ext4 /dev/root ro
`

// TestXtablesLockErrors: each way the lock can be wrong gives one error that names the path
// and the DaemonSet mount to add; a right lock, or kube-proxy on the node itself, gives none.
func TestXtablesLockErrors(t *testing.T) {
	opens := func(string) error { return nil }
	openErr := func(err error) func(string) error {
		return func(string) error { return &os.PathError{Op: "open", Path: xtablesLockPath, Err: err} }
	}
	table := func(s string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(s), nil } }
	cases := []struct {
		name string
		env  xtablesLockEnv
		want string // "" for no error
	}{
		{"mounted from the node", xtablesLockEnv{opens, table(mountedLock), true}, ""},
		{"on the node itself", xtablesLockEnv{opens, table(noLockMount), false}, ""},
		{"mount missing", xtablesLockEnv{opens, table(noLockMount), true}, "The xtables lock is not mounted from the node"},
		{"read-only, absent", xtablesLockEnv{openErr(syscall.EROFS), table(mountedLock), true}, "read-only file system"},
		{"a directory", xtablesLockEnv{openErr(syscall.EISDIR), table(mountedLock), true}, "is a directory"},
		{"mount table unreadable", xtablesLockEnv{opens, func() ([]byte, error) { return nil, errors.New("no /proc") }, true}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&buf)))
			found := checkXtablesLock(logger, c.env)
			out := buf.String()
			if c.want == "" {
				if found || strings.Contains("\n"+out, "\nE") {
					t.Errorf("reported a problem: %s", out)
				}
				return
			}
			if !found || !strings.HasPrefix(out, "E") || strings.Count(out, "\n") != 1 {
				t.Fatalf("want one error line, got %q", out)
			}
			for _, s := range []string{c.want, `path="/run/xtables.lock"`, "hostPath volume {path: /run/xtables.lock, type: FileOrCreate}"} {
				if !strings.Contains(out, s) {
					t.Errorf("log %q lacks %q", out, s)
				}
			}
		})
	}
}

// TestXtablesLockOpensAsIptables: the real open fails on a directory, as iptables-legacy's does
// ("can't open lock file ...: Is a directory"), and creates an absent file, as it does.
func TestXtablesLockOpensAsIptables(t *testing.T) {
	open := hostXtablesLockEnv().open
	dir := t.TempDir()
	if err := open(dir); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("opening a directory: %v, want EISDIR", err)
	}
	file := filepath.Join(dir, "xtables.lock")
	if err := open(file); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the lock was not created: %v", err)
	}
}

func TestIsMountPointUnescapes(t *testing.T) {
	info := `36 35 98:0 /mnt1 /mnt\040with\040space rw - ext3 /dev/root rw` + "\n"
	if !isMountPoint([]byte(info), "/mnt with space") || isMountPoint([]byte(info), "/mnt1") {
		t.Error("mount point with escaped spaces not read")
	}
}
