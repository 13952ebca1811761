#!/usr/bin/env bash
# Start a real one-node Slurm (munge, slurmctld, slurmd) for the workflow tests.
#
#   .ci/slurm/start.sh        # install if missing, configure, start, wait for an idle node
#   .ci/slurm/stop.sh         # stop the daemons this script started, remove its config
#
# Needs root and Debian/Ubuntu (apt-get installs slurm-wlm and munge when missing).
# Daemons are started directly (no systemd): containers rarely run an init system.
# The node has the host's CPUs and memory (from `slurmd -C`) and two fake GPUs.
# Environment:
#   HEPDL_SLURM_STATE   state, spool and log directory (default /tmp/hepdl-slurm)
#   HEPDL_SLURM_PORT    slurmctld port; slurmd gets the next one (default 6817)
#   HEPDL_SLURM_TIMEOUT seconds to wait for the node to become idle (default 60)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${HEPDL_SLURM_STATE:-/tmp/hepdl-slurm}"
ctld_port="${HEPDL_SLURM_PORT:-6817}"
d_port="$((ctld_port + 1))"
timeout_s="${HEPDL_SLURM_TIMEOUT:-60}"
etc=/etc/slurm
marker="# hepdl-ci:"

log() { echo "[slurm/start] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root (it installs packages and starts daemons)"

host="$(hostname -s)"

node_state() { sinfo -h -n "$host" -o %t 2>/dev/null | head -n1 || true; }

if command -v sinfo >/dev/null && [[ "$(node_state)" == idle ]]; then
    log "Slurm already up: node $host idle"
    exit 0
fi

mkdir -p "$state"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge (apt-get)"
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$state/apt.log" 2>&1 \
        || { tail -n 30 "$state/apt.log" >&2; die "apt-get install slurm-wlm munge failed"; }
    log "installed in $((SECONDS - t0)) s"
fi

# Never overwrite a Slurm configuration this script did not write.
if [[ -e "$etc/slurm.conf" ]] && ! head -n1 "$etc/slurm.conf" | grep -q "^$marker"; then
    die "$etc/slurm.conf exists and was not written by this script; not touching it"
fi

mkdir -p "$state/ctld" "$state/spool" "$etc"

# slurmd -C prints the node line as Slurm sees the hardware, e.g.
# NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
hw="$(slurmd -C | head -n1)"
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus="$(field CPUs)"; mem="$(field RealMemory)"
[[ -n "$cpus" && -n "$mem" ]] || die "cannot parse 'slurmd -C': $hw"
# A job without --mem gets DefMemPerCPU per CPU; leave the node's memory
# evenly divided so that a default job fits next to the others.
def_mem="$((mem / cpus))"

render() {
    sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$state|g" \
        -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@D_PORT@|$d_port|g" \
        -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem|g" -e "s|@DEF_MEM@|$def_mem|g" \
        -e "s|@BOARDS@|$(field Boards)|g" -e "s|@SOCKETS@|$(field SocketsPerBoard)|g" \
        -e "s|@CORES@|$(field CoresPerSocket)|g" -e "s|@THREADS@|$(field ThreadsPerCore)|g" \
        "$1"
}
render "$here/slurm.conf.in" >"$etc/slurm.conf"
render "$here/gres.conf.in" >"$etc/gres.conf"
render "$here/cgroup.conf.in" >"$etc/cgroup.conf"
log "wrote $etc/slurm.conf (node $host: $cpus CPUs, $mem MB, 2 fake GPUs)"

# munge authenticates every Slurm RPC; it refuses to run as root.
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --force
    chown munge:munge /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged does not answer"
    cp /run/munge/munged.pid "$state/munged.pid"
    log "munged started"
fi

# Start fresh (-c: no saved jobs or node states from an earlier run).
slurmctld -c
slurmd -c
log "slurmctld and slurmd started; logs in $state"

t0=$SECONDS
until [[ "$(node_state)" == idle ]]; do
    dead=""
    for d in slurmctld slurmd; do
        kill -0 "$(cat "$state/$d.pid" 2>/dev/null || echo 0)" 2>/dev/null || dead+=" $d"
    done
    if [[ -n "$dead" ]] || ((SECONDS - t0 > timeout_s)); then
        [[ -n "$dead" ]] && log "daemon(s) died:$dead"
        log "node $host not idle after $timeout_s s (state: '$(node_state)')"
        tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
        exit 1
    fi
    sleep 1
done
log "Slurm up: node $host idle after $((SECONDS - t0)) s"
sinfo >&2
