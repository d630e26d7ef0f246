import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.budget import write_budget_tables

    sm = snakemake  # noqa: F821
    write_budget_tables(sm.input.scores, sm.input.ids, list(sm.input.meta), dict(sm.output.items()))
