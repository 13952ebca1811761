# One prepared shard per input ROOT file: scatter over files, gathered by training.


rule prepare_jets:
    input:
        lambda w: sample_files("jets", w.domain)[int(w.i)],
    output:
        directory(f"{RESULTS}/prepared/jets_{{domain}}_{{i}}"),
    wildcard_constraints:
        domain="sim|data",
        i=r"\d+",
    params:
        seed=SEED,
        tree=config["jets"]["tree"],
        fields=field_mapping("jets"),
        spec=as_json(config["jets"]["representation"]),
    log:
        f"{RESULTS}/logs/prepare_jets_{{domain}}_{{i}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_jets_{{domain}}_{{i}}.tsv"
    # N-subjettiness alongside the images, read-ahead and writing in threads; the shard is
    # the same bytes with any number (snakemake lowers it to --cores where that is less).
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl prepare jets --input {input} --tree {params.tree} --output {output} --seed {params.seed}"
        " --domain {wildcards.domain} --fields {params.fields:q} --spec {params.spec:q} --threads {threads}"
        " --no-progress > {log} 2>&1"


rule prepare_neutrino:
    input:
        lambda w: sample_files("neutrino", w.domain)[int(w.i)],
    output:
        directory(f"{RESULTS}/prepared/neutrino_{{domain}}_{{i}}"),
    wildcard_constraints:
        domain="sim|data",
        i=r"\d+",
    params:
        seed=SEED,
        tree=config["neutrino"]["tree"],
        fields=field_mapping("neutrino"),
        spec=as_json(config["neutrino"]["representation"]),
    log:
        f"{RESULTS}/logs/prepare_neutrino_{{domain}}_{{i}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_neutrino_{{domain}}_{{i}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl prepare neutrino --input {input} --tree {params.tree} --output {output} --seed {params.seed}"
        " --domain {wildcards.domain} --fields {params.fields:q} --spec {params.spec:q} --no-progress"
        " > {log} 2>&1"
