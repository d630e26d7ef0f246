import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.item_noise import item_noise

    sm = snakemake  # noqa: F821
    item_noise(config, list(sm.params.runs), "results/embeddings", sm.output.table, out_reps=sm.output.reps)
