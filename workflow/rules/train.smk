# Contrastive fine-tuning of one run (model x variant x temperature x seed); soups average
# their parents.  Checkpoints live outside the outputs (results/checkpoints/) so that a
# killed job resumes; the finished model is protected against accidental retraining.
rule train:
    input:
        docs=rules.prepare_documents.output.docs,
        parents=lambda w: [model_dir(p) for p in RUNS[w.run].parents],
    output:
        model=protected(directory("results/models/{run}/model")),
        loss="results/models/{run}/loss.csv",
        meta="results/models/{run}/meta.json",
    params:
        settings=lambda w: train_settings(w.run),
        checkpoint_dir=lambda w: f"results/checkpoints/{w.run}",
        failed_dir=FAILED_DIR,
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    threads: train_threads
    resources:
        # a soup averages weights on the CPU: it asks for the CPU stages' resources
        **{k: train_res(k) for k in set(res("train")) | set(res("cpu"))},
    conda:
        env_for("train")
    script:
        "../scripts/train.py"
