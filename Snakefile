# hepdl workflow: generate (or take the user's ROOT files), prepare, train, evaluate, report.
# Run: snakemake --cores all [--configfile my.yaml]; see README.md and config/README.md.
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from hepdl.config import validate_config
from hepdl.errors import ConfigError

min_version("9.0")


configfile: "config/config.yaml"


# The schema is composed from hepdl's declarations (tasks, representations, training settings,
# models), so the config is validated by hepdl itself: a mistyped key fails here, at -n.
try:
    config.update(validate_config(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

include: "workflow/rules/main_process.smk"

# Every stage that draws reads the plot style from the environment (hepdl.figures): jobs run
# here inherit it, and batch jobs, which read this file again, set it the same way.
os.environ.update(HEPDL_PLOT_STYLE=config["plots"]["style"], HEPDL_PLOT_LABEL=config["plots"]["label"])

include: "workflow/rules/common.smk"

# Jobs run `hepdl` through the shell. Without a conda environment or container, put the
# interpreter that runs Snakemake (the venv hepdl is installed in) first on PATH, so that local
# and batch jobs find it; local jobs also hold the run lock (main_process.smk).
_prefix = job_lock_prefix() if workflow.is_main_process else ""
if not workflow.deployment_settings.deployment_method:
    _prefix += f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
shell.prefix(_prefix)

include: "workflow/rules/generate.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/autoencode.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/events.smk"


rule all:
    input:
        f"{RESULTS}/summary.json",
        plot_files(),
        event_score_files(),
    default_target: True
