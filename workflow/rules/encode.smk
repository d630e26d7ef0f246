# Encode once: every text the evaluation tasks need (the ID sample and the fit set are
# encoded by `encode_sample`, in data.smk, so that changing them never reruns this).
rule encode:
    input:
        model=lambda w: [] if RUNS[w.run].kind == "base" else [model_dir(w.run)],
    output:
        eval=emb("{run}", "eval.npy"),
        texts=emb("{run}", "eval_texts.parquet"),
        meta=emb("{run}", "meta.json"),
    params:
        # only what the embeddings depend on: scoring settings never re-encode
        settings=lambda w: {
            **settings(run=w.run),
            **config_keys("evaluation.tasks", "evaluation.max_documents", "evaluation.max_seq_length"),
        },
        out_dir=lambda w: f"results/embeddings/{w.run}",
        failed_dir=FAILED_DIR,
    log:
        "results/logs/encode/{run}.log",
    benchmark:
        "results/benchmarks/encode/{run}.tsv"
    threads: stage_threads("encode")
    resources:
        **res("encode"),
    conda:
        env_for("encode")
    script:
        "../scripts/encode.py"
