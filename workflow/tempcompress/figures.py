"""Paper figures, each drawn from the tidy tables only (never from the raw grid).

One colour per temperature across every figure (viridis over log tau); aggregation
variants ('multi') are black and the un-fine-tuned base model grey.  A run of the config
that has no row in the tables (e.g. a diverged training run skipped with --keep-going)
is listed on the figure as missing rather than silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .config import expand_runs  # noqa: E402

SPECIAL_COLOURS = {"multi": "#000000", "none": "#8c8c8c"}
VARIANT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
MULTI_STYLES = [":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2)), (0, (3, 3))]
ESTIMATOR_NAMES = {"twonn": "TwoNN", "mle": "MLE (Levina-Bickel)", "lpca": "global PCA (Fukunaga-Olsen)"}


def tau_palette(taus: list[str]) -> dict[str, Any]:
    """A fixed colour for each temperature string (viridis over log tau), plus 'multi'/'none'."""
    numeric = sorted({t for t in taus if t not in SPECIAL_COLOURS}, key=float)
    cmap = plt.get_cmap("viridis")
    if len(numeric) <= 1:  # none: a config without training (only base models)
        pal = {t: cmap(0.5) for t in numeric}
    else:
        lo, hi = math.log(float(numeric[0])), math.log(float(numeric[-1]))
        pal = {t: cmap(0.9 * (math.log(float(t)) - lo) / (hi - lo)) for t in numeric}
    return {**pal, **SPECIAL_COLOURS}


def _all_taus(config: dict[str, Any]) -> list[str]:
    return [s.tau_label for s in expand_runs(config).values()]


def _markers(variants: list[str]) -> dict[str, str]:
    return {v: VARIANT_MARKERS[i % len(VARIANT_MARKERS)] for i, v in enumerate(sorted(set(variants)))}


def _tau_handles(pal: dict[str, Any], taus: Any) -> list[Any]:
    """Legend entries for the temperatures present, numeric ones in order, then multi / none."""
    order = sorted(set(taus), key=lambda x: (x in SPECIAL_COLOURS, 0.0 if x in SPECIAL_COLOURS else float(x)))
    return [plt.Line2D([], [], marker="o", ls="", color=pal[k], label=f"τ={k}") for k in order]


def _variant_handles(markers: dict[str, str]) -> list[Any]:
    return [plt.Line2D([], [], marker=m, ls="", color="w", markeredgecolor="k", label=v) for v, m in markers.items()]


def missing_runs(config: dict[str, Any], present: set[str]) -> list[str]:
    return [r for r in expand_runs(config) if r not in present]


def _note_missing(fig: Any, config: dict[str, Any], present: set[str]) -> None:
    miss = missing_runs(config, present)
    if miss:
        shown = ", ".join(miss[:6]) + (f" (+{len(miss) - 6} more)" if len(miss) > 6 else "")
        fig.text(0.01, 0.005, f"missing (failed or not run): {shown}", color="#b2182b", fontsize=7, ha="left")


def _smallest_dim(scores: pd.DataFrame) -> int:
    return int(scores["dim_num"].dropna().min())


def _mean_over_tasks(df: pd.DataFrame, value: str) -> pd.DataFrame:
    keys = [c for c in ["run", "model", "variant", "kind", "tau", "seed", "method", "dim", "dim_num"] if c in df]
    return df.groupby(keys, dropna=False)[value].mean().reset_index()


def _save(fig: Any, out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def _scatter_runs(ax: Any, d: pd.DataFrame, x: str, y: str, pal: dict[str, Any], markers: dict[str, str]) -> None:
    """One point per run: colour = its temperature, marker = its variant."""
    for _, r in d.iterrows():
        ax.scatter(r[x], r[y], color=pal[r["tau"]], marker=markers[r["variant"]], s=42, edgecolor="k", lw=0.4)


def _finish(
    fig: Any,
    title: str,
    config: dict[str, Any],
    present: set[str],
    out: str | Path,
    legend_ax: Any = None,
    handles: list[Any] | None = None,
) -> None:
    """Legend outside the last panel, title, the note on missing runs, and save."""
    if legend_ax is not None and handles:
        legend_ax.legend(handles=handles, fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.suptitle(title)
    _note_missing(fig, config, present)
    _save(fig, out)


# ---- figures -------------------------------------------------------------------------------


def id_vs_tau(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Intrinsic dimension vs training temperature, one panel per estimator, points = seeds."""
    ids = t["intrinsic_dim"]
    ests = list(dict.fromkeys(ids["estimator"]))
    fig, axes = plt.subplots(1, len(ests), figsize=(4.2 * len(ests), 3.6), squeeze=False, layout="constrained")
    pal = tau_palette(_all_taus(config))
    single = ids[ids["kind"] == "infonce"].copy()
    single["tau_f"] = single["tau"].astype(float)
    for ax, est in zip(axes[0], ests, strict=True):
        d = single[single.estimator == est]
        for (variant, _), g in d.groupby(["variant", "model"]):
            m = g.groupby("tau_f")["id"].agg(["mean", "std"]).reset_index()
            ax.errorbar(m["tau_f"], m["mean"], yerr=m["std"].fillna(0), marker="o", capsize=3, label=variant, lw=1.5)
            ax.scatter(g["tau_f"], g["id"], c=[pal[x] for x in g["tau"]], s=18, zorder=3, edgecolor="k", lw=0.3)
        base = ids[(ids.estimator == est) & (ids.kind == "base")]["id"]
        if len(base):
            ax.axhline(base.mean(), color=SPECIAL_COLOURS["none"], ls="--", lw=1, label="base (no fine-tuning)")
        multi = ids[(ids.estimator == est) & (ids.kind.isin(["multi_temperature", "soup"]))]
        for (variant, g), style in zip(multi.groupby("variant"), MULTI_STYLES, strict=False):
            ax.axhline(g["id"].mean(), color="k", ls=style, lw=1, label=f"{variant} (τ = multi)")
        ax.set_xscale("log")
        ax.set_xlabel("training temperature τ (log scale)")
        ax.set_ylabel(f"intrinsic dimension, {ESTIMATOR_NAMES.get(est, est)}")
        ax.set_title(ESTIMATOR_NAMES.get(est, est))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    _finish(fig, "Intrinsic dimension of the embedding space vs temperature", config, set(ids["run"]), out)


def score_vs_dim(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Mean main score over tasks vs target dim, per compression method, one line per tau."""
    s = t["scores"]
    native = s.loc[s.method == "none"].copy()
    methods = list(config["compression"]["methods"])
    single = s[s.kind.isin(["infonce", "base"]) & (s.variant.isin(["base", _first_infonce(config)]))]
    pal = tau_palette(_all_taus(config))
    ncol = min(3, len(methods))
    nrow = math.ceil(len(methods) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, method in zip(axes.flat, methods, strict=False):
        d = _mean_over_tasks(single[single.method == method], "score")
        full = _mean_over_tasks(native[native.run.isin(single.run)], "score")
        for tau, g in d.groupby("tau"):
            m = g.groupby("dim_num")["score"].agg(["mean", "std"]).reset_index()
            ax.errorbar(
                m["dim_num"],
                m["mean"],
                yerr=m["std"].fillna(0),
                color=pal[tau],
                marker="o",
                ms=4,
                capsize=2,
                label=f"τ={tau}" if tau != "none" else "base",
            )
            f = full[full.tau == tau]["score"].mean()
            ax.axhline(f, color=pal[tau], ls=":", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(method)
        ax.set_xlabel("target dimension (log2)")
        ax.set_ylabel("mean main score over tasks")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(methods) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, title="dotted: full size", title_fontsize=7)
    _finish(
        fig,
        f"Score vs target dimension ({_first_infonce(config)} fine-tuning, mean ± sd over seeds)",
        config,
        set(s["run"]),
        out,
    )


def _first_infonce(config: dict[str, Any]) -> str:
    for name, var in config["variants"].items():
        if var["kind"] == "infonce":
            return name
    return "base"


def retention_vs_score(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Retention at the smallest dim vs absolute full-size score (the paper's trade-off plot)."""
    s = t["scores"]
    dmin = _smallest_dim(s)
    methods = [m for m in config["compression"]["methods"] if m in ("truncation", "binarization")] or config[
        "compression"
    ]["methods"][:2]
    pal = tau_palette(_all_taus(config))
    markers = _markers(list(s["variant"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods), 3.8), squeeze=False, layout="constrained")
    for ax, method in zip(axes[0], methods, strict=True):
        dim = dmin if method != "binarization" else int(s[s.method == method]["dim_num"].max())
        comp = _mean_over_tasks(s[(s.method == method) & (s.dim_num == dim)], "retention")
        full = _mean_over_tasks(s[s.method == "none"], "score")[["run", "score"]]
        d = comp.merge(full, on="run")
        _scatter_runs(ax, d, "score", "retention", pal, markers)
        ax.set_xlabel("full-size score (mean main score over tasks)")
        ax.set_ylabel(f"retention at {dim} dims (compressed / full)")
        ax.set_title(f"{method}, {dim} dims")
        ax.grid(alpha=0.3)
    _finish(
        fig,
        "Compressibility vs absolute quality",
        config,
        set(s["run"]),
        out,
        axes[0][-1],
        _tau_handles(pal, s["tau"]) + _variant_handles(markers),
    )


def retention_vs_id(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Retention at the smallest dim (truncation) vs intrinsic dimension: does ID predict it?"""
    s, ids = t["scores"], t["intrinsic_dim"]
    dmin = _smallest_dim(s)
    method = "truncation" if "truncation" in set(s.method) else config["compression"]["methods"][0]
    comp = _mean_over_tasks(s[(s.method == method) & (s.dim_num == dmin)], "retention")
    ests = list(dict.fromkeys(ids["estimator"]))
    pal = tau_palette(_all_taus(config))
    markers = _markers(list(s["variant"]))
    fig, axes = plt.subplots(
        1, len(ests), figsize=(4.2 * len(ests), 3.6), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, est in zip(axes[0], ests, strict=True):
        d = comp.merge(ids[ids.estimator == est][["run", "id"]], on="run")
        _scatter_runs(ax, d, "id", "retention", pal, markers)
        if len(d) > 2:
            rho = d[["id", "retention"]].corr(method="spearman").iloc[0, 1]
            ax.set_title(f"{ESTIMATOR_NAMES.get(est, est)}: Spearman ρ = {rho:.2f} (n={len(d)})", fontsize=9)
        ax.set_xlabel(f"intrinsic dimension, {ESTIMATOR_NAMES.get(est, est)}")
        ax.set_ylabel(f"{method} retention at {dmin} dims")
        ax.grid(alpha=0.3)
    _finish(
        fig,
        "Does intrinsic dimension predict compressibility? (colour = τ)",
        config,
        set(s["run"]),
        out,
        axes[0][-1],
        _variant_handles(markers),
    )


def task_type_tradeoff(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Full-size main score per task vs temperature (retrieval vs clustering vs ... trade-off)."""
    s = t["scores"]
    d = s[(s.method == "none") & (s.kind == "infonce")].copy()
    d["tau_f"] = d["tau"].astype(float)
    tasks = list(dict.fromkeys(s["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.3), squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks, strict=True):
        g = d[d.task == task]
        sns.lineplot(data=g, x="tau_f", y="score", hue="variant", marker="o", errorbar="sd", ax=ax)
        base = s[(s.method == "none") & (s.kind == "base") & (s.task == task)]["score"]
        if len(base):
            ax.axhline(base.mean(), color=SPECIAL_COLOURS["none"], ls="--", lw=1, label="base")
        meta = s[s.task == task].iloc[0]
        ax.set_xscale("log")
        ax.set_title(f"{task}\n({meta['task_type']})", fontsize=9)
        ax.set_xlabel("training temperature τ")
        ax.set_ylabel(f"{meta['metric']} (full size)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _finish(fig, "Task-type trade-off vs temperature", config, set(s["run"]), out)


def variants_pareto(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Full-size score vs score at the two smallest target dims, per variant (mean ± sd over seeds)."""
    s = t["scores"]
    dims = sorted(s["dim_num"].dropna().unique())[:2]
    methods = [m for m in ("truncation", "binarization", "pca", "hpd") if m in set(s.method)]
    per_run = _mean_over_tasks(s, "score")
    full = per_run[per_run.method == "none"][["run", "score"]].rename(columns={"score": "full"})
    pal = tau_palette(_all_taus(config))
    markers = _markers(list(s["variant"]))
    fig, axes = plt.subplots(
        len(dims), len(methods), figsize=(3.9 * len(methods), 3.4 * len(dims)), squeeze=False, layout="constrained"
    )
    for i, dim in enumerate(dims):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            d = per_run[(per_run.method == method) & (per_run.dim_num == dim)].merge(full, on="run")
            g = (
                d.groupby(["variant", "tau"])
                .agg(fx=("full", "mean"), fy=("score", "mean"), sx=("full", "std"), sy=("score", "std"))
                .reset_index()
            )
            for _, r in g.iterrows():
                ax.errorbar(
                    r["fx"],
                    r["fy"],
                    xerr=np.nan_to_num(r["sx"]),
                    yerr=np.nan_to_num(r["sy"]),
                    color=pal[r["tau"]],
                    marker=markers[r["variant"]],
                    ms=6,
                    mec="k",
                    mew=0.4,
                    ls="",
                )
            ax.set_title(f"{method} @ {int(dim)} dims", fontsize=9)
            ax.set_xlabel("full-size score")
            ax.set_ylabel(f"score at {int(dim)} dims")
            ax.grid(alpha=0.3)
    _finish(
        fig,
        "Variants: quality at full size vs after compression (upper right is better)",
        config,
        set(s["run"]),
        out,
        axes[0][-1],
        _variant_handles(markers) + _tau_handles(pal, s["tau"]),
    )


def variants_retention(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Retention vs target dim per variant (best tau shown for single-tau variants is not picked: all shown)."""
    s = t["scores"]
    methods = [m for m in ("truncation", "binarization", "pca", "hpd") if m in set(s.method)]
    d = _mean_over_tasks(s[s.method.isin(methods)], "retention")
    d["label"] = d["variant"] + np.where(d["tau"].isin(["multi", "none"]), "", " τ=" + d["tau"])
    fig, axes = plt.subplots(
        1, len(methods), figsize=(4.2 * len(methods), 3.8), squeeze=False, sharey=True, layout="constrained"
    )
    for ax, method in zip(axes[0], methods, strict=True):
        sns.lineplot(
            data=d[d.method == method],
            x="dim_num",
            y="retention",
            hue="label",
            style="label",
            markers=True,
            dashes=False,
            errorbar="sd",
            ax=ax,
            legend=ax is axes[0][-1],
        )
        ax.set_xscale("log", base=2)
        ax.set_title(method)
        ax.set_xlabel("target dimension (log2)")
        ax.set_ylabel("retention (compressed / full score)")
        ax.grid(alpha=0.3)
    if axes[0][-1].get_legend():
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=6, title=None)
    _finish(
        fig,
        "Retention vs target dimension per variant (mean over tasks, sd over seeds)",
        config,
        set(s["run"]),
        out,
    )


def training_loss(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Training loss per step for every trained run."""
    loss = t["training_loss"]
    variants = list(dict.fromkeys(loss["variant"])) if len(loss) else []
    pal = tau_palette(_all_taus(config))
    fig, axes = plt.subplots(
        1, max(1, len(variants)), figsize=(3.4 * max(1, len(variants)), 3), squeeze=False, layout="constrained"
    )
    for ax, variant in zip(axes[0], variants, strict=False):
        for (_run, tau), g in loss[loss.variant == variant].groupby(["run", "tau"]):
            ax.plot(g["step"], g["loss"], color=pal.get(str(tau), "k"), lw=1, label=f"τ={tau}")
        ax.set_title(variant)
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=True))
        ax.legend(uniq.values(), uniq.keys(), fontsize=6)
    fig.suptitle("Training loss curves")
    _save(fig, out)


FIGURES: dict[str, tuple[Callable[..., None], str]] = {
    "id_vs_tau": (
        id_vs_tau,
        "Intrinsic dimension (TwoNN, MLE, lPCA) of each model's embeddings of a fixed "
        "sample of training-corpus sentences, vs the training temperature τ; points are seeds, "
        "bars ± sd; dashed grey = un-fine-tuned base model, dotted black = aggregation variants.",
    ),
    "score_vs_dim": (
        score_vs_dim,
        "Mean main score over the evaluation tasks vs target dimension for each "
        "compression method, one colour per training temperature; dotted lines = full-size score.",
    ),
    "retention_vs_score": (
        retention_vs_score,
        "Retention (compressed / full-size score, mean over tasks) at the "
        "smallest truncation dim and for binarization vs the absolute full-size score; each "
        "point a trained model (colour = τ, marker = variant). The paper's trade-off plot.",
    ),
    "retention_vs_id": (
        retention_vs_id,
        "Retention under truncation to the smallest target dim vs the "
        "intrinsic dimension estimate of the same model; title gives Spearman's ρ.",
    ),
    "task_type_tradeoff": (
        task_type_tradeoff,
        "Full-size main score of each task vs training temperature, "
        "per variant (± sd over seeds); dashed = base model.",
    ),
    "variants_pareto": (
        variants_pareto,
        "Every variant's full-size score vs its score after compression to the "
        "two smallest target dims (mean ± sd over seeds); up and right is better.",
    ),
    "variants_retention": (
        variants_retention,
        "Retention vs target dimension for each training variant and method (mean over tasks, band = sd over seeds).",
    ),
    "training_loss": (training_loss, "Training loss (InfoNCE / variant loss) per step of every fine-tuned run."),
}


def load_tables(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
    return {k: pd.read_parquet(Path(v).with_suffix(".parquet")) for k, v in paths.items()}


def make_figure(name: str, tables: dict[str, str], config: dict[str, Any], out: str) -> None:
    """Draw one named figure from the tidy tables."""
    sns.set_theme(style="ticks", context="paper")
    FIGURES[name][0](load_tables(tables), config, out)


# Quality per byte and the ID forecast (issue 14); imported last: it uses the helpers above.
from .figures_budget import BUDGET_FIGURES  # noqa: E402

FIGURES.update(BUDGET_FIGURES)
