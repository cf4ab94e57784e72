#!/usr/bin/env bash
# A two-"host" MPI run on this machine: two network namespaces (vlm-h1, vlm-h2) joined by veth
# pairs to a bridge (10.77.0.1/24 in the root namespace; the hosts are 10.77.0.2 and 10.77.0.3).
# mpirun (in the root namespace) starts its daemons "remotely" through a launch agent that does
# `ip netns exec` where a cluster would use ssh (--mca plm_rsh_agent), and the ranks talk TCP over
# the veths only (--mca btl tcp,self: no shared memory between the hosts). The file system is
# shared, as a cluster's shared cache directory would be.
# Usage (root): scripts/mpi/netns.sh -- <vlm arguments>     e.g. ... -- train --data ... --out ...
# Bounded (timeout 300) and cleaned up on exit (namespaces, veths, bridge).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
VLM=${VLM:-$root/.build/release/vlm}
[ "${1:-}" = "--" ] && shift
[ "$(id -u)" = 0 ] || { echo "netns.sh: needs root (ip netns)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d /tmp/vlm-netns.XXXXXX)
cleanup() {
  for h in 1 2; do ip netns del "vlm-h$h" 2>/dev/null || true; ip link del "vlm-v$h" 2>/dev/null || true; done
  ip link del vlm-br0 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
cleanup; mkdir -p "$T"
ip link add vlm-br0 type bridge
ip addr add 10.77.0.1/24 dev vlm-br0
ip link set vlm-br0 up
for h in 1 2; do
  ns=vlm-h$h
  ip netns add "$ns"
  ip link add "vlm-v$h" type veth peer name eth0 netns "$ns"
  ip link set "vlm-v$h" master vlm-br0 up
  ip -n "$ns" addr add "10.77.0.$((h + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
# reachability: a TCP connect from host 1 to a listener on host 2 (no ping needed), retried
ip netns exec vlm-h2 timeout 20 python3 -c "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"10.77.0.3\", 7777)); s.listen(1); s.accept()" &
reached=0
for _ in $(seq 1 40); do
  sleep 0.5
  if ip netns exec vlm-h1 timeout 5 bash -c "exec 3<>/dev/tcp/10.77.0.3/7777" 2>/dev/null; then reached=1; break; fi
done
wait || true
[ "$reached" = 1 ] || { echo "netns.sh: the namespaces cannot reach each other" >&2; exit 1; }
# the launch agent: called as `agent [ssh options] HOST COMMAND...` like ssh
cat > "$T/agent.sh" <<'AGENT'
#!/usr/bin/env bash
while [ "${1#-}" != "$1" ]; do shift; done
host=$1; shift
case "$host" in 10.77.0.2) ns=vlm-h1 ;; 10.77.0.3) ns=vlm-h2 ;; *) echo "agent: unknown host $host" >&2; exit 1 ;; esac
exec ip netns exec "$ns" /bin/sh -c "$*"
AGENT
chmod +x "$T/agent.sh"
printf '10.77.0.2 slots=1\n10.77.0.3 slots=1\n' > "$T/hostfile"
echo "netns.sh: hosts 10.77.0.2 (vlm-h1) and 10.77.0.3 (vlm-h2), launching: vlm $*" >&2
timeout 300 mpirun -np 2 --hostfile "$T/hostfile" --map-by node \
  --mca plm_rsh_agent "$T/agent.sh" --mca plm_rsh_no_tree_spawn 1 \
  --mca oob_tcp_if_include 10.77.0.0/24 --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
  -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x PATH ${LD_LIBRARY_PATH:+-x LD_LIBRARY_PATH} \
  /bin/sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in $(ip netns identify $$ 2>/dev/null || echo ?) at $(ip -4 -o addr show eth0 | awk "{print \$4}")" >&2; exec "$0" "$@"' "$VLM" "$@"
