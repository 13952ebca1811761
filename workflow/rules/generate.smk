# Embedded default samples: one job per chunk, each with its own derived seed.


rule generate_jets:
    output:
        f"{RESULTS}/samples/jets_{{domain}}_{{chunk}}.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        seed=lambda w: chunk_seed("jets", w.domain, w.chunk),
        gen=config["jets"]["generate"],
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/generate_jets_{{domain}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate_jets_{{domain}}_{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "hepdl generate jets --variant {wildcards.domain} --signal {params.gen[signal]}"
        " --n-signal {params.gen[n_signal_per_chunk]} --n-background {params.gen[n_background_per_chunk]}"
        " --pt-min {params.gen[pt_min]} --pt-max {params.gen[pt_max]}"
        " --seed {params.seed} -o {output:q} > {log:q} 2>&1"


rule generate_neutrino:
    output:
        f"{RESULTS}/samples/neutrino_{{domain}}_{{chunk}}.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        seed=lambda w: chunk_seed("neutrino", w.domain, w.chunk),
        gen=config["neutrino"]["generate"],
        nutau=lambda w: "--nutau" if config["neutrino"]["generate"]["nutau"] else "",
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/generate_neutrino_{{domain}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate_neutrino_{{domain}}_{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "hepdl generate neutrino --variant {wildcards.domain} --n-events {params.gen[n_events_per_chunk]}"
        " {params.nutau} --seed {params.seed} -o {output:q} > {log:q} 2>&1"
