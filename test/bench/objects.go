// Package bench is the IPVS benchmark against upstream kube-proxy on the lab's real kernel
// (hack/bench.sh; make bench / make bench-short). This file is the object model shared by the
// host side (benchctl populate: Services and EndpointSlices into the apiserver) and the guest side
// (bench_test.go: what the kernel must hold once a kube-proxy has programmed them).
package bench

import (
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	Namespace  = "bench"
	Endpoints  = 10   // E: endpoints per Service
	Port       = 80   // Service port (TCP)
	TargetPort = 8080 // endpoints' port
	NodePort0  = 30000
	// ChangeService is the Service whose EndpointSlice the change-latency phase edits: odd, so
	// ClusterIP only (one virtual server changes).
	ChangeService = 1
	// NodePortRange must be given to the apiserver (half of 10000 Services have a NodePort).
	NodePortRange = "30000-39999"
	// NodeIP is the bench node's address (framework.NodeIP(1)): the only NodePort address.
	NodeIP = "172.30.0.11"
)

// HasNodePort: even Services are type NodePort.
func HasNodePort(i int) bool { return i%2 == 0 }

// ClusterIP of Service i: 10.96.(1+i/250).(1+i%250) (10.96.0.1 is the kubernetes Service).
func ClusterIP(i int) net.IP { return net.IPv4(10, 96, byte(1+i/250), byte(1+i%250)).To4() }

// NodePort of Service i (even i only).
func NodePort(i int) int32 { return int32(NodePort0 + i/2) }

// EndpointIP j of Service i: 10.(100+j).(i/256).(i%256); j == Endpoints is the extra endpoint the
// change phase adds and removes.
func EndpointIP(i, j int) net.IP { return net.IPv4(10, byte(100+j), byte(i/256), byte(i%256)).To4() }

func ServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// Service i as the bench creates it.
func Service(i int) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i), Namespace: Namespace},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: ClusterIP(i).String(),
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: Port,
				TargetPort: intstr.FromInt32(TargetPort)}},
		},
	}
	if HasNodePort(i) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = NodePort(i)
	}
	return s
}

// Slice is Service i's EndpointSlice with n ready endpoints on another node (node2).
func Slice(i, n int) *discoveryv1.EndpointSlice {
	name, proto, port := "http", corev1.ProtocolTCP, int32(TargetPort)
	ready, node := true, "node2"
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName(i) + "-bench", Namespace: Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: ServiceName(i),
			discoveryv1.LabelManagedBy:   "bench.kube-proxy-ipvs",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	for j := 0; j < n; j++ {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{EndpointIP(i, j).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &node,
		})
	}
	return sl
}

// VirtualServer is one expected IPVS virtual server (TCP) and its number of real servers.
type VirtualServer struct {
	IP   net.IP
	Port uint16
	Svc  int
}

// Expected lists the virtual servers S Services need on the bench node: one per ClusterIP, one per
// NodePort on NodeIP; each holds Endpoints real servers.
func Expected(s int) []VirtualServer {
	out := make([]VirtualServer, 0, s+s/2+1)
	for i := 0; i < s; i++ {
		out = append(out, VirtualServer{IP: ClusterIP(i), Port: Port, Svc: i})
		if HasNodePort(i) {
			out = append(out, VirtualServer{IP: net.ParseIP(NodeIP).To4(), Port: uint16(NodePort(i)), Svc: i})
		}
	}
	return out
}

// Result is what the guest measures for one S (written as JSON to $OUT/bench-S.json).
type Result struct {
	S         int
	Endpoints int
	VS, RS    int // expected virtual and real servers
	Floor     Floor
	Impls     []ImplResult
	Settings  map[string]string
}

// Floor: loading the same virtual and real servers into an empty kernel (a fresh netns).
type Floor struct {
	IpvsadmRestoreSec float64 // ipvsadm --restore of the whole set (one process)
	NetlinkBatchSec   float64 // pkg/kernel/ipvs (the proxier's adapter), its fastest writes
	// The same without the kernel trace that times the cold starts (0: there was no trace, and
	// NetlinkBatchSec is untraced too).
	NetlinkBatchUntracedSec float64
}

// ImplResult is one kube-proxy's figures.
type ImplResult struct {
	Name, Binary       string
	ColdStartSec       float64 // see Notes for how it was timed (kernel trace or read-back)
	ColdReadDoneSec    float64 // when the read-back that saw every VS + RS ended (an upper bound)
	ColdPollSec        float64 // the read-back's last fallback interval (reads also happen when the CPU idles)
	ColdReadSec        float64 // the last read-back's duration
	ColdBoundSec       float64 // cold start until every ClusterIP is bound to kube-ipvs0 as well
	KernelVS, KernelRS int     // what the kernel held after the cold start (all virtual servers)
	Changes            int
	ChangeP50Ms        float64
	ChangeP95Ms        float64
	ChangeMaxMs        float64
	UpdateRTTP50Ms     float64   // the EndpointSlice update's own round trip (part of each latency)
	ChangeMs           []float64 // every change's latency, in order (even: add, odd: remove)
	SteadySec          float64
	SteadyCPUSec       float64 // utime+stime of the process and its reaped children over SteadySec
	StraceSec          float64
	Syscalls           map[string]int // strace -c counts over StraceSec
	NetlinkExecPerMin  float64        // (sendmsg+sendto+execve) per minute, whole process tree
	OwnOpsPerMin       float64        // kubeproxy_ipvs_kernel_operations_total per minute (-1: none)
	OwnOps             map[string]float64
	VmHWMKB, VmRSSKB   int
	Syncs              float64 // kubeproxy_sync_proxy_rules_duration_seconds_count at the end
	SyncMeanSec        float64 // its _sum / _count: the mean sync duration over the whole run
	StraceError        string  // why the system calls were not counted (a tool failed: those rows are n/a)
	// `kube-proxy diagnose` (ours' binary) run once on this node after the cold start, with the
	// apiserver's objects: its CPU (process and children) and what it reported, by severity.
	DiagnoseCPUSec   float64
	DiagnoseFindings map[string]int
	Notes            []string
	Failure          string // why the measurement stopped early; the figures after it are 0 (not measured)
}
