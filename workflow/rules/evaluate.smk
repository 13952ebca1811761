# Evaluation: each evaluated model by its task's metric family, the task-level plots its
# declaration names, the sim-vs-data comparison, and results/summary.json gathering them all.


rule evaluate_binary:
    input:
        scores=f"{RESULTS}/{{task}}/{{model}}/test_scores.npz",
    output:
        metrics=f"{RESULTS}/{{task}}/evaluation/{{model}}.json",
        plot=report(f"{RESULTS}/{{task}}/evaluation/scores_{{model}}.png", category="{task}", subcategory="Scores"),
    wildcard_constraints:
        task=BINARY_RE,
        model=EVALUATED_RE,
    params:
        outdir=lambda w, output: os.path.dirname(output.metrics),
        reweight=lambda w: evaluation_reweight(w.task),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/evaluate_{{task}}_{{model}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "hepdl evaluate binary --task {wildcards.task} --scores {input.scores:q} --names {wildcards.model}"
        " --output {params.outdir:q} --reweight {params.reweight} --no-roc > {log:q} 2>&1"


rule evaluate_multiclass:
    input:
        scores=f"{RESULTS}/{{task}}/{{model}}/test_scores.npz",
        val_scores=f"{RESULTS}/{{task}}/{{model}}/val_scores.npz",
    output:
        metrics=f"{RESULTS}/{{task}}/evaluation/{{model}}.json",
        plot=report(f"{RESULTS}/{{task}}/evaluation/confusion_{{model}}.png", category="{task}", subcategory="Confusion"),
    wildcard_constraints:
        task=MULTICLASS_RE,
        model=EVALUATED_RE,
    params:
        outdir=lambda w, output: os.path.dirname(output.metrics),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/evaluate_{{task}}_{{model}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "hepdl evaluate multiclass --task {wildcards.task} --scores {input.scores:q} --val-scores {input.val_scores:q}"
        " --names {wildcards.model} --output {params.outdir:q} > {log:q} 2>&1"


# The task-level plots: one rule per task, whose outputs its declaration names (the plots of
# every evaluated model; an event display shows the first model's scores).
for _task in TASKS:

    rule:
        name:
            f"plots_{_task}"
        input:
            scores=[test_scores(_task, m) for m in evaluated(_task)],
            shards=shards(_task, "sim"),
        output:
            [report(f, category=_task, subcategory="Evaluation") for f in plot_files() if f.startswith(f"{RESULTS}/{_task}/")],
        params:
            task=_task,
            names=" ".join(evaluated(_task)),
            reweight=evaluation_reweight(_task),
            outdir=lambda w, output: os.path.dirname(output[0]),
        conda:
            HEPDL_CONDA_ENV
        container:
            HEPDL_CONTAINER
        log:
            f"{RESULTS}/logs/plots_{_task}.log",
        threads: 1
        resources:
            mem_mb=3000,
            runtime=30,
        shell:
            "hepdl evaluate plots --task {params.task} --shards {input.shards:q} --scores {input.scores:q}"
            " --names {params.names} --reweight {params.reweight} --output {params.outdir:q} > {log:q} 2>&1"


rule evaluate_domain:
    input:
        models=lambda w: [f"{RESULTS}/{w.task}/{m}/model.pt" for m in config[w.task]["domain"].values()],
        shards=lambda w: shards(w.task, "sim"),
        data=lambda w: shards(w.task, "data"),
    output:
        metrics=f"{RESULTS}/{{task}}/evaluation/domain/domain.json",
        plot=report(f"{RESULTS}/{{task}}/evaluation/domain/domain_scores.png", category="{task}",
                    subcategory="Domain adaptation"),
    wildcard_constraints:
        task=TASK_RE,
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output.metrics),
        models=lambda w, input: quoted(f"{name}={path}" for name, path in zip(config[w.task]["domain"], input.models)),
        reweight=lambda w: evaluation_reweight(w.task),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/evaluate_domain_{{task}}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "hepdl evaluate domain --models {params.models} --sim-shards {input.shards:q} --data-shards {input.data:q}"
        " --reweight {params.reweight} --output {params.outdir:q} --seed {params.seed} > {log:q} 2>&1"


rule summary:
    input:
        metric_files(),
    output:
        report(f"{RESULTS}/summary.json", category="Summary"),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "hepdl summary {input:q} -o {output:q} > {log:q} 2>&1"
