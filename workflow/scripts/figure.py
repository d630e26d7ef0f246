import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.figures import make_figure

    sm = snakemake  # noqa: F821
    make_figure(sm.params.name, dict(sm.input.items()), config, sm.output.figure, sm.output.data)
