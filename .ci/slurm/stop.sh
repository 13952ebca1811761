#!/usr/bin/env bash
# Stop the one-node Slurm that .ci/slurm/start.sh started: cancel leftover jobs,
# stop slurmd, slurmctld and munged by the pids they recorded, and remove the
# configuration start.sh wrote. Leaves the installed packages in place.
# HEPDL_SLURM_KEEP_STATE=1 keeps the state directory (daemon logs) for inspection.
set -uo pipefail

state="${HEPDL_SLURM_STATE:-/tmp/hepdl-slurm}"
etc=/etc/slurm
marker="# hepdl-ci:"

log() { echo "[slurm/stop] $*" >&2; }

ours=0
[[ -e "$etc/slurm.conf" ]] && head -n1 "$etc/slurm.conf" | grep -q "^$marker" && ours=1

if ((ours)) && command -v scancel >/dev/null; then
    scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
fi

stop_pidfile() {  # name pidfile
    local name="$1" pidfile="$2" pid
    [[ -s "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

stop_pidfile slurmd "$state/slurmd.pid"
stop_pidfile slurmctld "$state/slurmctld.pid"
# munged only if start.sh started it (it copies the pid file into the state dir).
stop_pidfile munged "$state/munged.pid"

if ((ours)); then
    rm -f "$etc/slurm.conf" "$etc/gres.conf" "$etc/cgroup.conf"
    log "removed $etc/{slurm,gres,cgroup}.conf"
fi
if [[ "${HEPDL_SLURM_KEEP_STATE:-0}" != 1 ]]; then
    rm -rf "$state"
fi
exit 0
