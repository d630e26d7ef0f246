# Config loading, validation (before any job runs), the run registry and path helpers.
# No torch / mteb / matplotlib imports here: every cluster job re-parses this file.
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))  # the tempcompress package

from snakemake.exceptions import WorkflowError  # noqa: E402
from snakemake.logging import logger  # noqa: E402
from tempcompress.config import (  # noqa: E402
    NO_RESULT_KEYS,
    ConfigError,
    expand_runs,
    load_config,
    variant_settings,
)
from tempcompress.data import fit_sources  # noqa: E402
from tempcompress.figure_names import FIGURE_NAMES  # noqa: E402
from tempcompress.provenance import content_digests  # noqa: E402

# No `configfile:` directive: Snakemake deep-merges --configfile into it, so a small
# config could never drop the default's variants.  The default is read only when no
# --configfile / --config was given.
if not config:
    config.update(yaml.safe_load((Path(workflow.basedir) / "config" / "config.yaml").read_text()))
try:
    # A cluster job re-parses this file with the config its submit host has checked: the
    # MTEB task-name check (it imports mteb, 2 s per job) is left to the submit host.
    _validated = load_config(config, check_task_names=not workflow.remote_exec)
except ConfigError as exc:
    raise WorkflowError(f"{exc}\n(fix the config file; nothing was run)") from None
config.clear()
config.update(_validated)

RUNS = expand_runs(config)
TRAINED = {r: s for r, s in RUNS.items() if s.kind != "base"}

# Runs that diverged in an earlier invocation (NaN/inf loss or embeddings) left a marker in
# results/failed/.  They (and soups built on them) are left out of the tables, and the
# figures list them as missing.  Delete the marker to retry the run.
FAILED_DIR = "results/failed"
DIVERGED = {p.stem for p in Path(FAILED_DIR).glob("*.json")} & set(RUNS)
SKIPPED = {r for r, s in RUNS.items() if r in DIVERGED or DIVERGED & set(s.parents)}
if SKIPPED:
    logger.warning(
        f"left out of the tables (diverged earlier, see {FAILED_DIR}/): {sorted(SKIPPED)}; "
        "delete a marker to retry that run"
    )
ACTIVE = [r for r in RUNS if r not in SKIPPED]
METHODS = config["compression"]["methods"]
DIMS = [str(d) for d in config["compression"]["dims"]]


def _alternatives(values):
    return "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)) or "^$"


TABLES = {
    name: f"results/tables/{name}.csv"
    for name in ("scores", "intrinsic_dim", "variants", "training_loss")
}
FIGURE_PDFS = [f"paper_figures/{name}.pdf" for name in FIGURE_NAMES]


# conda environments (--software-deployment-method conda); paths relative to workflow/rules/
CPU_ENV = "../../envs/cpu.yaml"


def env_for(stage):
    """The CUDA environment for stages that request a GPU, else the CPU one."""
    return "../../envs/cuda.yaml" if config["resources"][stage].get("gpu") else CPU_ENV


def partition(gpu):
    """The SLURM partition of a job that requests `gpu` GPUs: `resources.partitions.gpu` if it
    requests any, else `resources.partitions.cpu`; None without `resources.partitions` (then
    every job gets the profile's / cluster's default partition).  The one place where jobs are
    routed: every rule's resources come from res(), so no rule can be missed."""
    parts = config["resources"].get("partitions")
    return (parts["gpu"] if gpu else parts["cpu"]) if parts else None


def grown_runtime(minutes):
    """A runtime (minutes) that grows with the attempt: a job killed at its time limit is
    resubmitted (the profile's `retries`) with 2x, then 3x the limit."""

    def runtime(wildcards, attempt):
        return minutes * attempt

    return runtime


def res(stage):
    """Resources of a stage from config['resources'] (mem_mb, runtime [min], gpu); its thread
    count is declared with `threads: stage_threads(stage)`, which Snakemake passes on to
    the cluster as the job's CPUs.  The runtime grows with the attempt (grown_runtime), the
    SLURM partition follows the GPU request (partition).  Every job also takes one
    `jobstep_slots`: unlimited unless a profile limits it (slurm/config.yaml: one per group
    job, whose jobs run one at a time)."""
    r = dict(config["resources"][stage])
    r.pop("threads", None)
    if not r.get("gpu"):
        r.pop("gpu", None)
        r.pop("gpu_model", None)  # a GPU type only constrains jobs that request GPUs
    if "runtime" in r:
        r["runtime"] = grown_runtime(r["runtime"])
    slurm_partition = partition(r.get("gpu", 0))
    if slurm_partition:
        r["slurm_partition"] = slurm_partition
    r["jobstep_slots"] = 1
    return r


def stage_threads(stage):
    """Threads of one job of a stage (`resources.<stage>.threads`), default 1.

    One thread per job by default: on a CPU machine, `--cores all` then runs as many jobs side
    by side as there are cores, which beats fewer jobs with more threads here (process start-up,
    model loading and mteb's Python-side work are single-threaded).  Set it per stage for GPU
    or large-batch jobs (config/paper.yaml)."""
    return config["resources"][stage].get("threads", 1)


def train_res(key):
    """One resource of the train rule: a soup only averages weights on the CPU, so it asks for
    the CPU stages' resources, not the GPU / runtime of a training job."""

    def get(wildcards, attempt):
        value = res("cpu" if RUNS[wildcards.run].kind == "soup" else "train").get(key, 0)
        return value(wildcards, attempt) if callable(value) else value

    return get


def train_threads(wildcards):
    return stage_threads("cpu") if RUNS[wildcards.run].kind == "soup" else stage_threads("train")



def _canonical(value):
    """Params as Snakemake compares them (repr): mappings with sorted keys, so that reordering
    keys in the YAML file is not a change."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def config_keys(*keys):
    """The named config keys ('section.key' or 'section'), as params: a job whose params are
    exactly the keys its outputs depend on reruns when, and only when, one of them changes."""
    out = {}
    for key in keys:
        section, _, name = key.partition(".")
        out[key] = config[section][name] if name else config[section]
    return _canonical(out)


def variant_entry(name):
    """A variant's config entry as a run's results depend on it (config.variant_settings)."""
    return variant_settings(config, name)


def settings(*sections, run=None):
    """Config sections a step depends on, as params (rerun trigger), without the keys that
    change no result (NO_RESULT_KEYS); with `run`, also that run's model and variant entries."""
    out = {
        s: {k: v for k, v in config[s].items() if k not in NO_RESULT_KEYS.get(s, ())}
        for s in sections
    }
    if run is not None:
        spec = RUNS[run]
        out["model"] = config["models"][spec.model]
        out["variant"] = variant_entry(spec.variant) if spec.variant in config["variants"] else None
    return _canonical(out)


def fit_set_settings():
    """What the fit set depends on: its size and seed, the pools the tasks call for, and the BBC
    evaluation sample size (the held-out BBC articles are those outside it)."""
    sources = fit_sources(config["evaluation"]["tasks"])
    keys = ["compression.fit_size", "compression.seed"]
    if any(s.startswith("bbc_") for s in sources):
        keys.append("evaluation.max_documents")
    return {"fit_sources": sources, **config_keys(*keys)}


def sample_encoding_settings(run):
    """What a run's embeddings of a shared sample depend on besides the model and the texts
    (inputs): the base model's entry (for the un-fine-tuned run) and the truncation length."""
    return {"model": _canonical(config["models"][RUNS[run].model]), **config_keys("evaluation.max_seq_length")}


def train_settings(run):
    """What a trained model depends on: its model and variant entries, the training keys that
    change results (a Matryoshka variant's prefix sizes are its own `matryoshka_dims`, never
    compression.dims, so a new target dim retrains nothing).  A soup depends only on
    its entries (its parents are inputs).  Temperature and seed are part of the run id."""
    spec = RUNS[run]
    out = {"model": config["models"][spec.model], "variant": variant_entry(spec.variant)}
    if spec.kind != "soup":
        out["training"] = {
            k: v for k, v in config["training"].items() if k not in NO_RESULT_KEYS["training"]
        }
    return _canonical(out)


def model_dir(run):
    return f"results/models/{run}/model"


def emb(run, name):
    return f"results/embeddings/{run}/{name}"


def embedding_digests(*names):
    """Params: the content hashes of a run's embedding files (provenance.content_digests), so a
    file replaced by one of other content reruns the job, also through the temp() codes."""
    return lambda w: content_digests({name: emb(w.run, name) for name in names})
