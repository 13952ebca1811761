# Domain adaptation: a domain-adversarial CNN trained on labelled sim and unlabelled data,
# compared with the plain CNN on both samples.


rule train_jet_dann:
    input:
        shards=shards("jets", "sim"),
        data=shards("jets", "data"),
    output:
        model=f"{RESULTS}/jets/dann/model.pt",
        scores=f"{RESULTS}/jets/dann/test_scores.npz",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=as_json(config["jets"]["dann"]),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_jet_dann.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_dann.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        "hepdl train --shards {input.shards} --data-shards {input.data} --output {params.outdir}"
        " --settings {params.settings:q} --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate_domain:
    input:
        cnn=f"{RESULTS}/jets/cnn/model.pt",
        dann=f"{RESULTS}/jets/dann/model.pt",
        shards=shards("jets", "sim"),
        data=shards("jets", "data"),
    output:
        metrics=f"{RESULTS}/jets/evaluation/domain/domain.json",
        plot=report(f"{RESULTS}/jets/evaluation/domain/domain_scores.png", category="Jets", subcategory="Domain adaptation"),
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{RESULTS}/logs/evaluate_domain.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "hepdl domain evaluate --models cnn={input.cnn} dann={input.dann} --sim-shards {input.shards}"
        " --data-shards {input.data} --task jets --output {params.outdir} --seed {params.seed} > {log} 2>&1"
