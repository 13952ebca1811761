# One prepared shard per input ROOT file: scatter over files, gathered by training.


rule prepare:
    input:
        lambda w: sample_files(w.task, w.domain)[int(w.i)],
    output:
        directory(f"{RESULTS}/prepared/{{task}}_{{domain}}_{{i}}"),
    wildcard_constraints:
        task=TASK_RE,
        domain="sim|data",
        i=r"\d+",
    params:
        seed=SEED,
        tree=lambda w: config[w.task]["tree"],
        fields=lambda w: as_json(config[w.task]["fields"]),
        spec=lambda w: as_json(config[w.task]["representation"]),
        storage=lambda w: config[w.task]["storage"],
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/prepare_{{task}}_{{domain}}_{{i}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_{{task}}_{{domain}}_{{i}}.tsv"
    # N-subjettiness alongside the images, read-ahead and writing in threads; the shard is
    # the same bytes with any number (snakemake lowers it to --cores where that is less).
    threads: lambda w: prepare_threads(w.task)
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl prepare {wildcards.task} --input {input:q} --tree {params.tree:q} --output {output:q}"
        " --seed {params.seed} --domain {wildcards.domain} --fields {params.fields:q} --spec {params.spec:q}"
        " --storage {params.storage} --threads {threads} --no-progress > {log:q} 2>&1"
