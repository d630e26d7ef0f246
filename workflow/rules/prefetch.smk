# Hub logistics for cluster runs (config key `hf_home`): every job runs offline against that
# HF cache; the local rule `prefetch` fills it once, on the submit host, before any job.
#   snakemake --configfile config/paper.yaml prefetch        (or let the first job pull it in)
from tempcompress.hub import hf_corpora, hub_models, needs_hub, remote_tasks, set_job_env  # noqa: E402

HF_HOME = config.get("hf_home")
if HF_HOME:
    set_job_env(HF_HOME)
PREFETCH_MANIFEST = "results/data/prefetch.json"
# prepare_texts (the first job of every run) waits for the prefetch when there is a cache to fill;
# ancient(): a later prefetch (e.g. a task added) does not make the finished runs out of date
PREFETCHED = [ancient(PREFETCH_MANIFEST)] if HF_HOME and needs_hub(config) else []
# what the prefetch reads (a change reruns only the prefetch)
PREFETCH_SETTINGS = {
    "models": {k: list(v) for k, v in hub_models(config).items()},
    "tasks": remote_tasks(config),
    "corpus": hf_corpora(config),
    "max_documents": config["training"]["max_documents"],
}


rule prefetch:
    output:
        manifest=PREFETCH_MANIFEST,
    params:
        settings=PREFETCH_SETTINGS,
    log:
        "results/logs/prefetch.log",
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/prefetch.py"
