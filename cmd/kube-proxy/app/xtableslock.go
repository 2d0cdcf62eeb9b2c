package app

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"k8s.io/klog/v2"
)

// xtablesLockPath is the lock iptables-legacy takes around every change (-w). kubelet and CNI
// plugins take the node's; kube-proxy's DaemonSet mounts the node's file at the same path.
const xtablesLockPath = "/run/xtables.lock"

// xtablesLockFix is what an operator adds to the DaemonSet when the lock is wrong.
const xtablesLockFix = "mount the node's /run/xtables.lock at /run/xtables.lock in the kube-proxy container: " +
	"a hostPath volume {path: /run/xtables.lock, type: FileOrCreate} (kubeadm's DaemonSet and deploy/ have it)"

// xtablesLockEnv is what checkXtablesLock reads of its surroundings; the tests fake it.
type xtablesLockEnv struct {
	// open opens the lock as iptables-legacy does (read-only, created if absent): a read-only
	// mount of an existing file works, a read-only /run without the file or a directory (a
	// hostPath volume without a type, created by kubelet) does not.
	open func(path string) error
	// mountInfo is /proc/self/mountinfo.
	mountInfo func() ([]byte, error)
	// inPod: kubelet sets KUBERNETES_SERVICE_HOST in every container, so a process without it
	// (the lab's kube-proxy on the node itself) has the node's /run and needs no mount.
	inPod bool
}

func hostXtablesLockEnv() xtablesLockEnv {
	return xtablesLockEnv{
		open: func(path string) error {
			f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
			if err == nil {
				err = f.Close()
			}
			return err
		},
		mountInfo: func() ([]byte, error) { return os.ReadFile("/proc/self/mountinfo") },
		inPod:     os.Getenv("KUBERNETES_SERVICE_HOST") != "",
	}
}

// checkXtablesLock logs, once at start, an error naming the lock and the mount to add when the
// lock cannot work: otherwise iptables-legacy fails every call with only its own "can't open
// lock file" in the sync errors, or, worse, takes a lock of the container's own that the node's
// kubelet and CNI plugins never see. It does not stop kube-proxy: the nft backend takes no lock.
// It returns whether it found a problem.
func checkXtablesLock(logger klog.Logger, env xtablesLockEnv) bool {
	if err := env.open(xtablesLockPath); err != nil {
		logger.Error(err, "Cannot open the xtables lock: every iptables-legacy call will fail", "path", xtablesLockPath, "fix", xtablesLockFix)
		return true
	}
	if !env.inPod {
		return false
	}
	info, err := env.mountInfo()
	if err != nil {
		logger.V(2).Info("Cannot read the mount table to check the xtables lock", "err", err)
		return false
	}
	if !isMountPoint(info, xtablesLockPath) {
		logger.Error(nil, "The xtables lock is not mounted from the node: iptables-legacy calls in this container do not wait for the node's (kubelet, CNI plugins), and concurrent changes can fail or be lost",
			"path", xtablesLockPath, "fix", xtablesLockFix)
		return true
	}
	return false
}

// isMountPoint says whether path is a mount point in a /proc/self/mountinfo table, whose fifth
// field is the mount point with space, tab, newline and backslash written as octal escapes.
func isMountPoint(mountInfo []byte, path string) bool {
	for _, line := range bytes.Split(mountInfo, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) >= 5 && unescapeMountInfo(fields[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
