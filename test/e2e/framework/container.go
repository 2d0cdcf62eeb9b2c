package framework

// kube-proxy from the image, run as kubeadm's DaemonSet runs it on a node: runc (what containerd
// and CRI-O start a pod's containers with) runs the image's root filesystem with the DaemonSet's
// settings: privileged, hostNetwork (here: the node's network namespace), the hostPath mounts
// /run/xtables.lock and /lib/modules, the ConfigMap at /var/lib/kube-proxy and the service
// account token, and kubeadm's command line.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/test/e2e/ociimage"
	"k8s.io/client-go/kubernetes"
)

// ContainerRuntime is the OCI runtime the lab runs images with (Debian's runc).
var ContainerRuntime = "runc"

// containerRunDir holds the runtime's state, bundles and per-container overlays (the guest's
// /run is a tmpfs: an overlay's upper directory cannot be on the guest's own overlay root).
const containerRunDir = "/run/e2e-image"

// allCaps is every capability of the guest's kernel 6.1: what a privileged container gets.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// ociMount is a mount of the OCI runtime spec.
type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// ContainerMounts are the DaemonSet's volumes as kubelet gives them to the runtime, for a
// container whose ConfigMap and token were written to configDir and saDir. xtablesLock and
// modules are the node's files (hostPath).
func ContainerMounts(configDir, saDir, xtablesLock, modules string) []ociMount {
	return []ociMount{
		// What every container gets (containerd's defaults, privileged: /sys read-write).
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "rw"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "rw"}},
		// kubeadm's DaemonSet: volumes kube-proxy (ConfigMap), xtables-lock (hostPath
		// FileOrCreate), lib-modules (hostPath, readOnly), and the projected token.
		{Destination: KubeadmConfigDir, Type: "bind", Source: configDir, Options: []string{"rbind", "ro"}},
		{Destination: "/run/xtables.lock", Type: "bind", Source: xtablesLock, Options: []string{"rbind", "rw"}},
		{Destination: "/lib/modules", Type: "bind", Source: modules, Options: []string{"rbind", "ro"}},
		{Destination: ServiceAccountDir, Type: "bind", Source: saDir, Options: []string{"rbind", "ro"}},
	}
}

// RuntimeSpec is the OCI runtime configuration (config.json) of a privileged hostNetwork
// container running args in rootfs, with env, in the network namespace at netnsPath.
func RuntimeSpec(rootfs, netnsPath string, args, env []string, mounts []ociMount, cgroupsPath string) map[string]any {
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": 0, "gid": 0},
			"args":     args,
			"env":      env,
			"cwd":      "/",
			"capabilities": map[string]any{
				"bounding": allCaps, "effective": allCaps, "permitted": allCaps,
			},
			"noNewPrivileges": false,
		},
		"root":   map[string]any{"path": rootfs, "readonly": false},
		"mounts": mounts,
		"linux": map[string]any{
			// hostNetwork: the node's network namespace, and so (as kubelet does for
			// hostNetwork pods) its UTS namespace, which the lab's nodes share with the guest.
			// Its own PID, IPC, mount and cgroup namespaces, as any pod without hostPID/hostIPC.
			"namespaces": []map[string]string{
				{"type": "network", "path": netnsPath},
				{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}, {"type": "cgroup"},
			},
			"cgroupsPath": cgroupsPath,
			// privileged: no masked or read-only paths, no seccomp profile, the node's devices
			// are not needed by kube-proxy (runc creates the default /dev nodes).
			"rootfsPropagation": "rprivate",
		},
	}
}

// ContainerImage is an image unpacked once (on the host, by test/e2e/imageunpack); each
// container gets its own copy-on-write root filesystem over it (an overlay, as containerd's
// snapshotter makes), so one container's writes (iptables-wrapper relinks iptables to the backend
// it chose) are not another's.
type ContainerImage struct {
	*ociimage.Unpacked
}

// LoadContainerImage reads the image imageunpack unpacked into rootfs.
func LoadContainerImage(rootfs string) (*ContainerImage, error) {
	u, err := ociimage.Load(rootfs)
	if err != nil {
		return nil, err
	}
	return &ContainerImage{Unpacked: u}, nil
}

// Container is one container of the image: its bundle and root filesystem.
type Container struct {
	ID     string
	Bundle string
	Rootfs string // the merged overlay: what the container's / is
}

// newContainer makes id's bundle directory and copy-on-write root filesystem.
func (im *ContainerImage) newContainer(id string) (*Container, error) {
	dir := filepath.Join(containerRunDir, id)
	c := &Container{ID: id, Bundle: dir, Rootfs: filepath.Join(dir, "rootfs")}
	_ = syscall.Unmount(c.Rootfs, syscall.MNT_DETACH)
	_ = os.RemoveAll(dir)
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", im.Rootfs, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount("overlay", c.Rootfs, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("overlay for %s: %w", id, err)
	}
	return c, nil
}

func (c *Container) remove() {
	_ = exec.Command(ContainerRuntime, "delete", "--force", c.ID).Run()
	_ = syscall.Unmount(c.Rootfs, syscall.MNT_DETACH)
	_ = os.RemoveAll(c.Bundle)
}

// StartImageProxy starts kube-proxy from the image on node as kubeadm's DaemonSet would: runc
// runs `/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf
// --hostname-override=NODE` (the DaemonSet's command, which replaces the image's entrypoint)
// with the image's environment and NODE_NAME. Its output goes to LOGDIR/NODE-kube-proxy.log.
// runc runs in the foreground: it forwards Stop's SIGTERM to kube-proxy, as kubelet's stop
// reaches the container's first process.
func StartImageProxy(ctx context.Context, im *ContainerImage, node *Node, cs kubernetes.Interface, labKubeconfig, logDir string) (*Proxy, error) {
	id := "kube-proxy-" + node.Name
	c, err := im.newContainer(id)
	if err != nil {
		return nil, err
	}
	configDir, saDir, err := WriteKubeadmFiles(ctx, cs, labKubeconfig, filepath.Join(c.Bundle, "volumes"))
	if err != nil {
		c.remove()
		return nil, err
	}
	// hostPath type FileOrCreate: kubelet creates the lock file when the node has none.
	lock := "/run/xtables.lock"
	if f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
		f.Close()
	} else {
		c.remove()
		return nil, err
	}
	args := []string{"/usr/local/bin/kube-proxy", "--config=" + KubeadmConfigDir + "/config.conf", "--hostname-override=" + node.Name}
	env := append(append([]string(nil), im.Config.Env...), "NODE_NAME="+node.Name)
	spec := RuntimeSpec(c.Rootfs, node.Path(), args, env, ContainerMounts(configDir, saDir, lock, "/lib/modules"), "/e2e/"+id)
	b, err := json.MarshalIndent(spec, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644)
	}
	if err != nil {
		c.remove()
		return nil, err
	}
	logf, err := createLog(logDir, node.Name+"-kube-proxy.log")
	if err != nil {
		c.remove()
		return nil, err
	}
	p := &Proxy{Impl: Impl{Name: "image", Binary: filepath.Join(c.Rootfs, "usr/local/bin/kube-proxy")}, Node: node,
		LogPath: logf.Name(), done: make(chan struct{}), logf: logf, Container: c}
	p.cmd = exec.Command(ContainerRuntime, "run", "--bundle", c.Bundle, id)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := node.Start(p.cmd); err != nil {
		logf.Close()
		c.remove()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the guest's PID of the container's first process (runc state).
func (c *Container) PID() (int, error) {
	out, err := exec.Command(ContainerRuntime, "state", c.ID).Output()
	if err != nil {
		return 0, fmt.Errorf("%s state %s: %w", ContainerRuntime, c.ID, err)
	}
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, err
	}
	if st.Status != "running" || st.Pid == 0 {
		return 0, fmt.Errorf("container %s is %s", c.ID, st.Status)
	}
	return st.Pid, nil
}

// kill stops the container's processes when its first one ignored SIGTERM.
func (c *Container) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, ContainerRuntime, "kill", "--all", c.ID, "KILL").Run()
}

// sameFile says whether two paths are the same inode (on the same device).
func sameFile(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// ContainerProcess is what the guest's /proc says about the container's kube-proxy.
type ContainerProcess struct {
	PID     int
	Cmdline []string
	CapEff  string // /proc/PID/status CapEff (hex)
	Mounts  map[string]string
}

// InspectProcess reads back from the guest's /proc that the container's first process is
// kube-proxy running from the container's root filesystem (its executable is the rootfs's
// /usr/local/bin/kube-proxy, its root is the rootfs), in node's network namespace, and returns
// its command line, effective capabilities and mounts (mount point -> options).
func (c *Container) InspectProcess(node *Node) (*ContainerProcess, error) {
	pid, err := c.PID()
	if err != nil {
		return nil, err
	}
	proc := fmt.Sprintf("/proc/%d", pid)
	for _, chk := range []struct{ what, a, b string }{
		{"executable", proc + "/exe", filepath.Join(c.Rootfs, "usr/local/bin/kube-proxy")},
		{"root directory", proc + "/root", c.Rootfs},
		{"network namespace", proc + "/ns/net", node.Path()},
	} {
		same, err := sameFile(chk.a, chk.b)
		if err != nil {
			return nil, err
		}
		if !same {
			exe, _ := os.Readlink(chk.a)
			return nil, fmt.Errorf("pid %d: %s %s (%s) is not %s", pid, chk.what, chk.a, exe, chk.b)
		}
	}
	cmd, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return nil, err
	}
	st, err := os.ReadFile(proc + "/status")
	if err != nil {
		return nil, err
	}
	mi, err := os.ReadFile(proc + "/mountinfo")
	if err != nil {
		return nil, err
	}
	out := &ContainerProcess{PID: pid, Cmdline: strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00"), Mounts: map[string]string{}}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			out.CapEff = strings.TrimSpace(v)
		}
	}
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 {
			out.Mounts[f[4]] = f[5]
		}
	}
	return out, nil
}
