import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.tables import aggregate

    sm = snakemake  # noqa: F821
    aggregate(config, list(sm.input.scores), list(sm.input.ids), list(sm.input.losses), dict(sm.output.items()))
