# Everything after encoding reads cached embeddings: no transformer runs here.


# Intrinsic dimension of one run's L2-normalised embeddings of two samples: the shared ID
# sample of training-corpus sentences ("corpus") and a fixed-seed sample of the run's own
# evaluation texts ("eval", rows of eval.npy).
rule intrinsic_dim:
    input:
        sample=emb("{run}", "idsample.npy"),
        eval=emb("{run}", "eval.npy"),
        texts=emb("{run}", "eval_texts.parquet"),
    output:
        table="results/intrinsic_dim/{run}.csv",
    params:
        settings=config_keys(
            "intrinsic_dim.estimators",
            "intrinsic_dim.mle_k",
            "intrinsic_dim.sample_size",
            "intrinsic_dim.seed",
        ),
        inputs=embedding_digests("idsample.npy", "eval.npy", "eval_texts.parquet"),
    log:
        "results/logs/intrinsic_dim/{run}.log",
    benchmark:
        "results/benchmarks/intrinsic_dim/{run}.tsv"
    group:
        "analyse_{run}"
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/intrinsic_dim.py"


# Every compression method at every target dim (quantizers also at the native dim), fitted
# on the fit set only: compact codes in one file per run, deleted once the run is scored.
rule compress:
    input:
        eval=emb("{run}", "eval.npy"),
        fit=emb("{run}", "fit.npy"),
    output:
        codes=temp("results/compressed/{run}.npz"),
    params:
        settings=settings("compression"),
        emb_dir=lambda w: f"results/embeddings/{w.run}",
    log:
        "results/logs/compress/{run}.log",
    benchmark:
        "results/benchmarks/compress/{run}.tsv"
    group:
        "analyse_{run}"
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/compress.py"


# HPD's own objective (method "hpd"): per target dim, a student (a copy of the run's encoder
# plus a PCA-initialised Dense(d, tanh)) distilled to the PCA-projected embeddings of the fit
# texts, then encoding the evaluation texts.  It needs the encoder, so it is an encode-like stage.
rule hpd:
    input:
        model=lambda w: [] if RUNS[w.run].kind == "base" else [model_dir(w.run)],
        fit=rules.prepare_fit_texts.output.fit,
        texts=emb("{run}", "eval_texts.parquet"),
    output:
        codes=temp("results/compressed/{run}.hpd.npz"),
    params:
        settings=lambda w: {
            **sample_encoding_settings(w.run),
            **config_keys("compression.dims", "compression.seed", "compression.hpd_epochs", "evaluation.batch_size"),
        },
    log:
        "results/logs/hpd/{run}.log",
    benchmark:
        "results/benchmarks/hpd/{run}.tsv"
    group:
        "embed_{run}"
    threads: stage_threads("encode")
    resources:
        **res("encode"),
    conda:
        env_for("encode")
    script:
        "../scripts/hpd.py"


# mteb scores of every (method, dim) of one run, from the cached embeddings.
rule score:
    input:
        eval=emb("{run}", "eval.npy"),
        texts=emb("{run}", "eval_texts.parquet"),
        codes=lambda w: [f"results/compressed/{w.run}.npz"]
        + ([f"results/compressed/{w.run}.hpd.npz"] if "hpd" in METHODS else []),
    output:
        table="results/scores/{run}.csv",
    params:
        settings=settings("evaluation", "compression"),
        # fit.npy reaches the scores only through the temp() codes, which are gone once scored
        inputs=embedding_digests("eval.npy", "eval_texts.parquet", "fit.npy"),
        emb_dir=lambda w: f"results/embeddings/{w.run}",
        mteb_cache="results/mteb",
    log:
        "results/logs/score/{run}.log",
    benchmark:
        "results/benchmarks/score/{run}.tsv"
    group:
        "analyse_{run}"
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/score.py"


# One tidy table per measurement kind: the hand-off to the figures.
rule aggregate:
    input:
        scores=expand("results/scores/{run}.csv", run=ACTIVE),
        ids=expand("results/intrinsic_dim/{run}.csv", run=ACTIVE),
        losses=expand("results/models/{run}/loss.csv", run=[r for r in ACTIVE if r in TRAINED]),
    output:
        **TABLES,
        config=report("results/tables/config_used.yaml", caption="../report/config.rst", category="Config"),
    log:
        "results/logs/aggregate.log",
    conda:
        CPU_ENV
    script:
        "../scripts/aggregate.py"
