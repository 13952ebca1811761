# Event-level inputs (config/events.yaml): whole generated events -> one entry per jet with a
# GenPart truth label (hepdl jets-from-events) -> the jets task as usual -> the scores of
# events.score_model back per event, a friend tree aligned with the FatJet collection.


rule generate_events:
    output:
        f"{RESULTS}/samples/events_{{domain}}_{{chunk}}.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        # its own seeds: an event sample never repeats a per-jet sample's events
        seed=lambda w: chunk_seed("jets", w.domain, w.chunk) + 500,
        gen=config["jets"]["generate"],
        ev=EVENTS,
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/generate_events_{{domain}}_{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate_events_{{domain}}_{{chunk}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "hepdl generate jets --layout events --variant {wildcards.domain} --signal {params.gen[signal]}"
        " --n-signal {params.ev[n_signal_events_per_chunk]} --n-background {params.ev[n_background_events_per_chunk]}"
        " --pt-min {params.gen[pt_min]} --pt-max {params.gen[pt_max]}"
        " --seed {params.seed} -o {output} > {log} 2>&1"


rule jets_from_events:
    input:
        f"{RESULTS}/samples/events_{{domain}}_{{chunk}}.root",
    output:
        f"{RESULTS}/events/jets_{{domain}}_{{chunk}}.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        ev=EVENTS,
        constituents=quoted(EVENTS["constituents"]),
        links=f"--links {EVENTS['links']}" if EVENTS["links"] else f"--dr {EVENTS['dr']}",
        mothers=" ".join(str(m) for m in EVENTS["mothers"]),
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/jets_from_events_{{domain}}_{{chunk}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "hepdl jets-from-events {input:q} --tree Events --jets {params.ev[jets]} --output {output:q}"
        " --pt-min {params.ev[pt_min]} --eta-max {params.ev[eta_max]} --leading {params.ev[leading]}"
        " --constituents {params.constituents} {params.links}"
        " --truth {params.ev[truth]} --mothers {params.mothers} --truth-dr {params.ev[truth_dr]} > {log:q} 2>&1"


rule score_event_jets:
    input:
        model=f"{RESULTS}/jets/{EVENTS['score_model']}/model.pt",
        jets=f"{RESULTS}/events/jets_{{domain}}_{{chunk}}.root",
    output:
        f"{RESULTS}/events/scores/jets_{{domain}}_{{chunk}}.scores.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        device=config["device"],
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/score_event_jets_{{domain}}_{{chunk}}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "hepdl score {input.model:q} {input.jets:q} -o {params.outdir:q} --device {params.device} --threads {threads} > {log:q} 2>&1"


rule scores_to_events:
    input:
        jets=f"{RESULTS}/events/jets_{{domain}}_{{chunk}}.root",
        scores=f"{RESULTS}/events/scores/jets_{{domain}}_{{chunk}}.scores.root",
        events=f"{RESULTS}/samples/events_{{domain}}_{{chunk}}.root",
    output:
        f"{RESULTS}/events/scores/events_{{domain}}_{{chunk}}.scores.root",
    wildcard_constraints:
        domain="sim|data",
        chunk=r"\d+",
    params:
        collection=EVENTS["jets"],
    conda:
        HEPDL_CONDA_ENV
    container:
        HEPDL_CONTAINER
    log:
        f"{RESULTS}/logs/scores_to_events_{{domain}}_{{chunk}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "hepdl scores-to-events --jets-file {input.jets:q} --scores {input.scores:q} --events {input.events:q}"
        " --tree Events --collection {params.collection} --output {output:q} > {log:q} 2>&1"
