import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.stages import train

    sm = snakemake  # noqa: F821
    train(config, sm.wildcards.run, sm.input.docs, sm.output.model, sm.output.loss, sm.output.meta,
          sm.params.checkpoint_dir, list(sm.input.parents), sm.params.failed_dir)
