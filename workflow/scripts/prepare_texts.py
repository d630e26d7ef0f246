import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context
from tempcompress.stages import prepare_texts

with rule_context(snakemake) as config:  # noqa: F821
    out = snakemake.output  # noqa: F821
    prepare_texts(config, out.id, out.fit, out.docs, out.meta)
