package framework

// Helpers for the fault scenarios (test/e2e/fault_*_test.go): killing a kube-proxy outright,
// cutting a node off the apiserver, and a clientset for bulk object creation.

import (
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Kill sends SIGKILL (no chance to finish a sync or clean up) and waits for the process to end.
func (p *Proxy) Kill() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.logf.Close()
}

// Note appends a line to the proxy's log file (marks a test's step between its own lines).
func (p *Proxy) Note(format string, args ...any) {
	fmt.Fprintf(p.logf, "\n===== e2e %s: %s =====\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// OpenIdleStream is OpenStream with TCP keepalive off at both ends (the echoserver's
// "idle-stream" mode): the connection carries nothing unless the test writes. A scenario that
// removes the connection's IPVS virtual server (tampering, a wipe) needs it: kube-proxy sets
// net.ipv4.vs.expire_nodest_conn=1 (as upstream does), so a packet that arrives while the
// connection's real server is gone expires the connection (the next one is reset); idle, it
// resumes if the same real server is back when it next sends.
func OpenIdleStream(ns *NS, addr string, timeout time.Duration) (*StreamConn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout, KeepAlive: -1}).Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return startStream(c, timeout, "idle-stream")
}

// APIServerHostPort is the apiserver address of the kubeconfig (host:port), as the nodes dial it.
func APIServerHostPort(kubeconfig string) (string, error) {
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", err
	}
	for _, cl := range kc.Clusters {
		u, err := url.Parse(cl.Server)
		if err != nil {
			return "", err
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return "", fmt.Errorf("apiserver address %q: %w", u.Host, err)
		}
		return u.Host, nil
	}
	return "", fmt.Errorf("%s: no cluster", kubeconfig)
}

// CutOff drops, in the guest's root namespace (which routes the node network to QEMU's uplink),
// every packet between node and the apiserver address apiAddr (host:port), both ways: the
// node's connections to the apiserver hang as they do when a control plane becomes unreachable.
// The returned function restores the path (idempotent).
func CutOff(node *Node, apiAddr string) (restore func() error, err error) {
	host, port, err := net.SplitHostPort(apiAddr)
	if err != nil {
		return nil, err
	}
	rules := [][]string{
		{"FORWARD", "-s", node.IP.String(), "-d", host, "-p", "tcp", "--dport", port, "-j", "DROP"},
		{"FORWARD", "-s", host, "-d", node.IP.String(), "-p", "tcp", "--sport", port, "-j", "DROP"},
	}
	var added [][]string
	restore = func() error {
		var errs []string
		for len(added) > 0 {
			r := added[len(added)-1]
			if out, err := exec.Command("iptables", append([]string{"-w", "-D"}, r...)...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Sprintf("iptables -D %v: %v: %s", r, err, out))
			}
			added = added[:len(added)-1]
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return nil
	}
	for _, r := range rules {
		if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, r...)...).CombinedOutput(); err != nil {
			_ = restore()
			return nil, fmt.Errorf("iptables -I %v: %v: %s", r, err, out)
		}
		added = append(added, r)
	}
	return restore, nil
}

// NewBulkClient is a clientset for creating many objects at once (no client-side rate limit to
// speak of).
func NewBulkClient(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 2000, 4000
	rc.Timeout = 60 * time.Second
	return kubernetes.NewForConfig(rc)
}
