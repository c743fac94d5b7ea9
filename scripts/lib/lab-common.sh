# shellcheck shell=bash disable=SC2034,SC2250
# (SC2034: the globals set here are used by scripts/lab. SC2250, with -o all:
# braces around every variable are style only.)
# Helpers for scripts/lab. Sourced, not run; expects ROOT to be set.

RUN_DIR=/run/ksr
NS_FILE=$RUN_DIR/namespaces
# The lab's settings while it runs ([cluster] and [[nodes]], written by
# `up` from the config): what this script reads. The objects live in the
# API server; each router has its own settings, RUN_DIR/router-NODE.toml.
SETTINGS=$RUN_DIR/settings.toml
# One file per pod the lab has built (`IP NODE`), so the kubelet knows what
# exists and what to remove.
PODS_DIR=$RUN_DIR/pods
# Per-netns files `ip netns exec` bind-mounts over /etc (resolv.conf).
NETNS_ETC=/etc/netns
# The underlay (a bridge joining the nodes) and the client outside the cluster.
UNDERLAY_NS=ksr-underlay
UNDERLAY_BR=ksr-br0
EXTERNAL_NS=ksr-external
BIN_DIR=${KSR_LAB_BIN:-$ROOT/target/release}
CONFIG=$ROOT/config.toml
CONFIG_SET=
export PATH="$BIN_DIR:$PATH"

log() { printf '[lab] %s\n' "$*" >&2; }
warn() { printf '[lab] warning: %s\n' "$*" >&2; }
die() {
    printf '[lab] error: %s\n' "$*" >&2
    exit 1
}

need_root() {
    ((EUID == 0)) || die "the lab needs root (network namespaces); try: sudo $0 ..."
}

need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || die "missing tool: $t"
    done
}

abspath() {
    local p=$1
    [[ $p == /* ]] || p="$PWD/$p"
    printf '%s\n' "$p"
}

set_config() {
    CONFIG=$(abspath "$1")
    CONFIG_SET=1
}

# show CMD...: print `$ CMD` and run it.
show() {
    printf '$ %s\n' "$*"
    "$@" || true
}

# nsx NS CMD...: run CMD in the lab netns NS (which must be a ksr- one).
nsx() {
    local ns=$1
    shift
    [[ $ns == ksr-* ]] || die "refusing to touch non-lab netns '$ns'"
    ip netns exec "$ns" "$@"
}

ns_add() {
    local ns=$1
    [[ $ns == ksr-* ]] || die "refusing to create non-lab netns '$ns'"
    ((${#ns} <= 200)) || die "netns name too long: $ns"
    printf '%s\n' "$ns" >>"$NS_FILE"
    ip netns add "$ns"
}

# lab_namespaces: every existing netns named ksr-*.
lab_namespaces() {
    local list
    list=$(ip netns list 2>/dev/null) || return 1
    awk '$1 ~ /^ksr-/ { print $1 }' <<<"$list"
}

ip_to_int() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

int_to_ip() {
    local n=$1
    echo "$(((n >> 24) & 255)).$(((n >> 16) & 255)).$(((n >> 8) & 255)).$((n & 255))"
}

# first_host CIDR: 10.10.1.0/24 -> 10.10.1.1
first_host() {
    local net=${1%/*} len=${1#*/} n mask
    mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
    n=$(ip_to_int "$net")
    int_to_ip $(((n & mask) + 1))
}

# veth_name IP: 10.10.1.42 -> ksr0a0a012a
veth_name() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    printf 'ksr%02x%02x%02x%02x\n' "$a" "$b" "$c" "$d"
}

is_ipv4() {
    [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]
}

is_cidr() {
    [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]]
}

is_uint() {
    [[ $1 =~ ^[0-9]{1,8}$ ]]
}

# load_cluster: read the nodes, CIDRs and the overlay's settings from
# `router lab-*`, and derive the underlay (one /24 holding every node's
# address) and the external client's address.
load_cluster() {
    local out
    local router=$BIN_DIR/router
    out=$("$router" lab-cluster --config "$CONFIG") || die "router lab-cluster --config $CONFIG failed"
    # POD_CIDR SERVICE_CIDR VNI PORT UNDERLAY_MTU POD_MTU
    local _rest v
    IFS=$'\t' read -r POD_CIDR SERVICE_CIDR VXLAN_VNI VXLAN_PORT UNDERLAY_MTU POD_MTU _rest <<<"$out"
    if ! is_cidr "${POD_CIDR:-}" || ! is_cidr "${SERVICE_CIDR:-}"; then
        die "router lab-cluster printed '$out', expected 'POD_CIDR<TAB>SERVICE_CIDR<TAB>VNI<TAB>PORT<TAB>UNDERLAY_MTU<TAB>POD_MTU'"
    fi
    for v in "$VXLAN_VNI" "$VXLAN_PORT" "$UNDERLAY_MTU" "$POD_MTU"; do
        is_uint "$v" || die "router lab-cluster printed '$out': '$v' is not a number"
    done

    NODE_NAMES=()
    declare -gA NODE_CIDR=() NODE_ADDR=() NODE_MAC=() NODE_INDEX=()
    out=$("$router" lab-nodes --config "$CONFIG") || die "router lab-nodes --config $CONFIG failed"
    local name addr cidr mac
    while IFS=$'\t' read -r name addr cidr mac _rest; do
        [[ -n $name ]] || continue
        if ! is_cidr "$cidr" || ! is_ipv4 "$addr" || [[ ! $mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]]; then
            die "router lab-nodes: bad line '$name $addr $cidr $mac'"
        fi
        NODE_INDEX[$name]=${#NODE_NAMES[@]}
        NODE_NAMES+=("$name")
        NODE_CIDR[$name]=$cidr
        NODE_ADDR[$name]=$addr
        NODE_MAC[$name]=$mac
    done <<<"$out"
    ((${#NODE_NAMES[@]})) || die "no nodes in $CONFIG"

    # The underlay: the /24 of the first node's address; every node in it.
    local first=${NODE_ADDR[${NODE_NAMES[0]}]} node n net
    UNDERLAY_LEN=24
    n=$(ip_to_int "$first")
    UNDERLAY_NET=$(int_to_ip $((n & 0xffffff00)))
    for node in "${NODE_NAMES[@]}"; do
        n=$(ip_to_int "${NODE_ADDR[$node]}")
        net=$(int_to_ip $((n & 0xffffff00)))
        [[ $net == "$UNDERLAY_NET" ]] ||
            die "node $node's address ${NODE_ADDR[$node]} is not in $UNDERLAY_NET/$UNDERLAY_LEN (the lab puts all nodes on one /24)"
    done
    # The external client: .200 of the underlay, or the next free address.
    local host taken base
    EXTERNAL_ADDR=
    base=$(ip_to_int "$UNDERLAY_NET")
    for host in $(seq 200 254) $(seq 199 -1 2); do
        addr=$(int_to_ip $((base + host)))
        taken=
        for node in "${NODE_NAMES[@]}"; do
            if [[ ${NODE_ADDR[$node]} == "$addr" ]]; then taken=1; fi
        done
        [[ -n $taken ]] || { EXTERNAL_ADDR=$addr; break; }
    done
    [[ -n $EXTERNAL_ADDR ]] || die "no free address for the external client in $UNDERLAY_NET/$UNDERLAY_LEN"

    # The objects come from the manifests (kubectl apply), not from here.
    local pods services
    pods=$("$router" lab-pods --config "$CONFIG" 2>/dev/null) || pods=
    services=$("$router" lab-services --config "$CONFIG" 2>/dev/null) || services=
    [[ -z $pods && -z $services ]] ||
        warn "$CONFIG has pods or Services: the lab ignores them (its objects are the manifests in $MANIFESTS_DIR, applied with kubectl)"
}

# start_bg NS NAME CMD...: run CMD in NS in the background; log and pid in
# RUN_DIR/NAME.{log,pid}. `ip netns exec` and `env` exec, so the pid is CMD's.
start_bg() {
    local ns=$1 name=$2
    shift 2
    [[ $ns == ksr-* ]] || die "refusing to run in non-lab netns '$ns'"
    if [[ -n ${LAB_LOCK_FD:-} ]]; then
        # Not the plumbing's lock (scripts/lab pod-up): CMD outlives it.
        ip netns exec "$ns" "$@" </dev/null >>"$RUN_DIR/$name.log" 2>&1 {LAB_LOCK_FD}>&- &
    else
        ip netns exec "$ns" "$@" </dev/null >>"$RUN_DIR/$name.log" 2>&1 &
    fi
    echo $! >"$RUN_DIR/$name.pid"
}

pid_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# proc_name PID: the base name of its argv[0]; 1 when it is gone.
proc_name() {
    local arg0=''
    [[ -r /proc/$1/cmdline ]] || return 1
    { IFS= read -r -d '' arg0 || true; } <"/proc/$1/cmdline" 2>/dev/null || return 1
    printf '%s\n' "${arg0##*/}"
}

# is_lab_process PID: alive and one of the lab's own binaries (`router`,
# `pod-server`, `ksr-apiserver`, `ksr-kubelet`), or a router's supervisor
# (`bash .../scripts/lab supervise`).
is_lab_process() {
    local pid=$1 arg0='' arg1='' arg2=''
    pid_alive "$pid" || return 1
    { IFS= read -r -d '' arg0 && IFS= read -r -d '' arg1 && IFS= read -r -d '' arg2; } <"/proc/$pid/cmdline" 2>/dev/null || true
    case ${arg0##*/} in
    router | pod-server | ksr-apiserver | ksr-kubelet) return 0 ;;
    *) ;;
    esac
    [[ $arg1 == "$ROOT/scripts/lab" && $arg2 == supervise ]]
}

# stop_pid PID [SECONDS]: SIGTERM, up to SECONDS (default 5), then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-5} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "pid $pid is still alive"
}

# kill_pidfile FILE [SECONDS]: stop the process if it is still a lab
# binary (SIGKILL after SECONDS, default 5).
kill_pidfile() {
    local f=$1 pid
    pid=$(<"$f") || true
    if is_lab_process "$pid"; then
        stop_pid "$pid" "${2:-5}"
    fi
    rm -f -- "$f"
}

now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# wait_until SECONDS WHAT NAME CMD...: retry CMD every 0.1 s until it succeeds.
# Fails at the deadline, or at once when the process RUN_DIR/NAME.pid exits.
wait_until() {
    local secs=$1 what=$2 name=$3
    shift 3
    local deadline pid now
    now=$(now_ms)
    deadline=$((now + secs * 1000))
    pid=$(<"$RUN_DIR/$name.pid")
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! pid_alive "$pid"; then
            wait_failed "$name" "$name (pid $pid) exited while waiting for $what"
        fi
        now=$(now_ms)
        if ((now >= deadline)); then
            wait_failed "$name" "timed out after ${secs}s waiting for $what"
        fi
        sleep 0.1
    done
}

wait_failed() {
    local name=$1 msg=$2
    printf '[lab] error: %s\n' "$msg" >&2
    if [[ -s $RUN_DIR/$name.log ]]; then
        printf '[lab] last lines of %s:\n' "$RUN_DIR/$name.log" >&2
        tail -n 20 "$RUN_DIR/$name.log" | sed 's/^/    /' >&2 || true
    fi
    printf '[lab] the lab is left as it is for inspection; remove it with: scripts/lab down\n' >&2
    exit 1
}

# ---------------------------------------------------------------- the API server
# The objects live in the lab's API server (ksr-apiserver); one ksr-kubelet
# per node builds the pods bound to it.

# The API server's files (`ksr-apiserver init`: CA, serving certificate,
# tokens, kubeconfigs) and its embedded storage (data/).
APISERVER_DIR=$RUN_DIR/apiserver
# The admin kubeconfig for the user's shell: https://127.0.0.1:6443, a
# listener in the host's namespace (`scripts/lab kubeconfig` prints it).
ADMIN_KUBECONFIG=$APISERVER_DIR/admin.kubeconfig
# The kubelets' kubeconfig: admin rights (they write Nodes and pod status),
# the lab address (they run in their nodes' namespaces).
KUBELET_KUBECONFIG=$APISERVER_DIR/kubelet.kubeconfig
APISERVER_PORT=6443
# The manifests `up` applies (every *.yaml, by name).
MANIFESTS_DIR=${KSR_LAB_MANIFESTS:-$ROOT/lab/manifests}

# kctl ARGS...: the real kubectl against the lab's API server, as admin.
kctl() {
    kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"
}

# router_settings NODE: NODE's router settings: the lab's [cluster] settings and the router's read-only kubeconfig; the
# nodes and every object come from the API server.
# shellcheck disable=SC2154 # DNS_DOMAIN: set by scripts/lab (load_dns)
router_settings() {
    printf '# %s'"'"'s router: its own settings; nodes, Services,\n' "$1"
    printf '# EndpointSlices and its pods come from the Kubernetes API.\n'
    printf '[kubernetes]\nkubeconfig = "%s"\n\n' "$APISERVER_DIR/router-$1.kubeconfig"
    printf '[cluster]\npodCIDR = "%s"\nserviceCIDR = "%s"\ndnsDomain = "%s"\n' \
        "$POD_CIDR" "$SERVICE_CIDR" "$DNS_DOMAIN"
    printf 'vxlanVNI = %s\nvxlanPort = %s\nunderlayMTU = %s\n' \
        "$VXLAN_VNI" "$VXLAN_PORT" "$UNDERLAY_MTU"
}

# lab_settings: the lab's [cluster] settings and [[nodes]] (objects live
# in the API server): what the lab script itself reads while the lab runs
# (node names, addresses, pod CIDRs); the routers read router_settings.
lab_settings() {
    local node
    printf '# The running lab'"'"'s settings; objects live in the API server.\n'
    printf '[cluster]\npodCIDR = "%s"\nserviceCIDR = "%s"\ndnsDomain = "%s"\n' \
        "$POD_CIDR" "$SERVICE_CIDR" "$DNS_DOMAIN"
    printf 'vxlanVNI = %s\nvxlanPort = %s\nunderlayMTU = %s\n' \
        "$VXLAN_VNI" "$VXLAN_PORT" "$UNDERLAY_MTU"
    for node in "${NODE_NAMES[@]}"; do
        printf '\n[[nodes]]\nname = "%s"\naddress = "%s"\npodCIDR = "%s"\n' \
            "$node" "${NODE_ADDR[$node]}" "${NODE_CIDR[$node]}"
    done
}
