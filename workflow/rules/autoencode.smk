# Autoencoders beyond their training (a network block like any other): feature shards for the
# XGBoost blocks that read them (features_of), and the label-efficiency study of pre-training.


rule autoencoder_features:
    input:
        model=f"{RESULTS}/{{task}}/{{ae}}/model.pt",
        shards=lambda w: shards(w.task, "sim"),
    output:
        # one feature shard per prepared shard (each directory is renamed into place whole)
        features=directory(f"{RESULTS}/{{task}}/{{ae}}/features"),
        images=report(f"{RESULTS}/{{task}}/{{ae}}/plots/ae_average_images.png", category="{task}", subcategory="Autoencoder"),
        latent=report(f"{RESULTS}/{{task}}/{{ae}}/plots/ae_latent_pca.png", category="{task}", subcategory="Autoencoder"),
        errors=report(f"{RESULTS}/{{task}}/{{ae}}/plots/ae_reconstruction_error.png", category="{task}", subcategory="Autoencoder"),
    wildcard_constraints:
        task=TASK_RE,
        ae=FEATURES_RE,
    params:
        plots=lambda w, output: os.path.dirname(output.images),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/features_{{task}}_{{ae}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features_{{task}}_{{ae}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "hepdl features --model {input.model:q} --shards {input.shards:q} --output {output.features:q}"
        " --plots {params.plots:q} --threads {threads} --no-progress > {log:q} 2>&1"


rule label_efficiency:
    input:
        ae=lambda w: f"{RESULTS}/{w.task}/{label_efficiency(w.task)['autoencoder']}/model.pt",
        shards=lambda w: shards(w.task, "sim"),
    output:
        metrics=f"{RESULTS}/{{task}}/evaluation/label_efficiency.json",
        plot=report(f"{RESULTS}/{{task}}/evaluation/label_efficiency.png", category="{task}", subcategory="Autoencoder"),
    wildcard_constraints:
        task=TASK_RE,
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output.metrics),
        runs=lambda w: f"{RESULTS}/{w.task}/label_efficiency",
        settings=lambda w: training_settings(w.task, None, label_efficiency(w.task)["cnn"]),
        sizes=lambda w: " ".join(map(str, label_efficiency(w.task)["sizes"])),
        study=lambda w: label_efficiency(w.task),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/label_efficiency_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/label_efficiency_{{task}}.tsv"
    threads: lambda w: (label_efficiency(w.task).get("resources") or {}).get("threads", 2)
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=lambda w: (label_efficiency(w.task).get("resources") or {}).get("gpu", 1),
        request_gpus=lambda w: (label_efficiency(w.task).get("resources") or {}).get("gpu", 1),
    shell:
        "hepdl label-efficiency --shards {input.shards:q} --settings {params.settings:q} --ae-model {input.ae:q}"
        " --sizes {params.sizes} --min-steps {params.study[min_steps]} --repeats {params.study[repeats]}"
        " --output {params.outdir:q} --runs {params.runs:q} --name {params.study[name]:q} --seed {params.seed}"
        " --threads {threads} > {log:q} 2>&1"
