# Fixed-seed, deduplicated text samples shared by every model: the ID sample and the
# set that PCA / HPD / int8 are fitted on (both from the training corpus, never the test set).
rule prepare_texts:
    input:
        prefetched=PREFETCHED,
    output:
        id="results/data/id_texts.parquet",
        fit="results/data/fit_texts.parquet",
        docs="results/data/train_documents.parquet",
        meta="results/data/texts.meta.json",
    params:
        settings=settings("training", "intrinsic_dim", "compression"),
    log:
        "results/logs/prepare_texts.log",
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/prepare_texts.py"
