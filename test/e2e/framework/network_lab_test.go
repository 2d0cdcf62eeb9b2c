package framework

import (
	"net"
	"os"
	"testing"
	"time"
)

// TestNetworkLab checks the lab network alone (no apiserver, no kube-proxy): pod to pod across
// nodes over the flannel-style VXLAN, TCP and UDP, source preserved; node and client reachability.
// Runs only inside the QEMU guest: go test -exec "$PWD/hack/lab/run-in-guest.sh" ./test/e2e/framework
// with E2E_ECHOSERVER set to a static echoserver binary.
func TestNetworkLab(t *testing.T) {
	if os.Getenv("LAB_GUEST") == "" || os.Getenv("E2E_ECHOSERVER") == "" {
		t.Skip("runs inside hack/lab/run-in-guest.sh with E2E_ECHOSERVER set")
	}
	start := time.Now()
	nw, err := NewNetwork("t", 3, os.Getenv("E2E_ECHOSERVER"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	t.Logf("network up in %v", time.Since(start))
	a, err := nw.Nodes[0].AddPod("a", 8080)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nw.Nodes[1].AddPod("b", 8080)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pods up in %v", time.Since(start))
	for _, proto := range []string{"tcp", "udp"} {
		r, err := Echo(a.NS, proto, net.JoinHostPort(b.IP.String(), "8080"), 5*time.Second)
		if err != nil {
			t.Fatalf("%s a->b: %v", proto, err)
		}
		if r.Pod != "b" || r.ClientIP() != a.IP.String() {
			t.Fatalf("%s a->b: %+v", proto, r)
		}
		t.Logf("%s a(%s) -> b(%s): %q", proto, a.IP, b.IP, r.Raw)
	}
	// node3 -> pod b (node to remote pod over VXLAN); client -> node2's eth0 is plain L2.
	r, err := Echo(nw.Nodes[2].NS, "tcp", net.JoinHostPort(b.IP.String(), "8080"), 5*time.Second)
	if err != nil {
		t.Fatalf("node3 -> b: %v", err)
	}
	t.Logf("node3 -> b: client=%s", r.Client)
	t.Logf("total %v", time.Since(start))
}
