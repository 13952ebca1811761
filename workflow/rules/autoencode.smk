# Autoencoders: unsupervised features for XGBoost, pre-training of the CNN body, anomaly scores.


rule train_jet_autoencoder:
    input:
        shards=shards("jets", "sim") + (shards("jets", "data") if config["jets"]["autoencoder_with_data"] else []),
    output:
        model=f"{RESULTS}/jets/{{ae}}/model.pt",
        scores=f"{RESULTS}/jets/{{ae}}/test_scores.npz",
    wildcard_constraints:
        ae="autoencoder|ae_anomaly",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=lambda w: as_json(config["jets"][w.ae]),
        device=config["device"],
    log:
        f"{RESULTS}/logs/train_jet_{{ae}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_{{ae}}.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        train_shell()


rule jet_ae_features:
    input:
        model=f"{RESULTS}/jets/autoencoder/model.pt",
        shards=shards("jets", "sim"),
    output:
        # one feature shard per prepared shard (each directory is renamed into place whole)
        features=[f"{RESULTS}/jets/ae_features/jets_sim_{i}/meta.json" for i in range(len(shards("jets", "sim")))],
        images=report(f"{RESULTS}/jets/autoencoder/plots/ae_average_images.png", category="Jets", subcategory="Autoencoder"),
        latent=report(f"{RESULTS}/jets/autoencoder/plots/ae_latent_pca.png", category="Jets", subcategory="Autoencoder"),
        errors=report(f"{RESULTS}/jets/autoencoder/plots/ae_reconstruction_error.png", category="Jets", subcategory="Autoencoder"),
    params:
        outdir=lambda w, output: os.path.dirname(os.path.dirname(output.features[0])),
        plots=lambda w, output: os.path.dirname(output.images),
        with_expert="--with-expert" if config["jets"]["ae_xgboost"]["with_expert"] else "",
    log:
        f"{RESULTS}/logs/jet_ae_features.log",
    benchmark:
        f"{RESULTS}/benchmarks/jet_ae_features.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "hepdl features --model {input.model} --shards {input.shards} --output {params.outdir}"
        " {params.with_expert} --plots {params.plots} --threads {threads} --no-progress > {log} 2>&1"


rule train_jet_ae_xgboost:
    input:
        features=rules.jet_ae_features.output.features,
    output:
        model=f"{RESULTS}/jets/ae_xgboost/bdt.json",
        scores=f"{RESULTS}/jets/ae_xgboost/test_scores.npz",
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        xgb=config["jets"]["ae_xgboost"],
        reweight=config["jets"]["reweight"],
        shards=lambda w, input: " ".join(os.path.dirname(p) for p in input.features),
    log:
        f"{RESULTS}/logs/train_jet_ae_xgboost.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_jet_ae_xgboost.tsv"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "hepdl bdt --shards {params.shards} --array ae_features --output {params.outdir} --seed {params.seed}"
        " --threads {threads} --n-estimators {params.xgb[n_estimators]} --max-depth {params.xgb[max_depth]}"
        " --learning-rate {params.xgb[learning_rate]} --reweight {params.reweight} > {log} 2>&1"


rule jet_label_efficiency:
    input:
        ae=f"{RESULTS}/jets/autoencoder/model.pt",
        shards=shards("jets", "sim"),
    output:
        metrics=f"{RESULTS}/jets/evaluation/pretrained_cnn.json",
        plot=report(f"{RESULTS}/jets/evaluation/label_efficiency.png", category="Jets", subcategory="Autoencoder"),
    params:
        seed=SEED,
        outdir=lambda w, output: os.path.dirname(output[0]),
        settings=as_json({"reweight": config["jets"]["reweight"], **config["jets"]["label_efficiency"]["cnn"]}),
        sizes=" ".join(map(str, config["jets"]["label_efficiency"]["sizes"])),
        min_steps=config["jets"]["label_efficiency"]["min_steps"],
        repeats=config["jets"]["label_efficiency"]["repeats"],
    log:
        f"{RESULTS}/logs/jet_label_efficiency.log",
    benchmark:
        f"{RESULTS}/benchmarks/jet_label_efficiency.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=1,
    shell:
        "hepdl label-efficiency --shards {input.shards} --settings {params.settings:q} --ae-model {input.ae}"
        " --sizes {params.sizes} --min-steps {params.min_steps} --repeats {params.repeats} --output {params.outdir} --name pretrained_cnn"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
