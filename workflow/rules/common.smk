# Paths, the tasks' model blocks and helpers shared by every rule family. Everything a rule
# knows about a task comes from its declaration (hepdl.tasks) and its config section.
import glob
import json
import re
import shlex

from hepdl.config import NETWORK_WORKFLOW_KEYS
from hepdl.evaluate.task_plots import plot_files as task_plot_files
from hepdl.represent.representations import task_representations
from hepdl.tasks import get_task
from hepdl.train.objectives import objective_class

RESULTS = config["results"]
TASKS = config["tasks"]
EVENTS = config["events"]
SEED = config["seed"]
DOMAINS = ("sim", "data")

# Every rule's software: the conda environment (path relative to the rule files) and the
# Apptainer image, used with --software-deployment-method conda / apptainer (README, "Clusters").
# Without either, jobs run the hepdl of the environment Snakemake runs in.
HEPDL_CONDA_ENV = "../envs/hepdl.yaml"
HEPDL_CONTAINER = os.environ.get("HEPDL_CONTAINER", "hepdl.sif")


def as_json(value):
    return json.dumps(value, sort_keys=True)


def quoted(paths):
    return " ".join(shlex.quote(str(p)) for p in paths)


def alternatives(names):
    """A wildcard regex matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in sorted(set(names))) or "(?!)"


# --------------------------------------------------------------------------- input files


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
    if events_mode(task):
        return [f"{RESULTS}/events/jets_{domain}_{i}.root" for i in range(event_chunks(domain))]
    gen = config[task]["generate"]
    n = gen["chunks"] if domain == "sim" else gen["data_chunks"]
    return [f"{RESULTS}/samples/{task}_{domain}_{i}.root" for i in range(n)]


def has_data(task):
    """A data sample exists: generated, or the user's (event-level inputs: only with events.data)."""
    if events_mode(task) and not config[task]["data"]:
        return config["events"]["data"]
    return bool(config[task]["data"]) or not config[task]["sim"]


def event_chunks(domain):
    """Generated event-level files per domain (as many as jets.generate's per-jet files)."""
    gen = config["jets"]["generate"]
    return gen["chunks"] if domain == "sim" else gen["data_chunks"]


def event_score_files():
    """The per-event score friends of config/events.yaml's path ([] unless events.enabled)."""
    if "jets" not in TASKS or not events_mode("jets"):
        return []
    domains = ("sim", "data") if has_data("jets") else ("sim",)
    return [f"{RESULTS}/events/scores/events_{d}_{i}.scores.root" for d in domains for i in range(event_chunks(d))]


def events_mode(task):
    """The jets task reads jets exploded from generated event-level files (config/events.yaml)."""
    return task == "jets" and config["events"]["enabled"] and not config[task]["sim"]


def shards(task, domain):
    """One prepared shard directory per input file."""
    return [f"{RESULTS}/prepared/{task}_{domain}_{i}" for i in range(len(sample_files(task, domain)))]


def chunk_seed(task, domain, chunk):
    """Each generation job gets its own seed, derived from the config's."""
    offset = get_task(task).generation_seed_offset + {"sim": 0, "data": 1000}[domain]
    return SEED * 10_000 + offset + int(chunk)


def prepare_threads(task):
    """Threads of a prepare job: two where a representation runs in the background (N-subjettiness)."""
    return 2 if any(rep.concurrent for rep in task_representations(get_task(task))) else 1


# --------------------------------------------------------------------------- model blocks


def blocks(task):
    """The task's model blocks by name (null blocks dropped), in config order."""
    return {name: b for name, b in config[task]["models"].items() if b is not None}


def block(task, name):
    try:
        return blocks(task)[name]
    except KeyError:
        raise WorkflowError(f"config key {task}.models: no model block {name!r} (blocks: {sorted(blocks(task))})") from None


def is_xgboost(b):
    return "xgboost" in b


def evaluated(task):
    return [n for n, b in blocks(task).items() if b.get("evaluate", True)]


def network_names(task):
    return [n for n, b in blocks(task).items() if not is_xgboost(b)]


def xgboost_names(task):
    return [n for n, b in blocks(task).items() if is_xgboost(b)]


def feature_sources(task):
    """Autoencoder blocks whose feature shards an XGBoost block reads."""
    return [b["features_of"] for b in blocks(task).values() if is_xgboost(b) and b.get("features_of")]


for _task in TASKS:
    _nets = set(network_names(_task))
    for _other in TASKS:
        _clash = _nets & set(xgboost_names(_other))
        if _clash:
            raise WorkflowError(f"config key {_task}.models / {_other}.models: {sorted(_clash)[0]!r} is a network "
                                "in one task and an XGBoost in the other; give them distinct names")
    for _source in feature_sources(_task):
        if _source not in _nets:
            raise WorkflowError(f"config key {_task}.models: features_of {_source!r} is not a network block")
    if config[_task]["reweight"] != "none" and not get_task(_task).kinematics:
        raise WorkflowError(f"config key {_task}.reweight: the task has no kinematics to reweight")

TASK_RE = alternatives(TASKS)
NETWORK_RE = alternatives(n for t in TASKS for n in network_names(t))
XGBOOST_RE = alternatives(n for t in TASKS for n in xgboost_names(t))
FEATURES_RE = alternatives(n for t in TASKS for n in feature_sources(t))
BINARY_RE = alternatives(t for t in TASKS if get_task(t).metrics == "binary")
MULTICLASS_RE = alternatives(t for t in TASKS if get_task(t).metrics == "multiclass")
EVALUATED_RE = alternatives(n for t in TASKS for n in evaluated(t))


def reweight(task, name):
    """A block's reweighting: its own, else the task's."""
    return block(task, name).get("reweight", config[task]["reweight"])


def evaluation_reweight(task):
    """Evaluation weights the background to the signal's pT whenever the task's training reweights."""
    return "none" if config[task]["reweight"] == "none" else "pt"


def training_settings(task, name, b=None):
    """The hepdl.train.TrainSettings of a network block, as JSON: the block less the workflow's keys,
    with the task's reweighting unless the block sets its own."""
    b = block(task, name) if b is None else b
    settings = {k: v for k, v in b.items() if k not in NETWORK_WORKFLOW_KEYS}
    return as_json({"reweight": config[task]["reweight"], **settings})


def resource(task, name, key):
    """A block's resources: its own, else the defaults of its kind."""
    xgb = is_xgboost(block(task, name))
    defaults = {"threads": 2, "gpu": 0 if xgb else 1, "mem_mb": 3000 if xgb else 6000, "runtime": 60 if xgb else 240}
    return (block(task, name).get("resources") or {}).get(key, defaults[key])


def training_launcher(task, name):
    """``hepdl``, or for a block with N > 1 GPUs ``torchrun`` starting N data-parallel processes in the job."""
    gpus = resource(task, name, "gpu")
    return "hepdl" if gpus <= 1 else f"torchrun --standalone --nproc_per_node={gpus} -m hepdl.cli"


def uses_data_sample(task, name):
    return objective_class(block(task, name).get("objective", "classify")).uses_data_sample


def training_shards(task, name):
    """The shards a network trains on: the simulation's, and the data's with train_on_data."""
    domains = ("sim", "data") if block(task, name).get("train_on_data") else ("sim",)
    return [s for domain in domains for s in shards(task, domain)]


def data_sample_shards(task, name):
    """An adapting block's data sample (its train split joins training unlabelled)."""
    if not uses_data_sample(task, name):
        return []
    if not has_data(task):
        raise WorkflowError(f"config key {task}.models.{name}: objective {block(task, name)['objective']!r} needs a "
                            f"data sample; give {task}.data")
    return shards(task, "data")


def test_scores(task, name):
    return f"{RESULTS}/{task}/{name}/test_scores.npz"


def xgboost_shards(task, name):
    """The shards an XGBoost block reads: the prepared ones, or an autoencoder's feature shards."""
    source = block(task, name).get("features_of")
    if not source:
        return shards(task, "sim")
    return [f"{RESULTS}/{task}/{source}/features/{os.path.basename(s)}" for s in shards(task, "sim")]


def xgboost_inputs(task, name):
    """What an XGBoost job waits for: the prepared shards, or the autoencoder's feature-shard directory."""
    source = block(task, name).get("features_of")
    return [f"{RESULTS}/{task}/{source}/features"] if source else shards(task, "sim")


def label_efficiency(task):
    study = config[task]["label_efficiency"]
    if not study:
        raise WorkflowError(f"config key {task}.label_efficiency: no study configured")
    return study


# --------------------------------------------------------------------------- results


def metric_files():
    files = []
    for task in TASKS:
        files += [f"{RESULTS}/{task}/evaluation/{m}.json" for m in evaluated(task)]
        if config[task]["label_efficiency"]:
            files += [f"{RESULTS}/{task}/evaluation/label_efficiency.json"]
        if config[task]["domain"] and has_data(task):
            files += [f"{RESULTS}/{task}/evaluation/domain/domain.json"]
    return files


def plot_files():
    return [f"{RESULTS}/{task}/evaluation/{f}" for task in TASKS for f in task_plot_files(get_task(task))]
