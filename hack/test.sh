#!/usr/bin/env bash
# make test (what CI runs): each step is its own make target, timed. After every step the times so
# far are printed on one line, so a run that is cut short (CI stops at 90 minutes and keeps only
# the tail of the output) still says where its time went.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MAKE=${MAKE:-make}
steps=(install-deps verify unit lab-unit e2e upstream-patches bench-short)
done_=() T0=$SECONDS
for s in "${steps[@]}"; do
  start=$SECONDS
  $MAKE --no-print-directory "$s"; rc=$?
  done_+=("$s=$((SECONDS - start))s")
  echo "test: $s $([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)"); times so far: ${done_[*]} (total $((SECONDS - T0))s)"
  [ "$rc" = 0 ] || exit "$rc"
done
