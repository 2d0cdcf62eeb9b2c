package ipvs

import (
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"
)

// healthChecks keeps what the healthCheckNodePort servers need incrementally: upstream
// recomputes it from every Service and every endpoint on every sync, which dominates a
// one-endpoint sync in a large cluster. Only service ports with a healthCheckNodePort matter.
type healthChecks struct {
	ports map[proxy.ServicePortName]uint16
	dirty bool
}

// update records a service port's healthCheckNodePort after a change (0: none or deleted), and
// whether the health servers need a resync: the port set changed, or endpoints of a service
// with a health check did.
func (h *healthChecks) update(name proxy.ServicePortName, hcPort int) {
	_, had := h.ports[name]
	switch {
	case hcPort == 0 && had:
		delete(h.ports, name)
		h.dirty = true
	case hcPort != 0:
		// Endpoint changes of a health-checked service change what its server answers.
		h.ports[name] = uint16(hcPort)
		h.dirty = true
	}
}

// services is healthCheckNodePorts by Service, as ServicePortMap.HealthCheckNodePorts gives it.
func (h *healthChecks) services() map[types.NamespacedName]uint16 {
	out := make(map[types.NamespacedName]uint16, len(h.ports))
	for name, port := range h.ports {
		out[name.NamespacedName] = port
	}
	return out
}

// localReadyEndpoints counts, per Service with a health check, the distinct ready endpoint
// IPs on this node, as EndpointsMap.LocalReadyEndpoints does for every Service.
func (h *healthChecks) localReadyEndpoints(em proxy.EndpointsMap) map[types.NamespacedName]int {
	ips := map[types.NamespacedName]sets.Set[string]{}
	for name := range h.ports {
		for _, ep := range em[name] {
			if !ep.IsReady() || !ep.IsLocal() {
				continue
			}
			if ips[name.NamespacedName] == nil {
				ips[name.NamespacedName] = sets.New[string]()
			}
			ips[name.NamespacedName].Insert(ep.IP())
		}
	}
	out := make(map[types.NamespacedName]int, len(ips))
	for nn, s := range ips {
		out[nn] = s.Len()
	}
	return out
}

// sync hands the servers the current state when something they serve changed.
func (p *Proxier) syncHealthChecks(logger klog.Logger) {
	if !p.health.dirty {
		return
	}
	if err := p.svcHealth.SyncServices(p.health.services()); err != nil {
		logger.Error(err, "Error syncing healthcheck services")
	}
	if err := p.svcHealth.SyncEndpoints(p.health.localReadyEndpoints(p.endpointsMap)); err != nil {
		logger.Error(err, "Error syncing healthcheck endpoints")
	}
	p.health.dirty = false
}
