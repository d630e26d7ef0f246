# Encode once: every text the evaluation tasks need, the ID sample and the fit set.
rule encode:
    input:
        model=lambda w: [] if RUNS[w.run].kind == "base" else [model_dir(w.run)],
        id_texts=rules.prepare_texts.output.id,
        fit_texts=rules.prepare_texts.output.fit,
    output:
        eval=emb("{run}", "eval.npy"),
        texts=emb("{run}", "eval_texts.parquet"),
        idsample=emb("{run}", "idsample.npy"),
        fit=emb("{run}", "fit.npy"),
        meta=emb("{run}", "meta.json"),
    params:
        # only what the embeddings depend on: scoring settings never re-encode
        settings=lambda w: {
            **settings(run=w.run),
            "evaluation": {k: config["evaluation"][k] for k in ("tasks", "max_documents", "max_seq_length", "batch_size")},
        },
        out_dir=lambda w: f"results/embeddings/{w.run}",
        failed_dir=FAILED_DIR,
    log:
        "results/logs/encode/{run}.log",
    benchmark:
        "results/benchmarks/encode/{run}.tsv"
    threads: stage_threads("encode", 4)
    resources:
        **res("encode"),
    conda:
        env_for("encode")
    script:
        "../scripts/encode.py"
