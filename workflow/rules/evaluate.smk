# Evaluation: metrics JSONs and plots per task, gathered into results/summary.json.



rule evaluate_jets:
    input:
        scores=[jet_scores(m) for m in JET_MODELS],
        shards=shards("jets", "sim"),
    output:
        metrics=[f"{RESULTS}/jets/evaluation/{m}.json" for m in JET_MODELS],
        roc=report(f"{RESULTS}/jets/evaluation/roc.png", category="Jets", subcategory="ROC"),
        images=report(f"{RESULTS}/jets/evaluation/average_images_calo_et.png", category="Jets", subcategory="Images"),
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        names=" ".join(JET_MODELS),
        reweight=JET_EVAL_REWEIGHT,
    log:
        f"{RESULTS}/logs/evaluate_jets.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "(hepdl evaluate binary --task jets --scores {input.scores} --names {params.names} --output {params.outdir}"
        " --reweight {params.reweight}"
        " && hepdl evaluate images --shards {input.shards} --split test --classes QCD W --channel calo_et"
        " --output {params.outdir}) > {log} 2>&1"


rule evaluate_nu:
    input:
        scores=[nu_scores(m) for m in NEUTRINO_MODELS],
        val_scores=[nu_scores(m, "val") for m in NEUTRINO_MODELS],
        cvn_scores=nu_scores("cvn"),
        shards=shards("neutrino", "sim"),
    output:
        metrics=[f"{RESULTS}/neutrino/evaluation/{m}.json" for m in NEUTRINO_MODELS],
        confusion=report(f"{RESULTS}/neutrino/evaluation/confusion_cvn.png", category="Neutrino", subcategory="Confusion"),
        display=report(f"{RESULTS}/neutrino/evaluation/event_display.png", category="Neutrino", subcategory="Events"),
    params:
        outdir=lambda w, output: os.path.dirname(output[0]),
        names=" ".join(NEUTRINO_MODELS),
        classes=" ".join(NEUTRINO_CLASSES),
    log:
        f"{RESULTS}/logs/evaluate_nu.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "(hepdl evaluate multiclass --task neutrino --scores {input.scores} --val-scores {input.val_scores}"
        " --names {params.names} --classes {params.classes} --output {params.outdir}"
        " && hepdl evaluate display --shards {input.shards} --scores {input.cvn_scores} --classes {params.classes}"
        " --n-events 8 --output {params.outdir}) > {log} 2>&1"


rule summary:
    input:
        metric_files(),
    output:
        report(f"{RESULTS}/summary.json", category="Summary"),
    log:
        f"{RESULTS}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "hepdl summary {input} -o {output} > {log} 2>&1"
