# Paths, per-task input lists and helpers shared by every rule family.
import glob
import json

RESULTS = config["results"]
TASKS = config["tasks"]
SEED = config["seed"]
NEUTRINO_CLASSES = ["numu_cc", "nue_cc", "nc"] + (["nutau_cc"] if config["neutrino"]["generate"]["nutau"] else [])


def user_files(task, domain):
    """The user's own files for a task (sim or data), globs expanded in order; [] when generated."""
    files = []
    for pattern in config[task][domain]:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise WorkflowError(f"config key {task}.{domain}: no file matches {pattern!r}")
        files += matches
    return files


def sample_files(task, domain):
    """The ROOT files a task reads for one domain: the user's, or the generated chunks."""
    if config[task][domain]:
        return user_files(task, domain)
    gen = config[task]["generate"]
    n = gen["chunks"] if domain == "sim" else gen["data_chunks"]
    return [f"{RESULTS}/samples/{task}_{domain}_{i}.root" for i in range(n)]


def shards(task, domain):
    """One prepared shard directory per input file."""
    return [f"{RESULTS}/prepared/{task}_{domain}_{i}" for i in range(len(sample_files(task, domain)))]


def field_mapping(task):
    """The config's mapping, as the JSON that `hepdl prepare --fields` takes (identity by default)."""
    return json.dumps(config[task]["fields"])


def as_json(value):
    return json.dumps(value, sort_keys=True)


def jet_classifier_settings(name):
    """A jet classifier's training settings, with the task's pT reweighting unless the model sets its own."""
    return as_json({"reweight": config["jets"]["reweight"], **config["jets"][name]})


# Evaluation weights the background to the signal's pT whenever training reweights.
JET_EVAL_REWEIGHT = "none" if config["jets"]["reweight"] == "none" else "pt"


def chunk_seed(task, domain, chunk):
    """Each generation job gets its own seed, derived from the config's."""
    offset = {"jets": 0, "neutrino": 500}[task] + {"sim": 0, "data": 1000}[domain]
    return SEED * 10_000 + offset + int(chunk)


JET_MODELS = ["cnn", "expert_bdt", "mass_bdt", "expert_mlp", "track_rnn", "combined", "ae_xgboost", "ae_anomaly"]
NEUTRINO_MODELS = ["cvn", "baseline_bdt"]


def jet_scores(model):
    return f"{RESULTS}/jets/{model}/test_scores.npz"


def nu_scores(model, split="test"):
    return f"{RESULTS}/neutrino/{model}/{split}_scores.npz"


def metric_files():
    files = []
    if "jets" in TASKS:
        files += [f"{RESULTS}/jets/evaluation/{m}.json" for m in JET_MODELS]
        files += [f"{RESULTS}/jets/evaluation/pretrained_cnn.json"]
    if "neutrino" in TASKS:
        files += [f"{RESULTS}/neutrino/evaluation/{m}.json" for m in NEUTRINO_MODELS]
    for task in TASKS:
        if config[task]["data"] or not config[task]["sim"]:  # a data sample exists: generated or the user's
            files += [f"{RESULTS}/{task}/evaluation/domain/domain.json"]
    return files


def train_shell():
    return (
        "hepdl train --shards {input.shards} --output {params.outdir} --settings {params.settings:q}"
        " --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"
    )
