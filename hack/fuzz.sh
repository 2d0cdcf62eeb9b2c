#!/usr/bin/env bash
# make fuzz: runs every Go fuzz target of the repository (func FuzzXxx(*testing.F) in a _test.go
# file outside vendor/ and _output/), one at a time, each for FUZZTIME, and fails if any fails.
# `go test` (make unit) already runs each target's checked-in seeds (testdata/fuzz/FuzzXxx/);
# this explores beyond them. A failing input is written by go test to the package's
# testdata/fuzz/FuzzXxx/: fix the code, and commit the input as a seed.
# Env:
#   FUZZTIME       per target, as go test's -fuzztime (30s; 10m; 100000x for a number of runs)
#   FUZZ           only targets whose "package/FuzzXxx" matches this extended regexp
#   FUZZ_PARALLEL  fuzzing workers per target (go test's default: GOMAXPROCS)
#   FUZZ_LOGS      where each target's output goes (_output/fuzz)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export GOFLAGS="-mod=vendor -trimpath" CGO_ENABLED=${CGO_ENABLED:-0}
FUZZTIME=${FUZZTIME:-30s}
FUZZ=${FUZZ:-}
LOGS=${FUZZ_LOGS:-_output/fuzz}
mkdir -p "$LOGS"

# The test binary's own timeout (10m by default) must outlast the fuzzing.
timeout=60m
if [[ $FUZZTIME =~ ^([0-9]+)(s|m|h)$ ]]; then
  n=${BASH_REMATCH[1]}
  case ${BASH_REMATCH[2]} in s) secs=$n ;; m) secs=$((n * 60)) ;; h) secs=$((n * 3600)) ;; esac
  timeout=$((secs + 600))s
fi
parallel=()
[ -n "${FUZZ_PARALLEL:-}" ] && parallel=(-parallel "$FUZZ_PARALLEL")

# The packages declaring a fuzz target (that FUZZ selects); `go test -list` then names the
# targets each really builds (one in a file of another OS or build tag is not one).
mapfile -t dirs < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(\w+ \*testing\.F\)' . \
  --exclude-dir=vendor --exclude-dir=_output --exclude-dir=.git |
  sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' |
  while read -r d name; do
    if [ -z "$FUZZ" ] || [[ "${d#./}/$name" =~ $FUZZ ]]; then echo "$d"; fi
  done | sort -u)
if [ ${#dirs[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets found${FUZZ:+ matching $FUZZ}"; exit 1
fi

targets=() failed=() flaked=()
for d in "${dirs[@]}"; do
  if ! list=$(go test -list '^Fuzz' "$d" 2>&1); then
    echo "fuzz: listing the targets of $d FAILED:"; sed 's/^/  /' <<<"$list"
    failed+=("$d (does not build)")
    continue
  fi
  for name in $(grep -E '^Fuzz' <<<"$list"); do
    [ -n "$FUZZ" ] && ! [[ "${d#./}/$name" =~ $FUZZ ]] && continue
    targets+=("$d $name")
  done
done
echo "fuzz: ${#targets[@]} targets, ${FUZZTIME} each"

results=()
for t in "${targets[@]}"; do
  read -r d name <<<"$t"
  corpus=$d/testdata/fuzz/$name
  log=$LOGS/$(tr / _ <<<"${d#./}")_$name.log
  before=$(ls "$corpus" 2>/dev/null)
  start=$SECONDS
  echo "fuzz: ${d#./} $name ..."
  go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -timeout "$timeout" "${parallel[@]}" "$d" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))s
  new=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null))
  if [ "$rc" = 0 ]; then
    result="ok"
  elif [ -z "$new" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
    # Go before 1.27 may report the end of -fuzztime itself as a failure (go.dev/issue/75804):
    # no input failed, none was written.
    result="ok (the fuzztime deadline race of go.dev/issue/75804; no failing input)"
    flaked+=("${d#./} $name")
  else
    result="FAILED"
    failed+=("${d#./} $name")
    tail -n 25 "$log" | sed 's/^/  | /'
    [ -n "$new" ] && echo "  failing input: $(sed "s|^|$corpus/|" <<<"$new" | tr '\n' ' ')"
  fi
  echo "fuzz: ${d#./} $name $result ($took; log $log)"
  results+=("$(printf '%-8s %-34s %-26s %s' "${result%% *}" "${d#./}" "$name" "$took")")
done

echo "fuzz: summary"
[ ${#results[@]} -gt 0 ] && printf '  %s\n' "${results[@]}"
[ ${#flaked[@]} -gt 0 ] && echo "fuzz: ${#flaked[@]} ended in the go.dev/issue/75804 deadline race (counted as passed)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"; exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
