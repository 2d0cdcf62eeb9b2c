#!/usr/bin/env bash
# usage: hack/lab/control-plane.sh start|stop|status DIR
# A throw-away Kubernetes control plane on the HOST's loopback for the e2e lab: etcd + kube-apiserver,
# nothing else (no kubelet, no controllers, no scheduler: the e2e harness writes Nodes, Services and
# EndpointSlices itself). Adds no address or link anywhere; listens on 127.0.0.1 only.
#   DIR/pki/        CA, apiserver serving cert (SANs 127.0.0.1, 10.0.2.100, 10.96.0.1, localhost,
#                   kubernetes...), admin client cert (O=system:masters), service-account key pair
#   DIR/kubeconfig        server https://127.0.0.1:PORT   (host side)
#   DIR/kubeconfig-guest  server https://10.0.2.100:PORT  (inside the QEMU guest: HOSTPORTS=PORT)
#   DIR/env         APISERVER_PORT=... ETCD_PORT=... KUBECONFIG_HOST=... KUBECONFIG_GUEST=... (sourceable)
#   DIR/*.log       etcd and kube-apiserver logs;  DIR/*.pid  their pids (stop kills only these)
# Binaries: KUBE_APISERVER_BIN, ETCD_BIN (default _output/tools/bin/{kube-apiserver,etcd}, falling back
# to an `etcd` on PATH, e.g. Debian's etcd-server). APISERVER_PORT / ETCD_PORT pick ports (default: free
# ports chosen at random). READY_TIMEOUT seconds to wait for /readyz (default 180). NODE_PORT_RANGE
# (default 30000-32767). SERVICE_CIDRS (default 10.96.0.0/16,fd00:10:96::/108: dual-stack, IPv4
# first, so a Service that asks for no family is IPv4 only; the parity test's dual-stack Services
# take the second).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cmd=${1:-}; DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || { sed -n '2,2p' "$0" >&2; exit 2; }
mkdir -p "$DIR"; DIR=$(realpath "$DIR")

stop_pid() { # stop_pid NAME: SIGTERM then SIGKILL the process recorded in DIR/NAME.pid
  local f=$DIR/$1.pid pid; [ -f "$f" ] || return 0; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

free_port() { # a TCP port nobody listens on, from a range the kernel does not hand out as ephemeral
  local p used; used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for _ in $(seq 100); do p=$((20000 + RANDOM % 12000)); grep -qx "$p" <<<"$used" || { echo "$p"; return; }; done
  echo "control-plane: no free port" >&2; return 1
}

case $cmd in
stop)
  stop_pid kube-apiserver; stop_pid etcd; rm -rf "$DIR/etcd-data"; echo "control-plane: stopped"; exit 0;;
status)
  for n in etcd kube-apiserver; do
    if [ -f "$DIR/$n.pid" ] && kill -0 "$(cat "$DIR/$n.pid")" 2>/dev/null; then echo "$n running"; else echo "$n stopped"; fi
  done; exit 0;;
start) ;;
*) echo "unknown command $cmd" >&2; exit 2;;
esac

APISERVER=${KUBE_APISERVER_BIN:-$ROOT/_output/tools/bin/kube-apiserver}
ETCD=${ETCD_BIN:-$ROOT/_output/tools/bin/etcd}
[ -x "$ETCD" ] || ETCD=$(command -v etcd || true)
[ -x "$APISERVER" ] || { echo "control-plane: $APISERVER missing: run hack/build-tools.sh" >&2; exit 1; }
[ -n "$ETCD" ] && [ -x "$ETCD" ] || { echo "control-plane: etcd missing: run hack/build-tools.sh" >&2; exit 1; }
stop_pid kube-apiserver; stop_pid etcd   # a leftover from an earlier start in the same DIR
t0=$(date +%s%N)

# --- PKI (openssl; EC P-256 keys: fast to generate) ---
P=$DIR/pki; mkdir -p "$P"
if [ ! -f "$P/admin.crt" ]; then
  ossl() { openssl "$@" 2>/dev/null; }
  ec() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  ec "$P/ca.key"
  ossl req -x509 -new -key "$P/ca.key" -subj "/CN=kube-proxy-ipvs-e2e-ca" -days 30 -out "$P/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  sign() { # sign NAME SUBJ EXT...
    local n=$1 s=$2; shift 2; ec "$P/$n.key"
    ossl req -new -key "$P/$n.key" -subj "$s" -out "$P/$n.csr"
    printf '%s\n' "$@" > "$P/$n.ext"
    ossl x509 -req -in "$P/$n.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 30 \
      -extfile "$P/$n.ext" -out "$P/$n.crt"; rm -f "$P/$n.csr" "$P/$n.ext"
  }
  sign apiserver "/CN=kube-apiserver" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,IP:10.0.2.100,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=kube-admin" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth"
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$P/sa.key"
  ossl pkey -in "$P/sa.key" -pubout -out "$P/sa.pub"
fi

ETCD_PORT=${ETCD_PORT:-$(free_port)}; ETCD_PEER_PORT=$(free_port); APISERVER_PORT=${APISERVER_PORT:-$(free_port)}
while [ "$ETCD_PEER_PORT" = "$ETCD_PORT" ] || [ "$ETCD_PEER_PORT" = "$APISERVER_PORT" ]; do ETCD_PEER_PORT=$(free_port); done

# --- etcd ---
rm -rf "$DIR/etcd-data"
setsid "$ETCD" --name e2e --data-dir "$DIR/etcd-data" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn \
  </dev/null >"$DIR/etcd.log" 2>&1 & echo $! > "$DIR/etcd.pid"

# --- kube-apiserver ---
setsid "$APISERVER" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
  --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" --client-ca-file "$P/ca.crt" \
  --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range "${SERVICE_CIDRS:-10.96.0.0/16,fd00:10:96::/108}" --service-node-port-range "${NODE_PORT_RANGE:-30000-32767}" \
  --authorization-mode AlwaysAllow --anonymous-auth=false \
  --disable-admission-plugins ServiceAccount \
  --endpoint-reconciler-type none --enable-priority-and-fairness=false \
  --profiling=false --allow-privileged \
  </dev/null >"$DIR/kube-apiserver.log" 2>&1 & echo $! > "$DIR/kube-apiserver.pid"

# --- kubeconfigs (certificates embedded: readable anywhere, inside the guest too) ---
b64() { base64 -w0 < "$1"; }
kubeconfig() { # kubeconfig FILE SERVER
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $2
    certificate-authority-data: $(b64 "$P/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$P/admin.crt")
    client-key-data: $(b64 "$P/admin.key")
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
EOF
}
kubeconfig "$DIR/kubeconfig" "https://127.0.0.1:$APISERVER_PORT"
kubeconfig "$DIR/kubeconfig-guest" "https://10.0.2.100:$APISERVER_PORT"
cat > "$DIR/env" <<EOF
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
KUBECONFIG_HOST=$DIR/kubeconfig
KUBECONFIG_GUEST=$DIR/kubeconfig-guest
EOF

# --- wait for /readyz ---
deadline=$((SECONDS + ${READY_TIMEOUT:-180}))
until curl -fsS --max-time 5 --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" \
        "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1; do
  for n in etcd kube-apiserver; do
    kill -0 "$(cat "$DIR/$n.pid")" 2>/dev/null || { echo "control-plane: $n exited; log tail:" >&2; tail -20 "$DIR/$n.log" >&2; "$0" stop "$DIR" >/dev/null; exit 1; }
  done
  if [ $SECONDS -ge $deadline ]; then
    echo "control-plane: apiserver not ready; log tail:" >&2; tail -20 "$DIR/kube-apiserver.log" >&2; "$0" stop "$DIR" >/dev/null; exit 1
  fi
  sleep 0.5
done
echo "control-plane: ready at https://127.0.0.1:$APISERVER_PORT (etcd :$ETCD_PORT) in $(( ($(date +%s%N) - t0) / 1000000 )) ms; env in $DIR/env"
