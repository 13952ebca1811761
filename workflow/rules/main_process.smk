# What only the Snakemake process a user starts does (not the jobs' own snakemake on a cluster
# node): clear a stale lock left by a killed run, and stop the running jobs on Ctrl-C.
#
# Stale lock. Snakemake's lock (.snakemake/locks) records files, not its holder, so after a
# kill -9 it stays and the next run stops ("Directory cannot be locked"). Here every snakemake
# process of this folder, and every local job it starts (through the shell prefix), holds a
# shared flock on .snakemake/hepdl-run.lock while it lives; the kernel drops it when a process
# dies, however it dies. A new process that gets the flock exclusively knows that no earlier
# snakemake and none of its jobs still run, so a lock left in .snakemake/locks is stale and it
# removes it. Where the file system refuses flock, nothing is cleared (README: --unlock).
#
# Ctrl-C. Snakemake answers SIGINT by waiting for the running local jobs; a terminal's Ctrl-C
# reaches them too, `kill -INT` of snakemake alone does not. Here SIGINT sends the jobs SIGTERM:
# hepdl train writes a checkpoint at its next batch and stops, every other stage stops at once
# (hepdl's CLI removes its temporary files); then Snakemake's own handling goes on.
import fcntl
import glob
import shlex
import shutil
import signal

import psutil

RUN_LOCK = os.path.abspath(".snakemake/hepdl-run.lock")


def hold_run_lock():
    """Hold the shared run lock for this process's life; first clear Snakemake's lock if stale.
    Returns the open descriptor (None where the file system has no flock)."""
    try:
        os.makedirs(os.path.dirname(RUN_LOCK), exist_ok=True)
        fd = os.open(RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None  # e.g. a read-only checkout being linted: Snakemake says what it needs itself
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # another snakemake of this folder, or a job of one, still runs: its lock is live
        if glob.glob(os.path.join(os.path.dirname(RUN_LOCK), "locks", "*.lock")):
            print("hepdl workflow: .snakemake/locks is held: another snakemake in this folder, or a "
                  "job started by one that was stopped, still runs", file=sys.stderr)
    except OSError:
        os.close(fd)
        return None
    else:
        locks = os.path.join(os.path.dirname(RUN_LOCK), "locks")
        if glob.glob(os.path.join(locks, "*.lock")):
            shutil.rmtree(locks, ignore_errors=True)
            print("hepdl workflow: removed the stale lock .snakemake/locks (the snakemake that held "
                  "it and its jobs are gone)", file=sys.stderr)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def stop_jobs_then_interrupt(signum, frame):
    """SIGINT: SIGTERM to the jobs (the shells and the commands they run), then KeyboardInterrupt."""
    print("hepdl workflow: interrupted; stopping the running jobs (a training writes a checkpoint)",
          file=sys.stderr, flush=True)
    for shell_process in psutil.Process().children():
        for process in [shell_process, *shell_process.children()]:
            try:
                process.terminate()
            except psutil.Error:
                pass
    signal.default_int_handler(signum, frame)


def job_lock_prefix():
    """Shell prefix by which a local job (and all it starts) holds the shared run lock while it runs
    (braces doubled: Snakemake formats the prefix)."""
    lock = shlex.quote(RUN_LOCK).replace("{", "{{").replace("}", "}}")
    opening, closing = "{{", "}}"
    return (f"{opening} exec 9>>{lock}; {closing} 2>/dev/null"
            f" && {opening} flock -s -w 60 9 || true; {closing} 2>/dev/null || true; ")


if workflow.is_main_process:
    RUN_LOCK_FD = hold_run_lock()
    signal.signal(signal.SIGINT, stop_jobs_then_interrupt)
