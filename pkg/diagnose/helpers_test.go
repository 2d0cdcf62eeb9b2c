package diagnose

import (
	"github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipset"
	kipvs "github.com/kube-proxy-ipvs/kube-proxy-ipvs/pkg/kernel/ipvs"
)

type (
	kipvsVS  = kipvs.VirtualServer
	kipvsKey = kipvs.Key
)

func ipsetContent(name string, entries ...string) ipset.Content {
	return ipset.Content{Set: ipset.Set{Name: name, Type: "hash:ip,port"}, Entries: entries}
}
