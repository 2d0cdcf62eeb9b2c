# kube-proxy-ipvs: build, checks and tests. Everything builds from vendor/ (-mod=vendor).
#   make build    bin/kube-proxy, stamped with $(VERSION)
#   make verify   gofmt, go vet, staticcheck, vendor/ up to date, import rules (hack/verify.sh)
#   make unit     unit tests (everything but the package test/e2e, which needs the lab; its framework's lab tests skip; hack/tools's too)
#   make upstream-patches  hack/upstream's patch series applied to upstream's source at the tracked release, their unit tests run (a step of make test, after e2e has built the upstream tools whose compiled packages it reuses; docs/upstream.md)
#   make lab-unit the kernel adapters' tests on the lab kernel (one QEMU guest per package)
#   make fuzz     every Go fuzz target, FUZZTIME (30s) each, one at a time (hack/fuzz.sh; go test runs their seeds)
#   make e2e      end-to-end tests in the QEMU IPVS lab (hack/e2e.sh)
#   make demo     the lab demo (hack/e2e.sh demo)
#   make bench    upstream vs ours on the lab kernel, S in BENCH_SIZES (hack/bench.sh; _output/bench-report.md)
#   make bench-short  the same at S=200 with short windows (part of make test: keeps the harness working)
#   make parity   upstream vs ours on generated cluster states, SEEDS (default 20) x every config variant (hack/parity.sh; PARITY_SEED=N replays)
#   make soak     ours alone under an hour of API churn at S=1000: memory, fds, failed connections, final state (hack/soak.sh; SOAK_DURATION, SOAK_SIZE)
#   make test     install-deps, verify, unit, lab-unit, e2e, bench-short, timed (hack/test.sh; what CI runs)
#   make image    the kube-proxy image for linux/amd64 and arm64 without Docker: OCI layout and docker-archives in _output/images (build/image.sh, build/README.md)
#   make lab-image   the linux/amd64 image alone, in _output/lab-image: what make e2e runs in the lab as a node's kube-proxy

#   make release  image archives, binaries, SHA256SUMS and the CHANGELOG entry of VERSION in _output/release (hack/release.sh; RELEASE_DRY_RUN=1)
#   make compat   ours against kube-apiserver/kubeadm v1.34-v1.37 in the lab (hack/compat.sh, docs/compatibility.md)
#   make image-test  builds the image twice (same digest), checks its contents, runs its binaries (build/test.sh)
#   make clean    remove bin/ (_output/, with the upstream tools hack/build-tools.sh built, stays)

# The fork's version: the upstream release it tracks + build metadata ipvs.N (build/README.md,
# "Versions"); the image tag writes its '+' as '-'. kubernetes_build_info and --version=raw carry
# the commit, the tree state and the build date; SOURCE_DATE_EPOCH (default: the commit's time)
# makes the build date, and so the binary, reproducible.
VERSION ?= v1.37.2+ipvs.1
IMAGE_TAG ?= $(subst +,-,$(VERSION))
GO      ?= go
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
GIT_COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
GIT_TREE_STATE ?= $(shell if [ -z "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then echo clean; else echo dirty; fi)
BUILD_DATE     := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)

# One build configuration for every target and script (static, trimmed paths): go vet, the
# tests, staticcheck, the e2e and bench binaries and bin/kube-proxy then share one build cache,
# so a fresh machine compiles the dependencies once, not once per configuration.
export CGO_ENABLED ?= 0
export GOFLAGS ?= -mod=vendor -trimpath
BIN     := bin/kube-proxy
PKG     := github.com/kube-proxy-ipvs/kube-proxy-ipvs

# kubernetes_build_info and --version=raw read component-base's version; the fork's own version
# (pkg/version.Fork) is what --version prints. -s -w: no symbol table or DWARF, as upstream's
# release binaries (114 MB otherwise; profiles still symbolize from the Go runtime's own tables).
LDFLAGS := -s -w -X $(PKG)/pkg/version.Fork=$(VERSION) \
           -X k8s.io/component-base/version.gitVersion=$(VERSION) \
           -X k8s.io/component-base/version.gitMajor=1 \
           -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(VERSION))) \
           -X k8s.io/component-base/version.gitCommit=$(GIT_COMMIT) \
           -X k8s.io/component-base/version.gitTreeState=$(GIT_TREE_STATE) \
           -X k8s.io/component-base/version.buildDate=$(BUILD_DATE)

.PHONY: all build unit image lab-image image-test release compat lab-unit fuzz verify e2e demo test clean install-deps tools bench bench-short

all: build

build:
	$(GO) build -mod=vendor -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kube-proxy

# IMAGE_OUT, IMAGE_REPO, ARCHS, UPDATE_LOCK=1: see build/image.sh.
image:
	VERSION='$(VERSION)' IMAGE_TAG='$(IMAGE_TAG)' LDFLAGS='$(LDFLAGS)' build/image.sh

# The linux/amd64 image the lab runs as a node's kube-proxy (test/e2e/image_test.go), in its own
# directory so make image's two-arch output stays as it is. Cold (empty .deb cache) about 30 s more
# than a warm one: the Go build cache is shared with make build.
LAB_IMAGE_OUT ?= $(CURDIR)/_output/lab-image
lab-image:
	ARCHS=amd64 IMAGE_OUT='$(LAB_IMAGE_OUT)' VERSION='$(VERSION)' IMAGE_TAG='$(IMAGE_TAG)' LDFLAGS='$(LDFLAGS)' build/image.sh

# RELEASE_DRY_RUN=1: the checks and the notes only (hack/release.sh, docs/maintaining.md).
release:
	VERSION='$(VERSION)' IMAGE_TAG='$(IMAGE_TAG)' LDFLAGS='$(LDFLAGS)' hack/release.sh

# Not part of make test: ours against kube-apiserver and kubeadm v1.34-v1.37 (docs/compatibility.md).
compat: build tools
	hack/compat.sh

image-test:
	VERSION='$(VERSION)' IMAGE_TAG='$(IMAGE_TAG)' LDFLAGS='$(LDFLAGS)' build/test.sh

# The second line: hack/tools's tests (kubeadm's upgrade of deploy/kubeadm-settings, hack/kind's
# configs through kind's loader), which use kubeadm's and kind's Go packages from that
# non-vendored module (the module cache or the Go module proxy, as hack/build-tools.sh).
unit:
	$(GO) test -mod=vendor $$($(GO) list -mod=vendor ./... | grep -v '/test/e2e$$')
	cd hack/tools && GOFLAGS='-mod=mod -trimpath' GOWORK=off $(GO) test ./...

# The patches staged for upstream (hack/upstream/*.patch) against k8s.io/kubernetes at the tracked
# release, from the module cache (or the Go module proxy), with their unit tests.
.PHONY: upstream-patches
upstream-patches:
	hack/upstream/test.sh

verify:
	hack/verify.sh

install-deps:
	hack/install-deps.sh

# Upstream kube-proxy, kube-apiserver and etcd for the lab, from the hack/tools module.
tools:
	hack/build-tools.sh

lab-unit:
	$(GO) test -mod=vendor -tags lab -exec "$(CURDIR)/hack/lab/run-in-guest.sh" ./pkg/kernel/...

fuzz:
	hack/fuzz.sh

e2e: build tools lab-image
	E2E_IMAGE='$(LAB_IMAGE_OUT)/oci' hack/e2e.sh

demo: build tools
	hack/e2e.sh demo

bench: build tools
	hack/bench.sh

# The steady windows of bench-short span at least one 30 s resync of each proxier, so its
# steady-CPU row compares like with like. Its guest is bounded to 30 minutes (it takes about 7):
# with the defaults, made for S=10000, a hung step would hold CI for hours.
bench-short: build tools
	BENCH_SIZES=200 BENCH_STEADY=40 BENCH_STRACE=30 BENCH_CHANGES=6 BENCH_COLD_TIMEOUT=600 BENCH_CHANGE_BUDGET=300 BENCH_TIMEOUT=1800 BENCH_REPORT=_output/bench-short-report.md hack/bench.sh

# Not part of make test: the differential test on more seeds and every variant (docs/parity.md).
.PHONY: parity
parity: build tools
	hack/parity.sh

# Not part of make test: an hour by default (SOAK_DURATION=5m for a smoke run).
.PHONY: soak
soak: build tools
	hack/soak.sh

# CI runs upstream kube-proxy on the Fork* e2e scenarios only (they assert its failure); the
# others pass on both and upstream's slow syncs made them most of CI's 90 minutes.
# `E2E_UPSTREAM=all make test` runs all of them on both.
test: export E2E_UPSTREAM ?= fork
test:
	MAKE='$(MAKE)' hack/test.sh

clean:
	rm -rf bin
