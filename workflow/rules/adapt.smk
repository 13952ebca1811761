# Domain adaptation: a domain-adversarial network trained on labelled sim and unlabelled data,
# compared with the plain network on both samples: the jet CNN, and the neutrino CVN.


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
        settings=jet_classifier_settings("dann"),
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


rule train_nu_dann:
    input:
        shards=shards("neutrino", "sim"),
        data=shards("neutrino", "data"),
    output:
        model=f"{RESULTS}/neutrino/dann/model.pt",
        scores=f"{RESULTS}/neutrino/dann/test_scores.npz",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=as_json(config["neutrino"]["dann"]),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_nu_dann.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_nu_dann.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        "hepdl train --shards {input.shards} --data-shards {input.data} --output {params.outdir}"
        " --settings {params.settings:q} --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"


# The plain network of each task is called "cnn" in domain.json (the CVN is the neutrino CNN),
# so jets.domain and neutrino.domain carry the same keys: cnn_data_auc, dann_data_auc, ...
PLAIN_NETWORK = {"jets": "cnn", "neutrino": "cvn"}
# The score whose working point and AUC are compared: W jets; nu_e CC among the neutrino classes.
SIGNAL_CLASS = {"jets": 1, "neutrino": 1}


rule evaluate_domain:
    input:
        cnn=lambda w: f"{RESULTS}/{w.task}/{PLAIN_NETWORK[w.task]}/model.pt",
        dann=f"{RESULTS}/{{task}}/dann/model.pt",
        shards=lambda w: shards(w.task, "sim"),
        data=lambda w: shards(w.task, "data"),
    output:
        metrics=f"{RESULTS}/{{task}}/evaluation/domain/domain.json",
        plot=report(f"{RESULTS}/{{task}}/evaluation/domain/domain_scores.png", category="Domain adaptation",
                    subcategory="{task}"),
    wildcard_constraints:
        task="jets|neutrino",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        signal_class=lambda w: SIGNAL_CLASS[w.task],
        reweight=lambda w: JET_EVAL_REWEIGHT if w.task == "jets" else "none",
    log:
        f"{RESULTS}/logs/evaluate_domain_{{task}}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "hepdl domain evaluate --models cnn={input.cnn} dann={input.dann} --sim-shards {input.shards}"
        " --data-shards {input.data} --task {wildcards.task} --signal-class {params.signal_class}"
        " --reweight {params.reweight}"
        " --output {params.outdir} --seed {params.seed} > {log} 2>&1"
