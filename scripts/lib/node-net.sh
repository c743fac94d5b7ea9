# shellcheck shell=bash disable=SC2250
# (SC2250, with -o all: braces around every variable are style only.)
# scripts/lib/node-net.sh: how a node's kernel routes traffic through its
# router. The one copy of the recipe, sourced by scripts/lab (a node netns
# per node), scripts/bench-e2e (its one node netns) and vm/node-up (the root
# namespace of a VM, installed as /usr/local/lib/ksr/node-net.sh).
#
# Every function takes TARGET first, which says where commands run:
#   ksr-NAME, ksrb-NAME  a network namespace of the lab or the bench (`ip -n`,
#                        `ip netns exec`); any other name is refused;
#   -                    the current (root) namespace, only when the caller
#                        has set NODE_NET_ROOT=1 (vm/node-up, on a VM, after
#                        its checks). There every change is reported to the
#                        function named by NODE_NET_JOURNAL, if set, as
#                        `JOURNAL KIND ARGS...` (route-del, rule-del,
#                        rule-add, link, sysctl KEY OLD), so it can be undone.
# The caller defines die and warn. Nothing here runs commands when sourced.
# Every function returns non-zero as soon as a step fails, so that a failure
# counts also where the caller runs it in a condition (`f || ...`), where
# bash turns set -e off.
#
# The recipe (README.md, "How traffic reaches the router"):
#
#   pref 4    iif kube0 lookup local           what the router writes back to a
#                                              local address is delivered
#   pref 5    to ADDR tcp/udp dport NODEPORTS   NodePorts reach the router
#             lookup 100                        although ADDR is local
#   pref 10   lookup local                      (moved from pref 0, below 4 and 5)
#   pref 100  iif kube0 lookup main             written-back packets never loop
#   pref 101  iif kube0 to NODE_CIDR lookup 101 reverse-path checks (below)
#   pref 105  iif lo to NODE_CIDR lookup main   ditto, for packets to the node
#   pref 106  iif lo to NODE_CIDR lookup 101    itself
#   pref 110  from POD_CIDR lookup 100          all pod egress passes the router
#   pref 115  iif UNDERLAY lookup 100           LoadBalancer/external IPs routed here
#   pref 120  to SERVICE_CIDR lookup 100        Service traffic from the node too
#
# Table 100: default dev kube0, and `unreachable default metric 9999` behind
# it: when the router and kube0 are gone, pod and Service traffic is
# unreachable and never takes another path (fail closed). main: unreachable
# SERVICE_CIDR.
#
# Anti-spoofing: the pods' veths have the strict reverse-path filter
# (rp_filter=1): a packet's source must route back out of the veth it came
# in on. The kernel's reverse lookup runs with iif = the output device of the
# packet's route (kube0 for everything the pods send through the router), or
# lo for packets to the node itself. It finds a pod's /32 route in main (pref
# 100 or 105), so another pod's address fails the check, here or on another
# node (no route back out of this veth). An address of the node's CIDR that
# is no pod's falls through to table 101, the CIDR over all the node's pod
# veths (multipath), and passes on any of them: the router drops it and
# counts it (spoofed-source). The side effect: what the router writes back
# to such an address goes to some pod's veth, which drops it, instead of
# back into kube0.

NODE_NET_TUN=kube0
NODE_NET_ROUTER_TABLE=100 # everything that must pass the router: default dev kube0
NODE_NET_RPF_TABLE=101    # reverse-path lookups only: the node's pod CIDR over its pod veths
NODE_NET_NODEPORTS=30000-32767
NODE_NET_PREFS=(4 5 100 101 105 106 110 115 120) # the rules the recipe adds

# nn_target TARGET: refuse anything but our namespaces, and the root
# namespace unless the caller allowed it.
nn_target() {
    case $1 in
    -) [[ ${NODE_NET_ROOT:-0} == 1 ]] || die "node-net: refusing to change the root namespace" ;;
    ksr-?* | ksrb-?*) [[ $1 != */* ]] || die "node-net: bad netns name '$1'" ;;
    *) die "node-net: refusing to touch netns '$1' (not ksr-* or ksrb-*)" ;;
    esac
}

# nn_ip TARGET ARGS...: ip(8) in TARGET.
nn_ip() {
    local t=$1
    shift
    nn_target "$t"
    if [[ $t == - ]]; then ip "$@"; else ip -n "$t" "$@"; fi
}

# nn_run TARGET CMD...: any command in TARGET.
nn_run() {
    local t=$1
    shift
    nn_target "$t"
    if [[ $t == - ]]; then "$@"; else ip netns exec "$t" "$@"; fi
}

# nn_journal TARGET KIND ARGS...: tell the caller's journal, in the root
# namespace only (a netns goes away whole).
nn_journal() {
    local t=$1
    shift
    [[ $t == - && -n ${NODE_NET_JOURNAL:-} ]] || return 0
    "$NODE_NET_JOURNAL" "$@"
}

# nn_sysctls TARGET KEY=VALUE...: set them; in the root namespace each
# changed one is journaled with its old value.
nn_sysctls() {
    local t=$1 kv key value old
    shift
    if [[ $t != - ]]; then
        nn_run "$t" sysctl -q -w "$@" || return
        return
    fi
    nn_target -
    for kv in "$@"; do
        key=${kv%%=*} value=${kv#*=}
        old=$(sysctl -n "$key" 2>/dev/null) || die "no sysctl $key"
        [[ $old != "$value" ]] || continue
        nn_journal - sysctl "$key" "$old" || return
        sysctl -q -w "$key=$value" || return
    done
}

# nn_route TARGET ARGS...: ip route add ARGS, journaled.
nn_route() {
    local t=$1 out
    shift
    # The router installs its own rules and routes too (router/src/shell/
    # plumbing): one that is already there is what we wanted.
    if ! out=$(nn_ip "$t" route add "$@" 2>&1); then
        [[ $out == *"File exists"* ]] || { printf '%s\n' "$out" >&2; return 1; }
    fi
    nn_journal "$t" route-del "$@"
}

# nn_rule TARGET ARGS...: ip rule add ARGS, journaled.
nn_rule() {
    local t=$1 out
    shift
    if ! out=$(nn_ip "$t" rule add "$@" 2>&1); then
        [[ $out == *"File exists"* ]] || { printf '%s\n' "$out" >&2; return 1; }
    fi
    nn_journal "$t" rule-del "$@"
}

# node_net_sysctls TARGET [UNDERLAY_DEV]: forwarding on, the reverse-path
# filter and redirects off, IPv6 off for new devices. Before kube0, the
# gateway and the veths exist, so they inherit the defaults. In a netns IPv6
# goes off everywhere; in the root namespace only for new devices (the VM's
# own interfaces keep it), and the filter goes off on the underlay device
# too (it exists already).
node_net_sysctls() {
    local t=$1 dev=${2:-}
    local -a kv=(
        net.ipv4.ip_forward=1
        net.ipv4.conf.all.rp_filter=0
        net.ipv4.conf.default.rp_filter=0
    )
    [[ -n $dev ]] && kv+=("net/ipv4/conf/$dev/rp_filter=0") # slashes: DEV may contain dots
    kv+=(
        net.ipv4.conf.all.send_redirects=0
        net.ipv4.conf.default.send_redirects=0
    )
    [[ $t == - ]] || kv+=(net.ipv6.conf.all.disable_ipv6=1)
    kv+=(net.ipv6.conf.default.disable_ipv6=1)
    nn_sysctls "$t" "${kv[@]}"
}

# node_net_gateway TARGET DEV IP: the pods' gateway IP, a local address of
# the node on device DEV, so the node answers the pods' ARP for it on every
# veth. DEV is a dummy device; kernels without CONFIG_DUMMY get a veth pair
# whose peer (DEV-peer) stays in the node.
node_net_gateway() {
    local t=$1 dev=$2 ip=$3
    if nn_ip "$t" link add "$dev" type dummy 2>/dev/null; then
        nn_journal "$t" link "$dev" || return
    else
        nn_ip "$t" link add "$dev" type veth peer name "$dev-peer" || return
        nn_journal "$t" link "$dev" || return
        nn_ip "$t" link set "$dev-peer" up || return
    fi
    nn_ip "$t" link set "$dev" up || return
    nn_ip "$t" addr add "$ip/32" dev "$dev"
}

# node_net_rpf_table TARGET NODE_CIDR VETH...: table 101 holds NODE_CIDR
# over these pod veths (see anti-spoofing above); none: no route. Safe to
# repeat as pods come and go.
node_net_rpf_table() {
    local t=$1 cidr=$2 dev
    shift 2
    local -a nexthops=()
    for dev in "$@"; do
        nexthops+=(nexthop dev "$dev")
    done
    if (($# == 1)); then
        nn_ip "$t" route replace "$cidr" dev "$1" table "$NODE_NET_RPF_TABLE" || return
    elif (($#)); then
        nn_ip "$t" route replace "$cidr" table "$NODE_NET_RPF_TABLE" "${nexthops[@]}" || return
    else
        nn_ip "$t" route del "$cidr" table "$NODE_NET_RPF_TABLE" 2>/dev/null || true
        return 0
    fi
    nn_journal "$t" route-del "$cidr" table "$NODE_NET_RPF_TABLE"
}

# node_net_kube0_route TARGET: `default dev kube0` in table 100, which goes
# away with kube0 whenever the router exits. Safe to repeat.
node_net_kube0_route() {
    local t=$1
    nn_ip "$t" route replace default dev "$NODE_NET_TUN" table "$NODE_NET_ROUTER_TABLE"
}

# node_net_kube0_restarted TARGET SECS: after a router (re)start, wait up to
# SECS for its kube0 and route table 100 into it again; 1 if kube0 did not
# come. (Until the router installs its own routes.)
node_net_kube0_restarted() {
    local t=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        if nn_ip "$t" link show dev "$NODE_NET_TUN" >/dev/null 2>&1 &&
            node_net_kube0_route "$t" 2>/dev/null; then
            nn_run "$t" sysctl -q -w "net.ipv4.conf.$NODE_NET_TUN.rp_filter=0" \
                "net.ipv4.conf.$NODE_NET_TUN.accept_local=1" || return 1
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# node_net_kube0 TARGET: once kube0 exists: its own sysctls (it is new),
# table 100 into it, and the fail-closed route behind that.
node_net_kube0() {
    local t=$1
    nn_run "$t" sysctl -q -w "net.ipv4.conf.$NODE_NET_TUN.rp_filter=0" \
        "net.ipv4.conf.$NODE_NET_TUN.accept_local=1" || return
    node_net_kube0_route "$t" || return
    nn_journal "$t" route-del default dev "$NODE_NET_TUN" table "$NODE_NET_ROUTER_TABLE" || return
    # When the router dies kube0 goes away and this takes over: fail closed.
    nn_route "$t" unreachable default metric 9999 table "$NODE_NET_ROUTER_TABLE"
}

# node_net_router_rules TARGET POD_CIDR SERVICE_CIDR: the rules every node
# has (prefs 100, 110, 120): pod egress and Service traffic into table 100,
# what the router writes back to main.
node_net_router_rules() {
    local t=$1 pod_cidr=$2 service_cidr=$3
    nn_rule "$t" pref 100 iif "$NODE_NET_TUN" lookup main || return
    nn_rule "$t" pref 110 from "$pod_cidr" lookup "$NODE_NET_ROUTER_TABLE" || return
    nn_rule "$t" pref 120 to "$service_cidr" lookup "$NODE_NET_ROUTER_TABLE"
}

# node_net_route_through_router TARGET ADDR NODE_CIDR POD_CIDR SERVICE_CIDR
# UNDERLAY_DEV: the whole recipe above, once kube0 exists (table 101 is
# node_net_rpf_table's).
node_net_route_through_router() {
    local t=$1 addr=$2 cidr=$3 pod_cidr=$4 service_cidr=$5 dev=$6 proto out
    node_net_kube0 "$t" || return
    nn_route "$t" unreachable "$service_cidr" || return
    # The local table moves from pref 0 to pref 10; the new one goes in
    # before the old one goes: never without a local lookup.
    out=$(nn_ip "$t" rule show pref 10 lookup local) || die "node-net: ip rule show failed in $t"
    [[ -n $out ]] || nn_rule "$t" pref 10 lookup local || return
    while true; do
        out=$(nn_ip "$t" rule show pref 0 lookup local) || die "node-net: ip rule show failed in $t"
        [[ -n $out ]] || break
        nn_ip "$t" rule del pref 0 lookup local || return
        nn_journal "$t" rule-add pref 0 lookup local || return
    done
    nn_rule "$t" pref 4 iif "$NODE_NET_TUN" lookup local || return
    for proto in tcp udp; do
        nn_rule "$t" pref 5 to "$addr/32" ipproto "$proto" dport "$NODE_NET_NODEPORTS" lookup "$NODE_NET_ROUTER_TABLE" || return
    done
    nn_rule "$t" pref 101 iif "$NODE_NET_TUN" to "$cidr" lookup "$NODE_NET_RPF_TABLE" || return
    nn_rule "$t" pref 105 iif lo to "$cidr" lookup main || return
    nn_rule "$t" pref 106 iif lo to "$cidr" lookup "$NODE_NET_RPF_TABLE" || return
    nn_rule "$t" pref 115 iif "$dev" lookup "$NODE_NET_ROUTER_TABLE" || return
    node_net_router_rules "$t" "$pod_cidr" "$service_cidr"
}

# node_net_unroute TARGET SERVICE_CIDR: undo node_net_route_through_router
# and node_net_rpf_table in a netns (the local table stays at pref 10).
# Never fails.
node_net_unroute() {
    local t=$1 service_cidr=$2 pref i
    for pref in "${NODE_NET_PREFS[@]}"; do
        for ((i = 0; i < 10; i++)); do
            nn_ip "$t" rule del pref "$pref" 2>/dev/null || break
        done
    done
    nn_ip "$t" route flush table "$NODE_NET_ROUTER_TABLE" 2>/dev/null || true
    nn_ip "$t" route flush table "$NODE_NET_RPF_TABLE" 2>/dev/null || true
    nn_ip "$t" route del unreachable "$service_cidr" 2>/dev/null || true
    return 0
}
