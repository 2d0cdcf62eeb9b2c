# Moving a Go module's Kubernetes dependencies to one upstream release (sourced by
# hack/bump-upstream.sh and hack/compat.sh; needs go and jq, and the Go module proxy or a warm
# module cache).
#
# k8s.io/kubernetes is not meant to be imported: its go.mod requires its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging/src/k8s.io/...
# A module that imports it must replace each staging module with its published tag, v0.M.P for
# Kubernetes v1.M.P. Which modules are staging modules is read from the release's own go.mod,
# since the set changes between releases.

# go mod, whatever GOFLAGS the caller exports (-mod=vendor is refused by some go mod commands).
gomod() { GOFLAGS= GOWORK=off go mod "$@"; }

# k8s_check_release V: V is a Kubernetes release tag vMAJOR.MINOR.PATCH (no pre-release).
k8s_check_release() {
  [[ "${1:-}" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || {
    echo "'${1:-}' is not a Kubernetes release (want v1.MINOR.PATCH, e.g. v1.36.3)" >&2; return 1; }
}

# k8s_staging_version V: the staging modules' tag for Kubernetes V (v1.36.3 -> v0.36.3).
k8s_staging_version() { echo "v0.${1#v1.}"; }

# k8s_minor V: the minor number (v1.36.3 -> 36).
k8s_minor() { local m=${1#v1.}; echo "${m%%.*}"; }

# k8s_upstream_gomod V: the path of k8s.io/kubernetes@V's go.mod in the module cache, downloading
# it (and only it) through GOPROXY. Fails with a clear message when the proxy does not have V.
k8s_upstream_gomod() {
  local out
  if ! out=$(cd / && GOFLAGS=-mod=mod GOWORK=off go mod download -json "k8s.io/kubernetes@$1" 2>&1); then
    echo "k8s.io/kubernetes@$1 is not in the Go module proxy ($(go env GOPROXY)):" >&2
    jq -r '.Error // empty' <<<"$out" >&2 2>/dev/null || echo "$out" >&2
    return 1
  fi
  jq -er '.GoMod' <<<"$out" || { echo "go mod download k8s.io/kubernetes@$1 gave no go.mod: $out" >&2; return 1; }
}

# k8s_upstream_src V: the directory of k8s.io/kubernetes@V's source in the module cache
# (downloads the whole module, about 60 MB, when missing).
k8s_upstream_src() {
  local out
  out=$(cd / && GOFLAGS=-mod=mod GOWORK=off go mod download -json "k8s.io/kubernetes@$1") || {
    echo "cannot download k8s.io/kubernetes@$1" >&2; return 1; }
  jq -er '.Dir' <<<"$out"
}

# k8s_group_replaces FILE: go mod edit writes each new replace as its own statement; gather every
# replace into one sorted `replace ( ... )` block after the require blocks, as Kubernetes' own
# go.mod and ours have it, so
# a move's diff shows only the versions that changed.
k8s_group_replaces() {
  local f=$1 tmp
  tmp=$(mktemp)
  awk '
    /^replace [^(]/ { sub(/^replace /, ""); single[++n] = $0; next }
    /^replace \($/ { inblock = 1; next }
    inblock && /^\)$/ { inblock = 0; next }
    inblock { sub(/^[ \t]+/, ""); single[++n] = $0; next }
    {
      body[++m] = $0
      if ($0 ~ /^require \($/) inreq = 1
      else if (inreq && $0 == ")") { inreq = 0; lastreq = m }
      else if ($0 ~ /^require [^(]/) lastreq = m
    }
    END {
      pos = lastreq ? lastreq : m
      for (i = 1; i <= pos; i++) print body[i]
      if (n > 0) {
        print ""; print "replace ("
        cmd = "sort"
        for (i = 1; i <= n; i++) print "\t" single[i] | cmd
        close(cmd)
        print ")"
      }
      # the rest after one blank line, runs of blank lines (left where replaces were) cut to one
      gap = 1
      for (i = pos + 1; i <= m; i++) {
        if (body[i] == "") { gap = 1; continue }
        if (gap) print ""
        print body[i]; gap = 0
      }
    }' "$f" > "$tmp" && mv "$tmp" "$f"
}

# k8s_move_module DIR V [MODFILE]: rewrites DIR's go.mod (or MODFILE, a go.mod-format file used
# with -modfile) so that it builds against Kubernetes V:
#   - k8s.io/kubernetes required at V;
#   - every k8s.io replace dropped, then every staging module of V replaced with its v0.M.P tag;
#   - every staging module required at a real version moved to v0.M.P (v0.0.0 placeholders kept;
#     a staging module V no longer has is dropped and left for tidy to re-add if still needed);
#   - every other k8s.io/, sigs.k8s.io/ and go.etcd.io/ module both files require moved to V's
#     version (klog, utils, kube-openapi, knftables, structured-merge-diff, etcd's api, client
#     and raft, ...): they move in step with Kubernetes, and a downgrade that kept a newer etcd
#     api module than V's etcd server was built for does not compile;
#   - go.etcd.io/etcd/server/v3, when required (hack/tools builds etcd), to the version of V's
#     etcd client;
# then `go mod tidy`. It does not vendor. Returns non-zero on any failure (the caller restores).
k8s_move_module() {
  local dir=$1 v=$2 modfile=${3:-} upmod sv mf=() edit=() p ver upver
  upmod=$(k8s_upstream_gomod "$v") || return 1
  sv=$(k8s_staging_version "$v")
  [ -z "$modfile" ] || mf=(-modfile="$modfile")
  local staging upreqs ours
  staging=$(gomod edit -json "$upmod" | jq -r '.Replace[]? | select(.New.Path | startswith("./staging/")) | .Old.Path') || return 1
  [ -n "$staging" ] || { echo "k8s.io/kubernetes@$v's go.mod replaces no staging module: not a layout this script knows" >&2; return 1; }
  upreqs=$(gomod edit -json "$upmod" | jq -r '.Require[]? | "\(.Path) \(.Version)"') || return 1
  ours=$(cd "$dir" && gomod edit "${mf[@]}" -json) || return 1

  for p in $(jq -r '.Replace[]? | select(.Old.Path | startswith("k8s.io/")) | .Old.Path' <<<"$ours"); do
    edit+=(-dropreplace="$p")
  done
  for p in $staging; do edit+=(-replace="$p=$p@$sv"); done
  edit+=(-require="k8s.io/kubernetes@$v")
  while read -r p ver; do
    [ -n "$p" ] || continue
    if grep -qxF "$p" <<<"$staging"; then
      [ "$ver" = v0.0.0 ] || edit+=(-require="$p@$sv")
    elif [[ "$p" == k8s.io/kubernetes ]]; then
      :
    elif [[ "$p" == k8s.io/* || "$p" == sigs.k8s.io/* || "$p" == go.etcd.io/* ]] && upver=$(awk -v p="$p" '$1 == p {print $2}' <<<"$upreqs") &&
         [ -n "$upver" ] && [ "$upver" != v0.0.0 ]; then
      edit+=(-require="$p@$upver")
    elif [[ "$p" == k8s.io/* ]] && [[ "$ver" == v0.0.0 || "$ver" =~ ^v0\.[0-9]+\.[0-9]+$ ]]; then
      edit+=(-droprequire="$p") # a staging module of the old release that V does not have
    elif [ "$p" = go.etcd.io/etcd/server/v3 ]; then
      ver=$(awk '$1 == "go.etcd.io/etcd/client/v3" {print $2}' <<<"$upreqs")
      [ -z "$ver" ] || edit+=(-require="$p@$ver")
    fi
  done < <(jq -r '.Require[]? | "\(.Path) \(.Version)"' <<<"$ours")

  (cd "$dir" && gomod edit "${mf[@]}" "${edit[@]}") || return 1
  k8s_group_replaces "$dir/${modfile:-go.mod}" || return 1
  (cd "$dir" && gomod tidy "${mf[@]}") || {
    echo "go mod tidy failed in $dir after moving to $v" >&2; return 1; }
}
