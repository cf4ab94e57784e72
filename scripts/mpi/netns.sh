#!/usr/bin/env bash
# A two-"host" MPI run on this machine: two network namespaces (vlmh1-PID, vlmh2-PID) joined by
# veth pairs to a bridge (10.77.0.1/24 in the root namespace; the hosts are 10.77.0.2 and 10.77.0.3).
# mpirun (in the root namespace) starts its daemons "remotely" through a launch agent that does
# `ip netns exec` where a cluster would use ssh (--mca plm_rsh_agent), and the ranks talk TCP over
# the veths only (--mca btl tcp,self: no shared memory between the hosts). The file system is
# shared, as a cluster's shared cache directory would be.
# Usage (root): scripts/mpi/netns.sh -- <vlm arguments>     e.g. ... -- train --data ... --out ...
# Bounded (timeout 300, NETNS_TIMEOUT) and cleaned up on exit: every process left in the namespaces
# is killed (a daemon of a killed job survives its namespace's name otherwise), then the namespaces,
# veths and bridge are deleted. Names carry this script's PID, so a run never meets the remains of
# the last one while the kernel is still tearing them down (namespace deletion is asynchronous).
# Launch watchdog: Open MPI starts one daemon per host through the agent, and each rank prints a
# line before it execs vlm. On this setup a daemon launch has been seen, rarely (once in CI; 2 of 40
# launches here, on busy cores; never under plm verbosity), to leave one host without a daemon, and
# mpirun then waits forever for its call-back. If both ranks have not started within 60 s
# (NETNS_LAUNCH_WAIT), the launch is reported with the agent's log, killed, and tried once more on
# fresh namespaces; a second hung launch fails the run (status 200).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
VLM=${VLM:-$root/.build/release/vlm}
[ "${1:-}" = "--" ] && shift
[ "$(id -u)" = 0 ] || { echo "netns.sh: needs root (ip netns)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tag=$$
H1=vlmh1-$tag H2=vlmh2-$tag BR=vlmbr-$tag
T=$(mktemp -d /tmp/vlm-netns.XXXXXX)
teardown() {
  for ns in "$H1" "$H2"; do
    if ip netns list 2>/dev/null | grep -qw "$ns"; then
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  for v in "vlmv1-$tag" "vlmv2-$tag" "$BR"; do ip link del "$v" 2>/dev/null || true; done
}
trap 'teardown; rm -rf "$T"' EXIT
# the remains of earlier runs of this script (killed before their trap ran): their processes, then
# their namespaces and links
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(vlm-h[12]|vlmh[12]-[0-9]+)$' || true); do
  pids=$(ip netns pids "$ns" 2>/dev/null || true); [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
done
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(vlm-v[12]|vlm-br0|vlmv[12]-[0-9]+|vlmbr-[0-9]+)$' || true); do
  ip link del "$l" 2>/dev/null || true
done

setup() {
  ip link add "$BR" type bridge
  ip addr add 10.77.0.1/24 dev "$BR"
  ip link set "$BR" up
  for h in 1 2; do
    if [ $h = 1 ]; then ns=$H1; else ns=$H2; fi
    ip netns add "$ns"
    ip link add "vlmv$h-$tag" type veth peer name eth0 netns "$ns"
    ip link set "vlmv$h-$tag" master "$BR" up
    ip -n "$ns" addr add "10.77.0.$((h + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  # reachability: a TCP connect from host 1 to a listener on host 2 (no ping needed), retried
  ip netns exec "$H2" timeout 20 python3 -c "import socket, time
for _ in range(40):
    try:
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('10.77.0.3', 7777)); break
    except OSError:
        time.sleep(0.25)
s.listen(1); s.accept()" &
  local reached=0
  for _ in $(seq 1 40); do
    sleep 0.5
    if ip netns exec "$H1" timeout 5 bash -c "exec 3<>/dev/tcp/10.77.0.3/7777" 2>/dev/null; then reached=1; break; fi
  done
  wait || true
  [ "$reached" = 1 ] || { echo "netns.sh: the namespaces cannot reach each other" >&2; exit 1; }
}

# the launch agent: called as `agent [ssh options] HOST COMMAND...` like ssh; logs each launch
cat > "$T/agent.sh" <<AGENT
#!/usr/bin/env bash
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case "\$host" in 10.77.0.2) ns=$H1 ;; 10.77.0.3) ns=$H2 ;; *) echo "agent: unknown host \$host" >&2; exit 1 ;; esac
echo "\$(date +%T.%N) launch on \$host (\$ns)" >> "$T/agent.log"
ip netns exec "\$ns" /bin/sh -c "\$*"
rc=\$?
echo "\$(date +%T.%N) launch on \$host returned \$rc" >> "$T/agent.log"
exit \$rc
AGENT
chmod +x "$T/agent.sh"
printf '10.77.0.2 slots=1\n10.77.0.3 slots=1\n' > "$T/hostfile"
echo "netns.sh: hosts 10.77.0.2 ($H1) and 10.77.0.3 ($H2), launching: vlm $*" >&2

launch() {   # one mpirun on fresh namespaces; its output in $T/out; status 0/its status, 200 = launch hung
  teardown; setup
  : > "$T/out"; : > "$T/agent.log"
  timeout "${NETNS_TIMEOUT:-300}" mpirun -np 2 --hostfile "$T/hostfile" --map-by node ${NETNS_MPI_DEBUG:-} \
    --mca plm_rsh_agent "$T/agent.sh" --mca plm_rsh_no_tree_spawn 1 \
    --mca oob_tcp_if_include 10.77.0.0/24 --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
    -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x PATH ${LD_LIBRARY_PATH:+-x LD_LIBRARY_PATH} \
    /bin/sh -c 'echo "rank $OMPI_COMM_WORLD_RANK in $(ip netns identify $$ 2>/dev/null || echo ?) at $(ip -4 -o addr show eth0 | awk "{print \$4}")" >&2; exec "$0" "$@"' "$VLM" "$@" \
    > "$T/out" 2>&1 &
  local job=$! waited=0
  while kill -0 "$job" 2>/dev/null; do
    [ "$(grep -c '^rank [01] in ' "$T/out")" = 2 ] && break
    if [ "$waited" -ge "${NETNS_LAUNCH_WAIT:-60}" ]; then
      echo "netns.sh: launch hung: the ranks had not started after ${waited} s; the agent's log:" >&2
      sed 's/^/  /' "$T/agent.log" >&2
      pkill -9 -P "$job" 2>/dev/null || true; kill -9 "$job" 2>/dev/null || true
      wait "$job" 2>/dev/null || true
      return 200
    fi
    sleep 1; waited=$((waited + 1))
  done
  local rc=0
  wait "$job" || rc=$?
  return "$rc"
}

rc=0
launch "$@" || rc=$?
if [ "$rc" = 200 ]; then
  echo "netns.sh: trying the launch once more on fresh namespaces" >&2
  rc=0; launch "$@" || rc=$?
  [ "$rc" = 200 ] && echo "netns.sh: the launch hung twice" >&2
fi
cat "$T/out"
exit "$rc"
