# Encode once: every text the evaluation tasks need (the ID sample and the fit set are
# encoded by `encode_sample`, in data.smk, so that changing them never reruns this).
# On a cluster, a run's encode, its two sample encodings and its hpd students form one GPU job
# (group embed_{run}): one allocation and queue wait, not three.  Each is still its own process
# that loads the model (seconds from the shared filesystem); merging them into one rule would
# make a new ID sample or fit set re-encode the evaluation texts.
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
    group:
        "embed_{run}"
    threads: stage_threads("encode")
    resources:
        **res("encode"),
    conda:
        env_for("encode")
    script:
        "../scripts/encode.py"
