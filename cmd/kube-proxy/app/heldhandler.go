package app

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/kubernetes/pkg/proxy/config"
)

// serviceEventHandler is what the service informers' configs feed: the proxier's Service,
// EndpointSlice and ServiceCIDR handlers.
type serviceEventHandler interface {
	config.ServiceHandler
	config.EndpointSliceHandler
	config.ServiceCIDRHandler
}

// heldHandler stands in for the proxier while it is being made: each event waits until release
// names the proxier, then goes to it in the order it came. The informer behind each config keeps
// listing meanwhile (its handler's queue grows), so the list and the proxier's setup overlap.
type heldHandler struct {
	ready  chan struct{}
	target serviceEventHandler // set once, before ready is closed
}

func newHeldHandler() *heldHandler { return &heldHandler{ready: make(chan struct{})} }

// release sends every held and later event to target. Call it once.
func (h *heldHandler) release(target serviceEventHandler) {
	h.target = target
	close(h.ready)
}

func (h *heldHandler) to() serviceEventHandler {
	<-h.ready
	return h.target
}

func (h *heldHandler) OnServiceAdd(s *v1.Service)                    { h.to().OnServiceAdd(s) }
func (h *heldHandler) OnServiceUpdate(old, s *v1.Service)            { h.to().OnServiceUpdate(old, s) }
func (h *heldHandler) OnServiceDelete(s *v1.Service)                 { h.to().OnServiceDelete(s) }
func (h *heldHandler) OnServiceSynced()                              { h.to().OnServiceSynced() }
func (h *heldHandler) OnServiceCIDRsChanged(cidrs []string)          { h.to().OnServiceCIDRsChanged(cidrs) }
func (h *heldHandler) OnEndpointSlicesSynced()                       { h.to().OnEndpointSlicesSynced() }
func (h *heldHandler) OnEndpointSliceAdd(e *discovery.EndpointSlice) { h.to().OnEndpointSliceAdd(e) }
func (h *heldHandler) OnEndpointSliceUpdate(old, e *discovery.EndpointSlice) {
	h.to().OnEndpointSliceUpdate(old, e)
}
func (h *heldHandler) OnEndpointSliceDelete(e *discovery.EndpointSlice) {
	h.to().OnEndpointSliceDelete(e)
}
