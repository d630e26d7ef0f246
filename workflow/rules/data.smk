# Fixed-seed, deduplicated text samples, one rule each, so that changing one sample never
# rewrites another: the training documents (every model depends on them), the ID sample
# (sentences of the training corpus) and the fit set (held-out in-domain texts that PCA /
# int8 / the learned projection are fitted on; never the evaluation sample).
rule prepare_documents:
    input:
        prefetched=PREFETCHED,
    output:
        docs="results/data/train_documents.parquet",
        meta="results/data/train_documents.meta.json",
    params:
        settings=config_keys("training.corpus", "training.max_documents"),
    log:
        "results/logs/prepare_documents.log",
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/prepare_texts.py"


# The ID sample drawn from the training corpus (the `corpus` rows of the ID tables).
rule prepare_id_texts:
    input:
        docs=rules.prepare_documents.output.docs,
    output:
        id="results/data/id_texts.parquet",
        meta="results/data/id_texts.meta.json",
    params:
        settings=config_keys("intrinsic_dim.sample_size", "intrinsic_dim.seed"),
    log:
        "results/logs/prepare_id_texts.log",
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/prepare_texts.py"


# The fit set: held-out texts of the evaluation tasks' own domain (see README, "Fit set").
rule prepare_fit_texts:
    input:
        docs=rules.prepare_documents.output.docs,
        prefetched=PREFETCHED,
    output:
        fit="results/data/fit_texts.parquet",
        meta="results/data/fit_texts.meta.json",
    params:
        settings=fit_set_settings(),
    log:
        "results/logs/prepare_fit_texts.log",
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/prepare_texts.py"


# One run's embeddings of a shared sample (idsample = the ID sample, fit = the fit set),
# apart from the evaluation encoding, so that a new sample reruns only what reads it.
rule encode_sample:
    input:
        model=lambda w: [] if RUNS[w.run].kind == "base" else [model_dir(w.run)],
        texts=lambda w: SAMPLE_TEXTS[w.sample],
    output:
        npy=emb("{run}", "{sample}.npy"),
        meta=emb("{run}", "{sample}.meta.json"),
    wildcard_constraints:
        sample="idsample|fit",
    params:
        settings=lambda w: sample_encoding_settings(w.run),
        failed_dir=FAILED_DIR,
    log:
        "results/logs/encode_sample/{run}.{sample}.log",
    benchmark:
        "results/benchmarks/encode_sample/{run}.{sample}.tsv"
    group:
        "embed_{run}"
    threads: stage_threads("encode")
    resources:
        **res("encode"),
    conda:
        env_for("encode")
    script:
        "../scripts/encode_sample.py"


SAMPLE_TEXTS = {
    "idsample": rules.prepare_id_texts.output.id,
    "fit": rules.prepare_fit_texts.output.fit,
}
