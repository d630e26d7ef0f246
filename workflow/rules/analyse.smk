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
    log:
        "results/logs/intrinsic_dim/{run}.log",
    benchmark:
        "results/benchmarks/intrinsic_dim/{run}.tsv"
    group:
        "analyse"
    threads: stage_threads("cpu", 1)
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
        "analyse"
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/compress.py"


# mteb scores of every (method, dim) of one run, from the cached embeddings.
rule score:
    input:
        eval=emb("{run}", "eval.npy"),
        texts=emb("{run}", "eval_texts.parquet"),
        codes=rules.compress.output.codes,
    output:
        table="results/scores/{run}.csv",
    params:
        settings=settings("evaluation", "compression"),
        emb_dir=lambda w: f"results/embeddings/{w.run}",
        mteb_cache="results/mteb",
    log:
        "results/logs/score/{run}.log",
    benchmark:
        "results/benchmarks/score/{run}.tsv"
    group:
        "analyse"
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
