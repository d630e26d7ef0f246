import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context
from tempcompress.stages import prepare_texts

with rule_context(snakemake) as config:  # noqa: F821
    prepare_texts(config, snakemake.output.id, snakemake.output.fit, snakemake.output.meta)  # noqa: F821
