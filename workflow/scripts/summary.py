import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.summary import write_summary

    write_summary(dict(snakemake.input.items()), snakemake.output.summary)  # noqa: F821
