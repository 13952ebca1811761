# Paths and per-task input lists shared by every rule family.
import json

RESULTS = config["results"]
TASKS = config["tasks"]
SEED = config["seed"]


def user_files(task, domain):
    """The user's own files for a task (sim or data), or [] when the sample is generated."""
    return config[task][domain]


def sample_files(task, domain):
    """The ROOT files a task reads for one domain: the user's, or the generated chunks."""
    if user_files(task, domain):
        return user_files(task, domain)
    gen = config[task]["generate"]
    n = gen["chunks"] if domain == "sim" else gen["data_chunks"]
    return [f"{RESULTS}/samples/{task}_{domain}_{i}.root" for i in range(n)]


def chunk_seed(task, domain, chunk):
    """Each generation job gets its own seed, derived from the config's."""
    offset = {"jets": 0, "neutrino": 500}[task] + {"sim": 0, "data": 1000}[domain]
    return SEED * 10_000 + offset + int(chunk)


def final_outputs():
    out = []
    for task in TASKS:
        for domain in ("sim", "data"):
            out += sample_files(task, domain)
    return out
