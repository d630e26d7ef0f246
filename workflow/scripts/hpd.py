import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.stages import hpd_compress

    sm = snakemake  # noqa: F821
    hpd_compress(config, sm.wildcards.run, sm.input.model[0] if sm.input.model else None, sm.input.fit,
                 sm.input.texts, sm.output.codes)
