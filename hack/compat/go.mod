// The compatibility matrix's tools (hack/compat.sh): kube-apiserver and kubeadm's kube-proxy
// config of each Kubernetes minor the fork supports. This go.mod only marks the module root: each
// release has its own module file, v1.MINOR.mod and .sum, used with go build -modfile (one source
// tree, one dependency graph per release). Not vendored; built with -mod=mod.
module github.com/kube-proxy-ipvs/kube-proxy-ipvs/hack/compat

go 1.26.0
