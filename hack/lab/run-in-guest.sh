#!/usr/bin/env bash
# usage: hack/lab/run-in-guest.sh PROGRAM [ARGS...]
#    or: go test -exec "$PWD/hack/lab/run-in-guest.sh" ./test/e2e/...   (each test binary boots a guest)
#
# Runs PROGRAM as root inside a throw-away QEMU guest that boots Debian's own kernel (ip_vs, dummy,
# vxlan, br_netfilter ... as modules) with software emulation (TCG: no KVM needed), streams its
# stdout+stderr to our stdout and exits with its exit code; 125 = the guest died or TIMEOUT hit.
# The guest's root is the HOST's "/" over virtio-9p, read-only, under a tmpfs overlay: every host
# binary and path is visible at the same path (build on the host, run in the guest). Guest writes
# vanish at poweroff; exchange results through $OUT (shared read-write, uncached).
#
# Host needs (hack/install-deps.sh): qemu-system-x86 busybox-static kmod, apt lists (apt-get update),
# plus whatever PROGRAM runs (iproute2 ipvsadm iptables ipset conntrack ...).
# Env:
#   LAB_CACHE  cache dir: kernel + initramfs (default ~/.cache/kube-proxy-ipvs-lab)
#   MEM        guest RAM (default 1G)       SMP  vCPUs (default 1: faster than 2 on a 2-core host)
#   TIMEOUT    seconds for the whole boot+run (default 600)
#   BOOT_TIMEOUT seconds for the guest to start PROGRAM before QEMU is killed and the boot retried
#              (default 120; BOOT_ATTEMPTS=3 boots at most)
#   OUT        host folder shared read-write at the same path in the guest (optional)
#   HOSTPORTS  "6443 2379": guest TCP 10.0.2.100:PORT -> host 127.0.0.1:PORT (nothing else reachable)
#   PASSENV    "VAR1 VAR2": host variables exported into PROGRAM's environment; variables named
#              E2E_*, KUBE_PROXY_*, GOTRACEBACK and GODEBUG are always passed.
#   KEEP=1     keep the per-run folder ($LAB_CACHE/run.*; console.log = kernel log)
# Measured (2-core host): first run fetches the kernel (about 11 s); boot to PROGRAM about 5 s;
# boot + poweroff about 9 s.
set -euo pipefail
LAB=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-proxy-ipvs-lab}
MEM=${MEM:-1G}; SMP=${SMP:-1}; TIMEOUT=${TIMEOUT:-600}
[ $# -ge 1 ] || { sed -n '2,4p' "$0" >&2; exit 2; }
mkdir -p "$LAB"; LAB=$(realpath "$LAB"); PROG=$(realpath "$1"); shift
for t in qemu-system-x86_64 busybox modprobe depmod; do
  command -v "$t" >/dev/null || { echo "run-in-guest: $t missing: run hack/install-deps.sh" >&2; exit 125; }
done

# 1. Kernel + modules unpacked into $LAB/kernel (nothing installed into /boot), once, under a lock.
#    The package follows the apt archive (superseded versions leave it): apt-get update on failure.
exec 9>"$LAB/.lock"; flock 9
if ! ls "$LAB"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
  fetch() {
    local pkg; pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$pkg" ] || return 1
    rm -rf "$LAB/kernel" "$LAB"/linux-image-*.deb && mkdir -p "$LAB/kernel" &&
      (cd "$LAB" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2 && dpkg -x "$pkg"_*.deb kernel && rm "$pkg"_*.deb) &&
      depmod -b "$LAB/kernel" "${pkg#linux-image-}"
  }
  echo "run-in-guest: fetching the guest kernel into $LAB/kernel" >&2
  fetch || { apt-get update -qq >&2 && fetch; } || { echo "run-in-guest: cannot fetch the kernel" >&2; exit 125; }
fi
VMLINUZ=$(ls "$LAB"/kernel/boot/vmlinuz-* | head -1); KVER=${VMLINUZ##*/vmlinuz-}

# 2. Tiny initramfs (cached per kernel): static busybox + the modules needed to mount a 9p root, in
#    the order modprobe --show-depends prints (a hand-written order failed). Its /init builds
#    root = overlay(9p host "/" read-only + tmpfs), then switch_roots into stage 2.
INITRD=$LAB/initrd-$KVER.cpio.gz
INIT_VERSION=2   # bump when the /init below changes
if [ "$(cat "$INITRD.version" 2>/dev/null)" != "$INIT_VERSION" ]; then
  d=$(mktemp -d "$LAB/initrd.XXXXXX"); mkdir -p "$d"/{bin,mods,proc,sys,dev,lower,rw,newroot}
  cp "$(command -v busybox)" "$d/bin/busybox"
  for ko in $(modprobe -d "$LAB/kernel" -S "$KVER" --show-depends -a virtio_pci 9pnet_virtio 9p overlay | awk '!s[$2]++{print $2}'); do
    cp "$ko" "$d/mods/"; basename "$ko" >> "$d/mods/order"; done
  cat > "$d/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower
mount -t tmpfs -o size=80% rw /rw && mkdir /rw/u /rw/w
mount -t overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w root /newroot
for a in $(cat /proc/cmdline); do case $a in lab.*=*) k=${a%%=*}; export "${k#lab.}=${a#*=}";; esac; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 run "/newroot$RUN"
ln -sfn "$LABMODS" /newroot/usr/lib/modules      # modprobe (and kube-proxy) find the guest's modules
for f in proc sys dev; do mount --move /$f /newroot/$f; done
exec switch_root /newroot /bin/bash "$RUN/stage2.sh"
INIT
  chmod +x "$d/init"
  (cd "$d" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 > "$INITRD.tmp") && mv "$INITRD.tmp" "$INITRD"
  echo "$INIT_VERSION" > "$INITRD.version"; rm -rf "$d"
fi
flock -u 9

RUN=$(mktemp -d "$LAB/run.XXXXXX")   # per-run folder, shared read-write at the same path in the guest
qpid=
cleanup() { [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 125' INT TERM

# 3. Stage 2, run by the guest as pid 1 from the shared run folder; writes PROGRAM's exit code to $RUN/rc.
passenv=${PASSENV:-}
for v in $(compgen -e); do case $v in E2E_*|KUBE_PROXY_*|GOTRACEBACK|GODEBUG) passenv+=" $v";; esac; done
cat > "$RUN/stage2.sh" <<EOF
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs shm /dev/shm
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mount -t tmpfs run /run; mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Copy-up into the tmpfs: ipset opens /etc/protocols once per entry, and over 9p an open costs about
# 0.5 ms here (ipset restore of 10,000 entries: 13.6 s, 3.8 s with the file local as on a node).
for f in /etc/protocols /etc/services; do [ -f \$f ] && cp \$f /run/.copyup && cp /run/.copyup \$f; done; rm -f /run/.copyup
${OUT:+mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out "$OUT"}
: > "$RUN/.clock"; date -s "@\$(stat -c %.9Y "$RUN/.clock")" >/dev/null   # RTC is only 1s-precise
hostname guest; ip link set lo up
modprobe virtio_net; ip link set eth0 name qemu0 up   # user-net NIC; renamed so eth0 is free for tests
ip addr add 10.0.2.15/24 dev qemu0; ip route add default via 10.0.2.2
stty -F /dev/ttyS1 raw -echo                          # ttyS1 = PROGRAM's output -> host stdout
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LAB_GUEST=1 ${OUT:+OUT=$OUT}
$(for v in $passenv; do printf 'export %s=%q\n' "$v" "${!v-}"; done)
cd $(printf %q "$PWD")                                # same working directory as on the host
: > "$RUN/started"                                   # the host's boot watchdog waits for this
$(printf '%q ' "$PROG" "$@") </dev/null >/dev/ttyS1 2>&1; echo \$? > "$RUN/rc"
busybox poweroff -f
EOF

NET="user,id=n0,restrict=on"   # restrict=on: only the explicit guestfwd rules below reach the host
for p in ${HOSTPORTS:-}; do NET+=",guestfwd=tcp:10.0.2.100:$p-cmd:busybox nc 127.0.0.1 $p"; done
[ -z "${OUT:-}" ] || { mkdir -p "$OUT"; OUT=$(realpath "$OUT"); }
# Flags measured: tcg multi-thread + tb-size=256 (less RSS), -smp 1, multidevs=remap on every 9p share
# (without it /proc/uptime went missing), -no-reboot + panic=-1 so a guest crash ends QEMU at once.
# no_timer_check: on a loaded host the emulated guest's IO-APIC timer check failed ("MP-BIOS bug:
# 8254 timer not connected") and the boot hung; skipping the check is what VM images do.
# Boot watchdog: if PROGRAM has not started after BOOT_TIMEOUT seconds, QEMU is killed and the boot
# retried (BOOT_ATTEMPTS in all); PROGRAM never runs twice.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}; BOOT_ATTEMPTS=${BOOT_ATTEMPTS:-3}
for attempt in $(seq "$BOOT_ATTEMPTS"); do
  rm -f "$RUN/started" "$RUN/rc" "$RUN/console.log"
  timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi,tb-size=256 -cpu max -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=ttyS0 quiet panic=-1 no_timer_check lab.RUN=$RUN lab.LABMODS=$LAB/kernel/lib/modules" \
    -serial "file:$RUN/console.log" -serial stdio \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$RUN",mount_tag=run,security_model=none,multidevs=remap \
    ${OUT:+-virtfs local,path="$OUT",mount_tag=out,security_model=none,multidevs=remap} \
    -netdev "$NET" -device virtio-net-pci,netdev=n0 </dev/null &
  qpid=$!
  why="QEMU exited"
  for ((waited = 0; ; waited++)); do
    [ ! -e "$RUN/started" ] || break
    kill -0 "$qpid" 2>/dev/null || break
    if [ "$waited" -ge "$BOOT_TIMEOUT" ]; then why="killed after ${BOOT_TIMEOUT}s"; kill "$qpid" 2>/dev/null; break; fi
    sleep 1
  done
  wait "$qpid" 2>/dev/null || true
  qpid=
  [ -e "$RUN/started" ] && break
  echo "run-in-guest: the guest did not start PROGRAM (attempt $attempt/$BOOT_ATTEMPTS, $why); kernel log tail:" >&2
  tail -10 "$RUN/console.log" >&2 || true
done
rc=$(cat "$RUN/rc" 2>/dev/null || echo 125)
if [ "$rc" = 125 ]; then
  echo "run-in-guest: guest died or timed out (TIMEOUT=$TIMEOUT); kernel log tail:" >&2
  tail -30 "$RUN/console.log" >&2 || true
fi
exit "$rc"
