"""What a config's grid will cost, before it runs: jobs per rule, GPU-hours and disk.

    python -m tempcompress.plan config/paper.yaml [--measured <workdir of a finished rehearsal>]

Job counts come from Snakemake's own dry run of the target config.  Times and sizes are
*projections*: rates measured on a finished smaller run (its benchmark files, embeddings,
compressed matrices and models) scaled to the target's sizes:

- train: seconds per optimizer step, from a least-squares fit of job time = start-up +
  steps x step time over the measured train jobs (rehearsal.yaml gives one variant more steps
  so that the two separate), scaled by batch x sequence length x model parameters;
- encode: seconds per token (texts x min(chars/4, max_seq_length)), scaled by parameters; the
  target's texts come from each MTEB task's descriptive statistics;
- score: seconds per (scored variant x evaluation text); intrinsic_dim / compress: seconds per
  sampled text; each after subtracting the measured start-up of a job;
- disk: measured bytes per stored number (embeddings, compressed matrices) and per parameter
  (saved models), times the target's counts.  Steady state: models and embeddings.  Peak: that
  plus the ``temp()`` codes held by every concurrent analyse group (the profile's ``jobs``)
  and two checkpoints (model + AdamW moments, 3x the model) per concurrent train job, the old
  one kept until the new one is written.  The mteb result cache's file count is listed too;
- time limits: every SLURM job (a train job, a run's embedding group, its analyse group) whose
  projected time exceeds its first attempt's limit (a group's limit is the sum of its jobs'
  runtimes) is listed.

Compressed codes are written to the shared ``results/compressed/``, not to a node-local
``$TMPDIR``: Snakemake checks a job's outputs at their declared paths, from the submit host
(``latency-wait``) as well as in the job, and a path under one node's ``$TMPDIR`` is neither
known when the DAG is built nor visible from the submit host.  ``temp()`` deletes them once
the run is scored, in the same group job; the peak above is what they cost.

Job times are CPU seconds of the measured jobs (wall time is inflated on a shared machine).
GPU stages are projected at the measured (CPU) speed divided by ``--gpu-speedup`` when you pass
your GPU's measured speed-up over the rehearsal's CPU; without it, by their FLOPs (6 per
parameter and token to train, 2 to encode) at ``--gpu-tflops`` sustained (default
``DEFAULT_GPU_TFLOPS``, an assumption), plus the measured job start-up.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARS_PER_TOKEN = 4.0
# GPU stages without a measured speed-up are projected by FLOPs (6 per parameter and token to
# train, 2 to encode) at this sustained rate: an assumption, about a third of an A100's dense
# bf16 peak (312 TFLOP/s); no GPU was available to measure it.
DEFAULT_GPU_TFLOPS = 100.0
# the plan's default for --measured: rates measured on a finished default run (config/config.yaml,
# 2026-12-07, this project's 2-core CPU machine; `--save-rates`), whose ID samples (1,000 points),
# fit set (400 texts) and evaluation texts are nearer a full-scale run's sizes than the
# rehearsal's, where start-up and per-call overheads dominate every job
REFERENCE = Path(__file__).with_name("plan_reference_rates.json")
# fallback shape of a hub model whose config.json is not in the local HF cache (BERT-base)
DEFAULT_SHAPE = {"num_hidden_layers": 12, "hidden_size": 768, "vocab_size": 30522}


@dataclass
class Shape:
    params: float
    dim: int
    source: str


def model_shape(source: str, revision: str | None = None, hf_home: str | None = None) -> Shape:
    """Parameters (12 L h^2 + V h, BERT-style) and width of a model, from its config.json.

    Hub models are looked up in ``hf_home`` (the config's HF cache) or the default HF cache.
    """
    from .config import resolve_model_dir

    kind, _, ref = source.partition(":")
    cfg_path = None
    if kind == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache

            cache = str(Path(hf_home).expanduser() / "hub") if hf_home else None
            hit = try_to_load_from_cache(ref, "config.json", revision=revision, cache_dir=cache)
            cfg_path = Path(hit) if isinstance(hit, str) else None
        except Exception:  # noqa: BLE001  (no cache, bad id: fall back to the default shape)
            cfg_path = None
    else:
        cfg_path = resolve_model_dir(source) / "config.json"
    if cfg_path is not None and cfg_path.is_file():
        cfg, how = json.loads(cfg_path.read_text()), "config.json"
    else:
        cfg, how = DEFAULT_SHAPE, "assumed BERT-base shape (config.json not in the HF cache; run prefetch)"
    h, n_layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    return Shape(12 * n_layers * h * h + vocab * h, h, how)


# ------------------------------------------------------------------------------------------
# measurements of a finished run


def _bench(path: Path) -> float:
    """CPU seconds of one job (its wall seconds if smaller: multi-threaded jobs)."""
    import pandas as pd

    row = pd.read_csv(path, sep="\t").iloc[0]
    return float(min(row["s"], row["cpu_time"])) if row["cpu_time"] > 0 else float(row["s"])


def _tokens(texts: list[str], max_len: int) -> float:
    return sum(min(len(t) / CHARS_PER_TOKEN, max_len) for t in texts)


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, bool]:
    """(intercept, slope, resolved) of least squares of job time on work.  Without two distinct
    works, or where the slope comes out non-positive (start-up dominates and the steps drown in
    its noise), the rate is not resolved: then the start-up is the fastest job and the slope
    the largest that the measurement allows, (slowest - fastest job) / (largest - smallest
    work); when the works do not vary, both the fastest job as start-up and its whole mean
    time per work as rate (an upper bound on each)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return min(ys), my / mx, False
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    if slope > 0 and my - slope * mx >= 0:
        return my - slope * mx, slope, True
    bound = (max(ys) - min(ys)) / (max(xs) - min(xs))
    return min(ys), max(bound, my / mx * 1e-3), False


def id_work(sample_size: int, n_eval_texts: int, dim: int) -> float:
    """Cost units of one intrinsic_dim job: a brute-force nearest-neighbour search (points² × dim)
    on each of its two samples (the corpus sample and up to ``sample_size`` evaluation texts)."""
    n_eval = min(sample_size, n_eval_texts)
    return float((sample_size**2 + n_eval**2) * dim)


def compress_work(compression: dict[str, Any], n_eval_texts: int, dim: int) -> float:
    """Cost units of one compress job: every (method, dim) reads the fit set and codes every
    evaluation text at the native width, and the learned projection (simproj) trains
    ``simproj_epochs`` passes over the fit set per target dim."""
    from .compression import score_variants

    variants = len(score_variants(compression["methods"], compression["dims"], dim)) - 1
    work = variants * (compression["fit_size"] + n_eval_texts) * dim
    if "simproj" in compression["methods"]:
        work += compression.get("simproj_epochs", 1) * compression["fit_size"] * dim * len(compression["dims"])
    return float(work)


def measure(workdir: str | Path) -> dict[str, Any]:
    """Rates and sizes of a finished run in ``workdir`` (benchmarks, embeddings, models), or the
    rates saved in a JSON file (``--save-rates``; e.g. the reference measurement)."""
    if Path(workdir).is_file():
        return json.loads(Path(workdir).read_text())
    import numpy as np
    import pandas as pd

    from .compression import score_variants
    from .config import expand_runs

    wd = Path(workdir)
    res = wd / "results"
    cfg_file = res / "tables" / "config_used.yaml"
    if not cfg_file.is_file():
        raise SystemExit(f"{cfg_file} is missing: --measured must be the working directory of a finished run")
    cfg = yaml.safe_load(cfg_file.read_text())
    runs = expand_runs(cfg)
    tr = cfg["training"]
    home = cfg.get("hf_home")
    home = str(wd / home) if home and not Path(home).is_absolute() else home
    shapes = {m: model_shape(c["source"], c.get("revision"), home) for m, c in cfg["models"].items()}

    # train: job = start-up + steps x step; step cost per (batch x seq x params)
    xs, ys = [], []
    for run, spec in runs.items():
        f = res / "benchmarks" / "train" / f"{run}.tsv"
        if spec.kind in ("base", "soup") or not f.is_file():
            continue
        steps = spec.steps or tr["steps"]
        work = tr["batch_size"] * tr["max_seq_length"] * shapes[spec.model].params
        xs.append(steps * work)
        ys.append(_bench(f))
    if not xs:
        raise SystemExit(f"no train benchmarks under {res / 'benchmarks' / 'train'}")
    startup, per_step_work, train_resolved = _fit_line(xs, ys)

    # encode: job = start-up + tokens x cost; cost per (token x params)
    ev = cfg["evaluation"]
    enc, score, eval_shapes = [], [], {}
    for run, spec in runs.items():
        f = res / "benchmarks" / "encode" / f"{run}.tsv"
        texts_f = res / "embeddings" / run / "eval_texts.parquet"
        if not (f.is_file() and texts_f.is_file()):
            continue
        texts = list(pd.read_parquet(texts_f)["text"])
        toks = _tokens(texts, ev["max_seq_length"])  # the ID sample and fit set: encode_sample jobs
        enc.append(max(_bench(f) - startup, 0.0) / (toks * shapes[spec.model].params))
        dim = np.load(res / "embeddings" / run / "eval.npy", mmap_mode="r").shape[1]
        eval_shapes[run] = (len(texts), dim)
        g = res / "benchmarks" / "score" / f"{run}.tsv"
        if g.is_file():
            n_var = len(score_variants(cfg["compression"]["methods"], cfg["compression"]["dims"], dim))
            score.append((_bench(g), n_var * len(texts)))
    stage_jobs = {stage: {f.stem: _bench(f) for f in (res / "benchmarks" / stage).glob("*.tsv")}
                  for stage in ("intrinsic_dim", "compress")}
    # the fastest CPU job of the run (ID on a small sample): mostly process start-up and imports
    cpu_startup = min((t for jobs in stage_jobs.values() for t in jobs.values()), default=0.0)
    id_rates = [max(t - cpu_startup, 0.0) / id_work(cfg["intrinsic_dim"]["sample_size"], *eval_shapes[r])
                for r, t in stage_jobs["intrinsic_dim"].items() if r in eval_shapes]
    comp_rates = [max(t - cpu_startup, 0.0) / compress_work(cfg["compression"], *eval_shapes[r])
                  for r, t in stage_jobs["compress"].items() if r in eval_shapes]

    # disk: bytes per stored number / per parameter
    emb_bytes, emb_numbers, comp_bytes, comp_numbers, model_bytes, model_params = 0, 0, 0, 0, 0, 0
    for run, spec in runs.items():
        e = res / "embeddings" / run
        for npy in e.glob("*.npy"):
            arr = np.load(npy, mmap_mode="r")
            emb_bytes += npy.stat().st_size
            emb_numbers += arr.size
        c = res / "compressed" / run
        if c.is_dir() and (e / "eval.npy").is_file():
            n = np.load(e / "eval.npy", mmap_mode="r").shape[0]
            comp_bytes += sum(p.stat().st_size for p in c.rglob("*") if p.is_file())
            comp_numbers += n * sum(cfg["compression"]["dims"]) * len(cfg["compression"]["methods"])
        m = res / "models" / run / "model"
        if m.is_dir():
            model_bytes += sum(p.stat().st_size for p in m.rglob("*") if p.is_file())
            model_params += shapes[spec.model].params
    med = lambda v: sorted(v)[len(v) // 2] if v else 0.0  # noqa: E731
    return {
        "config": cfg,
        "train_startup_s": startup,
        "train_s_per_work": per_step_work,
        "encode_s_per_token_param": med(enc),
        "score_s_per_variant_text": med([max(t - cpu_startup, 0.0) / n for t, n in score]),
        "cpu_startup_s": cpu_startup,
        "id_s_per_work": med(id_rates),
        "compress_s_per_work": med(comp_rates),
        "emb_bytes_per_number": emb_bytes / emb_numbers if emb_numbers else 4.0,
        "comp_bytes_per_number": comp_bytes / comp_numbers if comp_numbers else 4.0,
        "model_bytes_per_param": model_bytes / model_params if model_params else 4.0,
        "n_train_jobs": len(xs),
        "distinct_step_counts": len(set(xs)),
        "train_rate_resolved": train_resolved,
    }


# ------------------------------------------------------------------------------------------
# the target grid


def task_texts(names: list[str], evaluation: dict[str, Any]) -> tuple[int, float]:
    """(texts, tokens) mteb asks a model to encode for the tasks, from their descriptive stats."""
    from .tasks import LOCAL_TASKS

    n_texts, n_tokens = 0, 0.0
    max_len = evaluation["max_seq_length"]
    for name in names:
        if name in LOCAL_TASKS:
            n, avg = evaluation.get("max_documents", 400) * 2, 600.0
        else:
            import mteb

            meta = mteb.get_task(name).metadata
            stats = meta.descriptive_stats or {}
            n, chars = 0, 0.0
            for split in meta.eval_splits:
                s = stats.get(split, {})
                if not s:
                    continue
                k = s.get("num_samples", 0) * (2 if meta.type in ("STS", "PairClassification") else 1)
                n += k
                chars += s.get("number_of_characters", 0) or k * (s.get("text_statistics") or {}).get(
                    "average_text_length", 100)
            if meta.type == "Classification":  # the classifier's training texts (undersampled)
                train = stats.get("train", {})
                labels = (stats.get(meta.eval_splits[0], {}).get("label_statistics") or {}).get("unique_labels", 10)
                task = mteb.get_task(name)  # null settings: the task's own protocol
                experiments = evaluation["experiments"] or getattr(task, "n_experiments", 10)
                per_label = evaluation["samples_per_label"] or getattr(task, "samples_per_label", 8)
                wanted = experiments * per_label * labels
                k = min(train.get("num_samples", 0), wanted)
                n += k
                chars += k * (train.get("text_statistics") or {}).get("average_text_length", 100)
            avg = chars / n if n else 100.0
        n_texts += n
        n_tokens += n * min(avg / CHARS_PER_TOKEN, max_len)
    return n_texts, n_tokens


def dry_run_jobs(configfile: Path) -> dict[str, int]:
    """{rule: jobs} from Snakemake's own dry run of the config in an empty working directory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", tmp, "-n", "--quiet", "rules",
             "--configfile", str(Path(configfile).resolve())],
            capture_output=True, text=True, timeout=600, cwd=tmp,
        )
    if out.returncode != 0:
        raise SystemExit(f"dry run of {configfile} failed:\n{out.stderr[-3000:]}")
    text = out.stdout + out.stderr
    block = text.split("Job stats:")[1].split("total")[0] if "Job stats:" in text else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def embed_jobs(compression: dict[str, Any]) -> int:
    """Jobs in a run's embedding group: encode, its two sample encodings, and hpd where the
    config compresses with it."""
    return 3 + ("hpd" in compression["methods"])


def _limits(cfg: dict[str, Any]) -> dict[str, float]:
    """Time limits (hours) of one SLURM job per kind at the first attempt: a train job, a run's
    embedding group (``embed_jobs``) and its analyse group (intrinsic_dim, compress, score): a
    group asks for the sum of its jobs' runtimes (slurm/config.yaml)."""
    r = cfg["resources"]
    return {"train": r["train"]["runtime"] / 60, "soup": r["cpu"]["runtime"] / 60,
            "embed": embed_jobs(cfg["compression"]) * r["encode"]["runtime"] / 60,
            "analyse": 3 * r["cpu"]["runtime"] / 60}


def profile_settings(profile: str | Path | None) -> dict[str, Any]:
    """The SLURM profile's concurrency (``jobs``); 200 without a profile file."""
    prof = yaml.safe_load(Path(profile).read_text()) if profile and Path(profile).is_file() else {}
    return {"jobs": int(prof.get("jobs", 200))}


def mteb_cache_files(n_runs_variants: int, n_tasks: int) -> int:
    """Files mteb's result cache holds: one result JSON per (run, scored variant, task) and one
    model_meta.json per (run, scored variant)."""
    return n_runs_variants * (n_tasks + 1)


def gpu_seconds(flops: float, tflops: float) -> float:
    """Seconds for ``flops`` at a sustained ``tflops`` (TFLOP/s)."""
    return flops / (tflops * 1e12)


def plan(configfile: str | Path, measured: str | Path, profile: str | Path | None = None,
         gpu_speedup: float | None = None, gpu_tflops: float = DEFAULT_GPU_TFLOPS,
         rates: dict[str, Any] | None = None) -> dict[str, Any]:
    """Projected jobs, hours and disk of the config's grid (see the module docstring); ``rates``:
    those of ``measured`` when the caller has measured them already."""
    from .compression import bytes_per_vector, score_variants
    from .config import expand_runs, load_config_file

    cfg = load_config_file(configfile)
    rates = rates if rates is not None else measure(measured)
    jobs = dry_run_jobs(Path(configfile))
    runs = expand_runs(cfg)
    shapes = {m: model_shape(c["source"], c.get("revision"), cfg.get("hf_home")) for m, c in cfg["models"].items()}
    tr, ev, cp = cfg["training"], cfg["evaluation"], cfg["compression"]
    n_texts, n_tokens = task_texts(ev["tasks"], ev)
    side_tokens = (cfg["intrinsic_dim"]["sample_size"] + cp["fit_size"]) * min(
        tr["max_seq_length"], ev["max_seq_length"])
    gpu = {s: bool(cfg["resources"][s].get("gpu")) for s in ("train", "encode")}
    speed = {s: gpu_speedup or 1.0 if gpu[s] else 1.0 for s in gpu}
    by_flops = {s: gpu[s] and gpu_speedup is None for s in gpu}  # GPU stages without a measured speed-up

    hours = {"train": 0.0, "encode": 0.0, "intrinsic_dim": 0.0, "compress": 0.0, "score": 0.0}
    disk = {"models": 0.0, "embeddings": 0.0}
    per_run_codes, per_checkpoint, n_variants_total = 0.0, 0.0, 0
    job_hours: list[tuple[str, str, float]] = []  # (kind, run, projected hours of one SLURM job)
    for run, spec in runs.items():
        shape = shapes[spec.model]
        if spec.kind == "soup":
            job_hours.append(("soup", run, rates["cpu_startup_s"] / 3600))
        elif spec.kind != "base":
            steps = spec.steps or tr["steps"]
            work = steps * tr["batch_size"] * tr["max_seq_length"] * shape.params
            if by_flops["train"]:  # forward + backward: 6 FLOPs per parameter and token, anchor + positive
                seconds = rates["train_startup_s"] + gpu_seconds(6 * 2 * work, gpu_tflops)
            else:
                seconds = rates["train_startup_s"] + work * rates["train_s_per_work"] / speed["train"]
            hours["train"] += seconds
            job_hours.append(("train", run, seconds / 3600))
        if spec.kind != "base":
            disk["models"] += shape.params * rates["model_bytes_per_param"]
            # a resumable checkpoint: the model plus AdamW's two moments (3x the model)
            per_checkpoint = max(per_checkpoint, 3 * shape.params * rates["model_bytes_per_param"])
        # encode + the two encode_sample jobs (ID sample, fit set) [+ hpd]: one start-up each, one group job
        token_params = (n_tokens + side_tokens) * shape.params
        encode_s = embed_jobs(cp) * rates["train_startup_s"] + (
            gpu_seconds(2 * token_params, gpu_tflops) if by_flops["encode"]
            else token_params * rates["encode_s_per_token_param"] / speed["encode"])
        hours["encode"] += encode_s
        job_hours.append(("embed", run, encode_s / 3600))
        n_id = cfg["intrinsic_dim"]["sample_size"]
        variants = score_variants(cp["methods"], cp["dims"], shape.dim)  # quantizers also at native dim
        n_variants_total += len(variants)
        analyse_s = {
            "intrinsic_dim": rates["cpu_startup_s"] + rates["id_s_per_work"] * id_work(n_id, n_texts, shape.dim),
            "compress": rates["cpu_startup_s"] + rates["compress_s_per_work"] * compress_work(cp, n_texts, shape.dim),
            "score": rates["cpu_startup_s"] + rates["score_s_per_variant_text"] * len(variants) * n_texts,
        }
        for stage, sec in analyse_s.items():
            hours[stage] += sec
        job_hours.append(("analyse", run, sum(analyse_s.values()) / 3600))
        n_side = cfg["intrinsic_dim"]["sample_size"] + cp["fit_size"]
        disk["embeddings"] += (n_texts + n_side) * shape.dim * rates["emb_bytes_per_number"]
        # compact codes (packed bits, int8/int4 codes, ...) of one run: temp(), deleted once the
        # run is scored
        per_run_codes = max(per_run_codes, n_texts * sum(bytes_per_vector(m, int(d)) for m, d in variants[1:]))
    hours = {k: v / 3600 for k, v in hours.items()}
    gpu_stages = [s for s in ("train", "encode") if gpu[s]]
    prof = profile_settings(profile)
    trained = sum(1 for s in runs.values() if s.kind not in ("base", "soup"))
    # peak: every concurrent analyse group holds its run's codes (compress -> score, one job),
    # every concurrent train job up to two checkpoints (the old one until the new one is written)
    held_codes = min(prof["jobs"], len(runs)) * per_run_codes
    held_checkpoints = min(prof["jobs"], trained) * 2 * per_checkpoint
    steady = sum(disk.values())
    limits = _limits(cfg)
    over = [{"job": f"{kind} {run}", "projected_h": round(h, 2), "limit_h": round(limits[kind], 2)}
            for kind, run, h in job_hours if h > limits[kind]]
    local = {"all", "aggregate", "figures", "summary", "prefetch", "budget", "findings"} | {
        r for r in jobs if r.startswith("figure_")}
    grouped = {"intrinsic_dim", "compress", "score", "encode", "encode_sample", "hpd"}
    slurm_jobs = sum(n for r, n in jobs.items() if r not in local | grouped) + 2 * len(runs)
    return {
        "config": str(configfile), "measured": str(measured), "gpu_speedup": gpu_speedup, "gpu_tflops": gpu_tflops,
        "jobs": jobs, "slurm_jobs": slurm_jobs, "analyse_group_jobs": len(runs), "embed_group_jobs": len(runs),
        "runs": len(runs), "texts_per_model": n_texts, "hours": hours,
        "gpu_hours": sum(hours[s] * cfg["resources"][s].get("gpu", 0) for s in gpu_stages),
        "cpu_hours": sum(v for k, v in hours.items() if k not in gpu_stages),
        "disk_gb": {k: v / 1e9 for k, v in disk.items()},
        "steady_disk_gb": steady / 1e9,
        "peak_disk_gb": (steady + held_codes + held_checkpoints) / 1e9,
        "peak_parts_gb": {"compressed codes held by concurrent analyse groups": held_codes / 1e9,
                          "checkpoints of concurrent train jobs (x2 during rotation)": held_checkpoints / 1e9},
        "concurrent_jobs": prof["jobs"],
        "mteb_cache_files": mteb_cache_files(n_variants_total, len(ev["tasks"])),
        "limits_h": limits, "over_limit": over,
        "shapes": {m: {"params_M": round(s.params / 1e6, 1), "dim": s.dim, "from": s.source}
                   for m, s in shapes.items()},
        "rates": {k: v for k, v in rates.items() if k != "config"},
    }


def report(p: dict[str, Any]) -> str:
    """The plan as text; every time and size is labelled a projection."""
    lines = [f"Plan for {p['config']}: {p['runs']} runs, {p['texts_per_model']:,} evaluation texts per model",
             "", "Jobs (Snakemake dry run):"]
    lines += [f"  {r:<28} {n:>6}" for r, n in sorted(p["jobs"].items())]
    lines += [f"  SLURM jobs submitted: {p['slurm_jobs']} (one embedding group and one analyse group per run)", ""]
    lines.append(f"PROJECTED from the rates measured in {p['measured']} (not measured at this scale):")
    sp = p["gpu_speedup"]
    how = (f"CPU rate / {sp:g}" if sp else f"FLOPs at an ASSUMED {p['gpu_tflops']:g} TFLOP/s sustained; "
           "pass --gpu-speedup with a measured factor")
    for stage, h in p["hours"].items():
        lines.append(f"  {stage:<14} {h:10.1f} h" + (f"  (GPU stage: {how})" if stage in ("train", "encode") else ""))
    lines.append(f"  GPU-hours {p['gpu_hours']:.1f}   CPU-hours {p['cpu_hours']:.1f}")
    lines.append("  disk, steady state: " + ", ".join(f"{k} {v:.1f} GB" for k, v in p["disk_gb"].items())
                 + f"; total {p['steady_disk_gb']:.1f} GB (plus the HF cache filled by prefetch)")
    lines.append(f"  disk, peak at {p['concurrent_jobs']} concurrent jobs: {p['peak_disk_gb']:.1f} GB = steady + "
                 + " + ".join(f"{v:.1f} GB {k}" for k, v in p["peak_parts_gb"].items()))
    lines.append(f"  mteb result cache: {p['mteb_cache_files']:,} files (results/mteb/)")
    lim = p["limits_h"]
    lines.append(f"  time limits (first attempt): train {lim['train']:.1f} h, embedding group {lim['embed']:.1f} h, "
                 f"analyse group {lim['analyse']:.1f} h; a retry asks for 2x, then 3x")
    if p["over_limit"]:
        lines.append(f"  JOBS PROJECTED OVER THEIR TIME LIMIT ({len(p['over_limit'])}):")
        lines += [f"    {o['job']}: {o['projected_h']:.2f} h > {o['limit_h']:.2f} h" for o in p["over_limit"]]
    else:
        lines.append("  jobs projected over their time limit: none")
    lines.append("  models: " + "; ".join(f"{m} {s['params_M']}M params, dim {s['dim']} ({s['from']})"
                                          for m, s in p["shapes"].items()))
    r = p["rates"]
    lines.append(f"  rates: job start-up {r['train_startup_s']:.1f} s (torch) / {r['cpu_startup_s']:.1f} s (CPU), "
                 f"fit over {r['n_train_jobs']} train jobs with {r['distinct_step_counts']} step counts")
    if not r.get("train_rate_resolved", True):
        lines.append("  the measured train jobs do not resolve a per-step rate (one step count, or start-up "
                     "drowning the steps): CPU training hours use the largest rate the measurement allows; "
                     "GPU ones come from FLOPs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tempcompress.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="the config to plan, e.g. config/paper.yaml")
    ap.add_argument("--measured", default=None,
                    help="working directory of a finished run (e.g. the rehearsal) to measure the rates on "
                         f"(default: the reference measurement {REFERENCE.relative_to(ROOT)})")
    ap.add_argument("--save-rates", help="write the rates measured in --measured to this JSON file")
    ap.add_argument("--profile", default=str(ROOT / "slurm" / "config.yaml"), help="SLURM profile (group sizes)")
    ap.add_argument("--gpu-speedup", type=float, default=None,
                    help="measured GPU speed / measured CPU speed of the GPU stages (default: project them by FLOPs)")
    ap.add_argument("--gpu-tflops", type=float, default=DEFAULT_GPU_TFLOPS,
                    help=f"sustained GPU TFLOP/s for the FLOP projection (default {DEFAULT_GPU_TFLOPS:g})")
    ap.add_argument("--json", help="also write the plan as JSON here")
    args = ap.parse_args(argv)
    if args.save_rates and not args.measured:
        ap.error("--save-rates needs --measured <a finished run's working directory>")
    measured = args.measured or REFERENCE
    rates = measure(measured)
    if args.save_rates:
        saved = {k: v for k, v in rates.items() if k != "config"}
        Path(args.save_rates).write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    p = plan(args.config, measured, args.profile, args.gpu_speedup, args.gpu_tflops, rates=rates)
    print(report(p))
    if args.json:
        Path(args.json).write_text(json.dumps(p, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
