# Training: one generic rule per kind of model block (network, XGBoost), for every task; the
# blocks come from the config (<task>.models). Network rules ask for a GPU on a cluster
# (resources gpu, request_gpus); locally the engine picks CUDA, MPS or CPU. A block with
# resources gpu: N > 1 trains data-parallel: torchrun starts N processes inside the one job.
# A network's job resumes its own checkpoint when rerun with the same settings and inputs.


rule train_network:
    input:
        shards=lambda w: training_shards(w.task, w.model),
        data=lambda w: data_sample_shards(w.task, w.model),
    output:
        model=f"{RESULTS}/{{task}}/{{model}}/model.pt",
        scores=f"{RESULTS}/{{task}}/{{model}}/test_scores.npz",
        val_scores=f"{RESULTS}/{{task}}/{{model}}/val_scores.npz",
        curve=report(f"{RESULTS}/{{task}}/{{model}}/training_curve.png", category="{task}", subcategory="Training"),
    wildcard_constraints:
        task=TASK_RE,
        model=NETWORK_RE,
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output.model),
        settings=lambda w: training_settings(w.task, w.model),
        device=lambda w: block(w.task, w.model).get("device", config["device"]),
        data=lambda w, input: f"--data-shards {quoted(input.data)}" if input.data else "",
        launcher=lambda w: training_launcher(w.task, w.model),
        process_threads=lambda w, threads: max(1, threads // max(1, resource(w.task, w.model, "gpu"))),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/train_{{task}}_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_{{task}}_{{model}}.tsv"
    threads: lambda w: resource(w.task, w.model, "threads")
    resources:
        mem_mb=lambda w: resource(w.task, w.model, "mem_mb"),
        runtime=lambda w: resource(w.task, w.model, "runtime"),
        gpu=lambda w: resource(w.task, w.model, "gpu"),
        request_gpus=lambda w: resource(w.task, w.model, "gpu"),
    # --resume-if-unchanged: a pre-empted or interrupted job continues from its checkpoint (the
    # output directory's checkpoint.pt, not an output, so Snakemake does not delete it);
    # --log-file (not --log: torchrun takes that as an abbreviation of its own --log-dir): the full log to the file, one line per epoch to the console
    shell:
        "{params.launcher} train --shards {input.shards:q} {params.data} --output {params.outdir:q}"
        " --settings {params.settings:q} --seed {params.seed} --device {params.device:q}"
        " --threads {params.process_threads} --resume-if-unchanged"
        " --log-file {log:q} --name {wildcards.task}/{wildcards.model}"


rule train_xgboost:
    input:
        lambda w: xgboost_inputs(w.task, w.model),
    output:
        model=f"{RESULTS}/{{task}}/{{model}}/bdt.json",
        scores=f"{RESULTS}/{{task}}/{{model}}/test_scores.npz",
        val_scores=f"{RESULTS}/{{task}}/{{model}}/val_scores.npz",
    wildcard_constraints:
        task=TASK_RE,
        model=XGBOOST_RE,
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output.model),
        shards=lambda w: quoted(xgboost_shards(w.task, w.model)),
        xgb=lambda w: block(w.task, w.model)["xgboost"],
        arrays=lambda w: quoted(block(w.task, w.model)["xgboost"]["arrays"]),
        features=lambda w: (
            f"--features {quoted(block(w.task, w.model)['xgboost']['features'])}"
            if block(w.task, w.model)["xgboost"]["features"]
            else ""
        ),
        reweight=lambda w: reweight(w.task, w.model),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/train_{{task}}_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_{{task}}_{{model}}.tsv"
    threads: lambda w: resource(w.task, w.model, "threads")
    resources:
        mem_mb=lambda w: resource(w.task, w.model, "mem_mb"),
        runtime=lambda w: resource(w.task, w.model, "runtime"),
    shell:
        "hepdl bdt --shards {params.shards} --array {params.arrays} {params.features} --output {params.outdir:q}"
        " --reweight {params.reweight} --seed {params.seed} --threads {threads}"
        " --n-estimators {params.xgb[n_estimators]} --max-depth {params.xgb[max_depth]}"
        " --learning-rate {params.xgb[learning_rate]} --early-stopping {params.xgb[early_stopping]} > {log:q} 2>&1"
