# Training: each rule gathers the prepared sim shards of its task. Training rules ask
# for a GPU on a cluster (resource gpu); locally the engine picks CUDA, MPS or CPU.


rule train_jet_cnn:
    input:
        shards=shards("jets", "sim"),
    output:
        model=f"{RESULTS}/jets/cnn/model.pt",
        scores=f"{RESULTS}/jets/cnn/test_scores.npz",
        curve=report(f"{RESULTS}/jets/cnn/training_curve.png", category="Jets", subcategory="Training"),
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=jet_classifier_settings("cnn"),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_jet_cnn.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_cnn.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        train_shell()


rule train_jet_expert_mlp:
    input:
        shards=shards("jets", "sim"),
    output:
        model=f"{RESULTS}/jets/expert_mlp/model.pt",
        scores=f"{RESULTS}/jets/expert_mlp/test_scores.npz",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=jet_classifier_settings("expert_mlp"),
        device="cpu",  # a few thousand parameters: a GPU would only add transfer time
    log:
        f"{RESULTS}/logs/train_jet_expert_mlp.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_expert_mlp.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        train_shell()


rule train_jet_expert:
    input:
        shards=shards("jets", "sim"),
    output:
        model=f"{RESULTS}/jets/{{bdt}}/bdt.json",
        scores=f"{RESULTS}/jets/{{bdt}}/test_scores.npz",
    wildcard_constraints:
        bdt="expert_bdt|mass_bdt",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        features=lambda w: " ".join(["--features", *config["jets"][w.bdt]["features"]]) if config["jets"][w.bdt]["features"] else "",
        xgb=lambda w: config["jets"][w.bdt],
        reweight=config["jets"]["reweight"],
    log:
        f"{RESULTS}/logs/train_jet_{{bdt}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_{{bdt}}.tsv"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl bdt --shards {input.shards} --array expert {params.features} --output {params.outdir}"
        " --reweight {params.reweight}"
        " --seed {params.seed} --threads {threads} --n-estimators {params.xgb[n_estimators]}"
        " --max-depth {params.xgb[max_depth]} --learning-rate {params.xgb[learning_rate]} > {log} 2>&1"


rule train_nu_cvn:
    input:
        shards=shards("neutrino", "sim"),
    output:
        model=f"{RESULTS}/neutrino/cvn/model.pt",
        scores=f"{RESULTS}/neutrino/cvn/test_scores.npz",
        val_scores=f"{RESULTS}/neutrino/cvn/val_scores.npz",
        curve=report(f"{RESULTS}/neutrino/cvn/training_curve.png", category="Neutrino", subcategory="Training"),
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=as_json(config["neutrino"]["cvn"]),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_nu_cvn.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_nu_cvn.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        train_shell()


rule train_nu_baseline_bdt:
    input:
        shards=shards("neutrino", "sim"),
    output:
        model=f"{RESULTS}/neutrino/baseline_bdt/bdt.json",
        scores=f"{RESULTS}/neutrino/baseline_bdt/test_scores.npz",
        val_scores=f"{RESULTS}/neutrino/baseline_bdt/val_scores.npz",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        xgb=config["neutrino"]["baseline_bdt"],
        n_classes=len(NEUTRINO_CLASSES),
    log:
        f"{RESULTS}/logs/train_nu_baseline_bdt.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_nu_baseline_bdt.tsv"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl bdt --shards {input.shards} --array expert --num-classes {params.n_classes}"
        " --output {params.outdir} --seed {params.seed} --threads {threads}"
        " --n-estimators {params.xgb[n_estimators]} --max-depth {params.xgb[max_depth]}"
        " --learning-rate {params.xgb[learning_rate]} > {log} 2>&1"


rule train_jet_tracks:
    input:
        shards=shards("jets", "sim"),
    output:
        model=f"{RESULTS}/jets/{{tagger}}/model.pt",
        scores=f"{RESULTS}/jets/{{tagger}}/test_scores.npz",
    wildcard_constraints:
        tagger="track_rnn|combined",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=lambda w: jet_classifier_settings(w.tagger),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_jet_{{tagger}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_{{tagger}}.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        train_shell()
