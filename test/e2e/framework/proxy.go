package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

var execCommand = exec.Command

// Proxy is one kube-proxy process running in a node's network namespace.
type Proxy struct {
	Impl    Impl
	Node    *Node
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	logf    *os.File
	// Container is set when kube-proxy runs from the image (StartImageProxy); cmd is then the
	// runtime's `run`, which forwards signals to it.
	Container *Container
}

// ProxyArgs are the flags every implementation gets: a drop-in kube-proxy must accept them.
// The conntrack/oom flags keep it from writing guest-wide settings it does not need here.
func ProxyArgs(node *Node, kubeconfig string) []string {
	return []string{
		"--proxy-mode=ipvs",
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + node.Name,
		"--cluster-cidr=" + ClusterCIDR,
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--oom-score-adj=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=0.0.0.0:10256",
		"--v=2",
	}
}

func createLog(dir, name string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	return os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// StartProxy starts impl's binary in node's namespace, logging to LOGDIR/NODE-kube-proxy.log.
func StartProxy(impl Impl, node *Node, kubeconfig, logDir string, extra ...string) (*Proxy, error) {
	logf, err := createLog(logDir, node.Name+"-kube-proxy.log")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Impl: impl, Node: node, LogPath: logf.Name(), done: make(chan struct{}), logf: logf}
	p.cmd = exec.Command(impl.Binary, append(ProxyArgs(node, kubeconfig), extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if len(impl.Env) > 0 {
		p.cmd.Env = append(os.Environ(), impl.Env...)
	}
	if err := node.Start(p.cmd); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proxy) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitRunning waits until the proxy has created kube-ipvs0 (its IPVS proxier is up) and still runs.
// If it exits first, the error wraps ErrUnsupported when its log says it cannot do IPVS.
func (p *Proxy) WaitRunning(ctx context.Context) error {
	var err error
	for !p.Exited() {
		if _, err = p.Node.NL.LinkByName("kube-ipvs0"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("no kube-ipvs0 after %v", ctx.Err())
		case <-p.done:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	if p.Exited() {
		log := tail(p.LogPath, 30)
		if m := unsupportedRE.FindString(log); m != "" {
			return fmt.Errorf("%w: %q", ErrUnsupported, m)
		}
		return fmt.Errorf("kube-proxy exited (%v); log tail:\n%s", p.cmd.ProcessState, log)
	}
	if err != nil {
		return fmt.Errorf("%w; log tail:\n%s", err, tail(p.LogPath, 30))
	}
	return nil
}

// Stop sends SIGTERM, then SIGKILL after 5 s.
func (p *Proxy) Stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		if p.Container != nil { // killing runc would leave the container running
			p.Container.kill()
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if p.Container != nil {
		p.Container.remove()
	}
	p.logf.Close()
}
