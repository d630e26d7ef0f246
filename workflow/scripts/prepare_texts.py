import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (package, also in conda envs)

from tempcompress.smk import rule_context

with rule_context(snakemake) as config:  # noqa: F821  (thread limits first)
    from tempcompress.stages import prepare_documents, prepare_fit_texts, prepare_id_texts

    sm = snakemake  # noqa: F821
    if sm.rule == "prepare_documents":
        prepare_documents(config, sm.output.docs, sm.output.meta)
    elif sm.rule == "prepare_id_texts":
        prepare_id_texts(config, sm.input.docs, sm.output.id, sm.output.meta)
    else:
        prepare_fit_texts(config, sm.input.docs, sm.output.fit, sm.output.meta)
