package desired

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/proxy"
	netutils "k8s.io/utils/net"
)

// servicePortInfo is upstream's service port plus what the fork's policies read from the
// Service: upstream's ExternalIPs and LoadBalancerVIPs are already filtered (unparseable
// values dropped, ipMode Proxy entries dropped), and the policies need what was written.
type servicePortInfo struct {
	*proxy.BaseServicePortInfo

	name types.NamespacedName
	uid  types.UID
	// families are the Service's IP families, the primary first.
	families []v1.IPFamily
	// bindAnnotation and tkeAnnotation are the raw annotation values, nil when absent.
	bindAnnotation *string
	tkeAnnotation  *string
	// externalIPs are spec.externalIPs as written, every family; none when the
	// AllowServiceExternalIPs feature gate is off.
	externalIPs []string
	// ingress are the status ingress entries that have an IP, every family and ipMode.
	ingress []lbIngress
}

type lbIngress struct {
	ip   string
	mode *v1.LoadBalancerIPMode
}

var _ proxy.ServicePort = &servicePortInfo{}

// NewServicePortInfo builds our service port; the change trackers call it.
func NewServicePortInfo(_ *v1.ServicePort, svc *v1.Service, base *proxy.BaseServicePortInfo) proxy.ServicePort {
	info := &servicePortInfo{
		BaseServicePortInfo: base,
		name:                types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name},
		uid:                 svc.UID,
		families:            append([]v1.IPFamily(nil), svc.Spec.IPFamilies...),
	}
	// As upstream: with the gate off no externalIP is served (nor refused: it is not there).
	if utilfeature.DefaultFeatureGate.Enabled(features.AllowServiceExternalIPs) {
		info.externalIPs = append([]string(nil), svc.Spec.ExternalIPs...)
	}
	if len(info.families) == 0 {
		if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.Is6() {
			info.families = []v1.IPFamily{v1.IPv6Protocol}
		} else {
			info.families = []v1.IPFamily{v1.IPv4Protocol}
		}
	}
	if v, ok := svc.Annotations[AnnotationBindLBIngress]; ok {
		info.bindAnnotation = &v
	}
	if v, ok := svc.Annotations[AnnotationTKEPreventLoopback]; ok {
		info.tkeAnnotation = &v
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue
		}
		e := lbIngress{ip: ing.IP}
		if ing.IPMode != nil {
			m := *ing.IPMode
			e.mode = &m
		}
		info.ingress = append(info.ingress, e)
	}
	return info
}

// portView is what the policies read from any proxy.ServicePort: ours in full; for another
// implementation (upstream's BaseServicePortInfo, as the pure-function tests build) what its
// filtered lists still say.
func portView(family v1.IPFamily, sp proxy.ServicePort) *servicePortInfo {
	if info, ok := sp.(*servicePortInfo); ok {
		return info
	}
	v := &servicePortInfo{families: []v1.IPFamily{family}}
	for _, ip := range sp.ExternalIPs() {
		if a, ok := AddrOf(ip); ok {
			v.externalIPs = append(v.externalIPs, a.String())
		}
	}
	for _, ip := range sp.LoadBalancerVIPs() {
		if a, ok := AddrOf(ip); ok {
			v.ingress = append(v.ingress, lbIngress{ip: a.String()})
		}
	}
	return v
}

// primaryFamily is the family whose proxier reports what every family's proxier finds.
func (s *servicePortInfo) primaryFamily() v1.IPFamily {
	if len(s.families) > 0 {
		return s.families[0]
	}
	return v1.IPv4Protocol
}

// NamedAddresses are the addresses a service port names as externalIPs or LoadBalancer
// ingress IPs, in every family, sorted and without duplicates.
func NamedAddresses(sp proxy.ServicePort) []netip.Addr {
	v := portView("", sp)
	var out []netip.Addr
	add := func(raw string) {
		if ip := netutils.ParseIPSloppy(raw); ip != nil {
			a, _ := netip.AddrFromSlice(ip)
			out = append(out, a.Unmap())
		}
	}
	for _, raw := range v.externalIPs {
		add(raw)
	}
	for _, ing := range v.ingress {
		add(ing.ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// ServiceUID is the UID of the Service of a service port the change trackers built
// (NewServicePortInfo); false for another implementation.
func ServiceUID(sp proxy.ServicePort) (types.UID, bool) {
	if info, ok := sp.(*servicePortInfo); ok {
		return info.uid, true
	}
	return "", false
}
