#!/usr/bin/env bash
# Static checks, run by `make verify` and CI. Each check runs even if an earlier one failed; the
# script fails if any did.
#   gofmt        no unformatted .go file outside vendor/ and _output/
#   go vet       our packages, with and without the `lab` build tag
#   staticcheck  our packages (installed by hack/install-deps.sh; installed here if missing)
#   vendor       go.mod/go.sum tidy and vendor/ exactly what `go mod vendor` makes (needs the
#                module cache or the Go module proxy)
#   imports      hack/check-imports.sh
# Env: STATICCHECK_VERSION (pinned below), SKIP_VENDOR_CHECK=1 to skip the (slow, online) vendor check.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The Makefile's build configuration (static, trimmed paths): vet and staticcheck fill the build
# cache that the tests and binaries then reuse.
export GOFLAGS="-mod=vendor -trimpath" CGO_ENABLED=${CGO_ENABLED:-0}
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}   # staticcheck 2026.2.2, supports Go 1.26

failed=()
step() { # step NAME COMMAND...: runs COMMAND, reports its time, records a failure
  local name=$1 start=$SECONDS; shift
  echo "verify: $name"
  if "$@"; then echo "verify: $name ok ($((SECONDS - start))s)"
  else echo "verify: $name FAILED ($((SECONDS - start))s)"; failed+=("$name"); fi
}

check_gofmt() {
  local files
  files=$(find . -name '*.go' -not -path './vendor/*' -not -path './_output/*' -not -path './.git/*' -print0 |
    xargs -0 gofmt -l) || return 1
  [ -z "$files" ] && return 0
  echo "gofmt -l lists (run gofmt -w on them):"; sed 's/^/  /' <<<"$files"; return 1
}

check_vet() {
  go vet ./... && go vet -tags lab ./...
}

check_staticcheck() {
  local sc gobin
  gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
  sc=$(command -v staticcheck || true)
  [ -n "$sc" ] || sc=$gobin/staticcheck
  if [ ! -x "$sc" ]; then
    echo "staticcheck not found: go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
    (cd / && GOFLAGS= GOWORK=off go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION") || return 1
    sc=$gobin/staticcheck
  fi
  "$sc" -version
  "$sc" ./... && "$sc" -tags lab ./...
}

check_vendor() {
  local tmp rc=0
  tmp=$(mktemp -d)
  # Never touch the work tree: tidy reports a diff, vendor writes to a temp dir.
  GOFLAGS= go mod tidy -diff || { echo "go.mod/go.sum are not tidy (see the diff above): run go mod tidy"; rc=1; }
  if GOFLAGS= go mod vendor -o "$tmp/vendor"; then
    diff -r -q vendor "$tmp/vendor" || { echo "vendor/ is stale: run go mod vendor"; rc=1; }
  else
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}

step gofmt check_gofmt
step "go vet" check_vet
step staticcheck check_staticcheck
if [ -n "${SKIP_VENDOR_CHECK:-}" ]; then echo "verify: vendor check skipped (SKIP_VENDOR_CHECK)"
else step vendor check_vendor; fi
step imports hack/check-imports.sh

if [ ${#failed[@]} -gt 0 ]; then
  echo "verify: FAILED: ${failed[*]}"; exit 1
fi
echo "verify: all checks passed"
