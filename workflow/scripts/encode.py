import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.stages import encode

    sm = snakemake  # noqa: F821
    model_dir = sm.input.model[0] if sm.input.model else None
    encode(config, sm.wildcards.run, model_dir, sm.params.out_dir, sm.params.failed_dir)
