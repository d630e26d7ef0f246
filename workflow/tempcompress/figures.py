"""Paper figures, each drawn from the tidy tables only (never from the raw grid).

Every figure is faceted by model (one row of panels per model: nothing is ever averaged over
models), and every statistic is a mean over seeds with its 95% t-interval (mean ± t·sd/√n,
``stats.mean_ci``); a point with one seed is drawn without a bar, and each panel states the
number of seeds per point.  Scores are averaged over the tasks of a task type, then over task
types; a retention averaged over task types is chance-corrected, (score - chance) /
(full - chance), because accuracy, v-measure, nDCG and Spearman have different floors.

Each figure function ``f(tables, config, out)`` draws ``out`` and returns the DataFrame it
plotted (one row per drawn point, with ``mean`` / ``ci_lo`` / ``ci_hi`` / ``n`` columns), which
the figure rule also writes to ``results/figure_data/<name>.csv``.  ``FIGURES`` maps a figure
name to ``(function, caption)``; add an entry to add a figure (one rule per entry).

One colour per temperature across every figure (viridis over log τ); aggregation variants
('multi') are black and the un-fine-tuned base model grey.  A run of the config that has no
row in the tables (e.g. a diverged training run skipped with --keep-going) is listed on the
figure as missing rather than silently dropped.
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
from .figure_names import FIGURE_NAMES  # noqa: E402
from .stats import spearman_ci, summarise  # noqa: E402
from .tables import core_variant, headline_ids, ordered_methods, per_run, per_run_type, tau_float  # noqa: E402

SPECIAL_COLOURS = {"multi": "#000000", "none": "#8c8c8c"}
VARIANT_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
MULTI_STYLES = [":", "-.", (0, (1, 3)), (0, (5, 2, 1, 2)), (0, (3, 3))]
ESTIMATOR_NAMES = {"twonn": "TwoNN", "mle": "MLE (Levina-Bickel)", "lpca": "global PCA (Fukunaga-Olsen)"}
CI_NOTE = "95% t-interval over seeds; no bar = one seed"
GRID_KINDS = ("infonce",)
SINGLE_TAU_KINDS = ("infonce", "matryoshka", "matryoshka2d", "sparse")


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


def _all_taus(config: dict[str, Any], *frames: pd.DataFrame) -> list[str]:
    taus = [s.tau_label for s in expand_runs(config).values()]
    for f in frames:
        if "tau" in f:
            taus += [str(t) for t in f["tau"].dropna().unique()]
    return taus


def _markers(variants: Any) -> dict[str, str]:
    return {v: VARIANT_MARKERS[i % len(VARIANT_MARKERS)] for i, v in enumerate(sorted(set(variants)))}


def _tau_key(x: str) -> tuple[bool, float]:
    return (x in SPECIAL_COLOURS, 0.0 if x in SPECIAL_COLOURS else float(x))


def _tau_handles(pal: dict[str, Any], taus: Any) -> dict[str, Any]:
    """Legend entries for the temperatures present, numeric ones in order, then multi / none."""
    return {
        (f"τ={k}" if k not in SPECIAL_COLOURS else ("τ = multi" if k == "multi" else "base")): plt.Line2D(
            [], [], marker="o", ls="", color=pal[k]
        )
        for k in sorted(set(taus), key=_tau_key)
    }


def _variant_handles(markers: dict[str, str]) -> dict[str, Any]:
    return {v: plt.Line2D([], [], marker=m, ls="", color="w", markeredgecolor="k") for v, m in markers.items()}


def missing_runs(config: dict[str, Any], present: set[str]) -> list[str]:
    return [r for r in expand_runs(config) if r not in present]


def _note_missing(fig: Any, config: dict[str, Any], present: set[str]) -> None:
    miss = missing_runs(config, present)
    if miss:
        shown = ", ".join(miss[:6]) + (f" (+{len(miss) - 6} more)" if len(miss) > 6 else "")
        fig.text(0.01, -0.04, f"missing (failed or not run): {shown}", color="#b2182b", fontsize=7, ha="left")


def _save(fig: Any, out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def _smallest_dim(df: pd.DataFrame, method: str | None = None) -> float:
    d = df if method is None else df[df["method"] == method]
    return float(d["dim_num"].dropna().min())


def _n_note(ax: Any, n: pd.Series) -> None:
    """'n = 3 seeds' (or a range) in the corner of a panel."""
    n = n.dropna()
    if n.empty:
        return
    lo, hi = int(n.min()), int(n.max())
    text = f"n = {lo} seed{'s' if hi > 1 else ''}" if lo == hi else f"n = {lo}–{hi} seeds"
    ax.text(0.98, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="#444444")


def _grid(data: pd.DataFrame, col: str, col_order: list[Any] | None = None, sharey: bool | str = "row",
          sharex: bool = False, height: float = 2.8, aspect: float = 1.25) -> sns.FacetGrid:
    """One row of panels per model, one column per ``col`` value."""
    rows = sorted(data["model"].unique()) if len(data) else None
    return sns.FacetGrid(data, row="model", col=col, row_order=rows, col_order=col_order, sharex=sharex,
                         sharey=sharey, margin_titles=True, height=height, aspect=aspect, despine=False)


def _ci_lines(data: pd.DataFrame, x: str, hue: str, palette: dict[str, Any], label_fmt: str = "{}",
              line: bool = True, marker: str = "o", **_: Any) -> None:
    """Mean over seeds per x for each hue level: a line with markers, 95% CI bars where n ≥ 2."""
    ax = plt.gca()
    for level, g in data.groupby(hue, sort=False):
        g = g.sort_values(x)
        colour = palette.get(level, "k")
        ax.plot(g[x], g["mean"], color=colour, marker=marker, ms=4, lw=1.4 if line else 0,
                label=label_fmt.format(level))
        ci = g.dropna(subset=["ci_lo", "ci_hi"])
        if len(ci):
            ax.errorbar(ci[x], ci["mean"], yerr=[ci["mean"] - ci["ci_lo"], ci["ci_hi"] - ci["mean"]], fmt="none",
                        ecolor=colour, capsize=2, lw=1)
    _n_note(ax, data["n"])


def _ci_points_xy(data: pd.DataFrame, palette: dict[str, Any], markers: dict[str, str], **_: Any) -> None:
    """One point per (variant, tau): x and y means over seeds with their 95% CI bars where n ≥ 2."""
    ax = plt.gca()
    for _, r in data.iterrows():
        colour = palette.get(r["tau"], "k")
        ax.plot(r["x_mean"], r["y_mean"], marker=markers[r["variant"]], color=colour, ms=6, mec="k", mew=0.4, ls="")
        xerr = None if np.isnan(r["x_lo"]) else [[r["x_mean"] - r["x_lo"]], [r["x_hi"] - r["x_mean"]]]
        yerr = None if np.isnan(r["y_lo"]) else [[r["y_mean"] - r["y_lo"]], [r["y_hi"] - r["y_mean"]]]
        if xerr is not None or yerr is not None:
            ax.errorbar(r["x_mean"], r["y_mean"], xerr=xerr, yerr=yerr, fmt="none", ecolor=colour, lw=0.9, capsize=2)
    _n_note(ax, data["n"])


def _xy_summary(runs: pd.DataFrame, keys: list[str], x: str, y: str) -> pd.DataFrame:
    """Per group: means and 95% CIs over seeds of two per-run columns (``x``, ``y``)."""
    sx = summarise(runs, keys, x).rename(columns={"mean": "x_mean", "ci_lo": "x_lo", "ci_hi": "x_hi"})
    sy = summarise(runs, keys, y).rename(columns={"mean": "y_mean", "ci_lo": "y_lo", "ci_hi": "y_hi"})
    return sx.drop(columns="n").merge(sy, on=[k for k in keys if k in runs.columns])


def _finish(g: sns.FacetGrid, title: str, config: dict[str, Any], present: set[str], out: str | Path,
            handles: dict[str, Any] | None = None, titles: bool = True, hspace: float | None = None) -> None:
    """Titles (unless the caller set its own), grid lines, the legend, the note on missing runs, and save;
    ``hspace`` makes room between rows of panels for titles of several lines."""
    if titles:
        g.set_titles(row_template="{row_name}", col_template="{col_name}", size=8)
    for ax in g.axes.flat:
        ax.grid(alpha=0.3)
    if handles:
        g.add_legend(legend_data=handles, fontsize=7)
    if hspace is not None:
        g.figure.subplots_adjust(hspace=hspace)
    _suptitle_above_panels(g.figure, title)
    _note_missing(g.figure, config, present)
    _save(g.figure, out)


def _suptitle_above_panels(fig: Any, title: str) -> None:
    """The figure title, placed above the highest panel title (two-line panel titles would
    otherwise run into it)."""
    fig.canvas.draw()
    to_fig = fig.transFigure.inverted()
    tops = [ax.title.get_window_extent().transformed(to_fig).y1 for ax in fig.axes if ax.get_title()]
    fig.suptitle(title, y=max([1.0, *tops]) + 0.01, va="bottom")


def _empty(out: str | Path, title: str, config: dict[str, Any], present: set[str]) -> pd.DataFrame:
    """A figure whose data is absent from this run's tables: a page that says so."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}:\nno data for this figure in this run's tables", ha="center", va="center")
    _note_missing(fig, config, present)
    _save(fig, out)
    return pd.DataFrame()


def _with_tau_f(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["tau_f"] = df["tau"].map(tau_float)
    return df


# ---- figures -------------------------------------------------------------------------------


def id_vs_tau(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Intrinsic dimension vs training temperature; rows = models, columns = estimators."""
    ids = _with_tau_f(headline_ids(t["intrinsic_dim"]))
    title = "Intrinsic dimension of the embedding space vs temperature"
    if ids.empty:
        return _empty(out, title, config, set())
    ests = list(dict.fromkeys(ids["estimator"]))
    single = ids[ids["kind"].isin(SINGLE_TAU_KINDS) & ids["tau_f"].notna()]
    data = summarise(single, ["model", "estimator", "variant", "kind", "tau", "tau_f"], "id")
    data["role"] = "sweep"
    refs = summarise(ids[ids["kind"].isin(["base", "multi_temperature", "soup"])],
                     ["model", "estimator", "variant", "kind", "tau"], "id")
    refs["role"] = "reference"
    data = pd.concat([data, refs], ignore_index=True)
    variants = list(dict.fromkeys(single["variant"]))
    palette = dict(zip(variants, sns.color_palette("tab10", max(1, len(variants))), strict=False))

    def draw(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        sweep = data[data["role"] == "sweep"]
        grid_part = sweep[sweep["kind"] == "infonce"]
        if len(grid_part):
            _ci_lines(grid_part, "tau_f", "variant", palette)
        other = sweep[sweep["kind"] != "infonce"]
        if len(other):
            _ci_lines(other, "tau_f", "variant", palette, line=False, marker="D")
        for style, (_, r) in zip(MULTI_STYLES * 4, data[data["role"] == "reference"].iterrows(), strict=False):
            colour = SPECIAL_COLOURS["none"] if r["kind"] == "base" else "k"
            ls = "--" if r["kind"] == "base" else style
            ax.axhline(r["mean"], color=colour, ls=ls, lw=1)
            if not np.isnan(r["ci_lo"]):
                ax.axhspan(r["ci_lo"], r["ci_hi"], color=colour, alpha=0.08)
        ax.set_xscale("log")

    g = _grid(data, "estimator", ests, sharey=False)
    g.map_dataframe(draw)
    g.set_axis_labels("training temperature τ (log scale)", "intrinsic dimension")
    handles = {v: plt.Line2D([], [], color=palette[v], marker="o") for v in variants}
    styles = iter(MULTI_STYLES * 4)
    for v, kind in refs[["variant", "kind"]].drop_duplicates().itertuples(index=False):
        if kind == "base":
            handles["base (no fine-tuning)"] = plt.Line2D([], [], color=SPECIAL_COLOURS["none"], ls="--")
        else:
            handles[f"{v} (τ = multi)"] = plt.Line2D([], [], color="k", ls=next(styles))
    g.set_titles(row_template="{row_name}", col_template="{col_name}")
    _finish(g, f"{title} ({CI_NOTE})", config, set(ids["run"]), out, handles)
    return data


def score_vs_dim(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Mean main score vs target dim per compression method; rows = models, one line per tau."""
    s = t["scores"]
    title = "Score vs target dimension"
    variant = core_variant(s)
    if variant is None:
        return _empty(out, title, config, set(s["run"]) if len(s) else set())
    runs = per_run(s[s["variant"].isin([variant, "base"])], "score")
    data = summarise(runs, ["model", "method", "tau", "dim_num"], "score")
    methods = ordered_methods(data["method"])
    pal = tau_palette(_all_taus(config, s))
    full = data[data["method"] == "none"]

    def draw(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        _ci_lines(data, "dim_num", "tau", pal)
        model = data["model"].iloc[0]
        for _, r in full[full["model"] == model].iterrows():
            ax.axhline(r["mean"], color=pal.get(r["tau"], "k"), ls=":", lw=0.8)
        ax.set_xscale("log", base=2)

    g = _grid(data[data["method"] != "none"], "method", methods)
    g.map_dataframe(draw)
    g.set_axis_labels("target dimension (log2)", "mean main score over task types")
    handles = _tau_handles(pal, data["tau"])
    handles["full size (dotted)"] = plt.Line2D([], [], color="k", ls=":")
    _finish(g, f"{title} ({variant} fine-tuning; {CI_NOTE})", config, set(s["run"]), out, handles)
    return data


def _retention_panels(s: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(panel label, method, rows): truncation at its smallest dim, binarization at its largest dim
    (the model's native dim when it is scored there), per model."""
    methods = [m for m in ("truncation", "binarization") if m in set(s["method"])] or ordered_methods(s["method"])[:2]
    panels = []
    for method in methods:
        rows = []
        for _model, d in s[s["method"] == method].groupby("model"):
            dim = d["dim_num"].max() if method == "binarization" else d["dim_num"].min()
            rows.append(d[d["dim_num"] == dim])
        if rows:
            which = "largest dim" if method == "binarization" else "smallest dim"
            panels.append((f"{method}, {which}", method, pd.concat(rows)))
    return panels


def retention_vs_score(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Chance-corrected retention vs absolute full-size score (the paper's trade-off plot)."""
    s = t["scores"]
    full = per_run(s[s["method"] == "none"], "score")[["run", "score"]].rename(columns={"score": "full"})
    frames = []
    for label, _method, rows in _retention_panels(s):
        r = per_run(rows, "retention_cc").merge(full, on="run")
        r["panel"] = label
        frames.append(r)
    title = "Compressibility vs absolute quality"
    if not frames:
        return _empty(out, title, config, set(s["run"]))
    runs = pd.concat(frames, ignore_index=True)
    data = _xy_summary(runs, ["model", "panel", "method", "dim", "variant", "tau"], "full", "retention_cc")
    pal = tau_palette(_all_taus(config, s))
    markers = _markers(data["variant"])
    g = _grid(data, "panel", [p[0] for p in _retention_panels(s)], sharey=False)
    g.map_dataframe(_ci_points_xy, palette=pal, markers=markers)
    for (model, panel), ax in g.axes_dict.items():
        dims = data[(data["model"] == model) & (data["panel"] == panel)]["dim"].unique()
        ax.set_title(f"{model} | {panel}: {', '.join(map(str, dims))}", fontsize=8)
    g.set_axis_labels("full-size score (mean over task types)", "chance-corrected retention")
    handles = {**_tau_handles(pal, data["tau"]), **_variant_handles(markers)}
    _finish(g, f"{title} ({CI_NOTE})", config, set(s["run"]), out, handles, titles=False)
    return data


def retention_vs_id(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Chance-corrected retention after truncation to the smallest dim vs intrinsic dimension."""
    s, ids = t["scores"], headline_ids(t["intrinsic_dim"])
    method = "truncation" if "truncation" in set(s["method"]) else ordered_methods(s["method"])[0]
    rows = s[s["method"] == method]
    rows = rows[rows["dim_num"] == rows.groupby("model")["dim_num"].transform("min")]
    comp = per_run(rows, "retention_cc")
    runs = comp.merge(ids[["run", "estimator", "id"]], on="run")
    title = "Does intrinsic dimension predict compressibility?"
    if runs.empty:
        return _empty(out, title, config, set(s["run"]))
    data = _xy_summary(runs, ["model", "estimator", "dim", "variant", "tau"], "id", "retention_cc")
    rhos = []
    for (model, est), g in runs.groupby(["model", "estimator"]):
        r = spearman_ci(g["id"], g["retention_cc"])
        rhos.append({"model": model, "estimator": est, "rho": r.value, "rho_lo": r.lo, "rho_hi": r.hi,
                     "rho_n_runs": r.n})
    data = data.merge(pd.DataFrame(rhos), on=["model", "estimator"], how="left")
    pal = tau_palette(_all_taus(config, s))
    markers = _markers(data["variant"])
    ests = list(dict.fromkeys(runs["estimator"]))
    g = _grid(data, "estimator", ests, sharey="row")
    g.map_dataframe(_ci_points_xy, palette=pal, markers=markers)
    g.set_axis_labels("intrinsic dimension", f"{method} retention (chance-corr.)")
    for (model, est), ax in g.axes_dict.items():
        r = data[(data["model"] == model) & (data["estimator"] == est)]
        text = f"{model} | {ESTIMATOR_NAMES.get(est, est)}"
        if len(r) and not np.isnan(r["rho"].iloc[0]):
            r = r.iloc[0]
            ci = "" if np.isnan(r["rho_lo"]) else f" [{r['rho_lo']:.2f}, {r['rho_hi']:.2f}]"
            text += f"\nSpearman ρ over runs = {r['rho']:.2f}{ci} (n={int(r['rho_n_runs'])} runs)"
        ax.set_title(text, fontsize=7)
    dims = ", ".join(sorted(map(str, data["dim"].unique())))
    _finish(g, f"{title} ({method} to {dims} dims; {CI_NOTE}; ρ over runs is descriptive only: runs share τ)",
            config, set(s["run"]), out, {**_tau_handles(pal, data["tau"]), **_variant_handles(markers)},
            titles=False, hspace=0.45)
    return data


def task_type_tradeoff(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Full-size main score per task type vs temperature, per variant; rows = models."""
    s = _with_tau_f(t["scores"])
    d = s[(s["method"] == "none") & (s["kind"] == "infonce")]
    title = "Task-type trade-off vs temperature (full size)"
    if d.empty:
        return _empty(out, title, config, set(s["run"]))
    runs = _with_tau_f(per_run_type(d, "score"))
    data = summarise(runs, ["model", "task_type", "variant", "tau", "tau_f"], "score")
    base = summarise(per_run_type(s[(s["method"] == "none") & (s["kind"] == "base")], "score"),
                     ["model", "task_type"], "score")
    base["variant"] = "base"
    variants = list(dict.fromkeys(data["variant"]))
    palette = dict(zip(variants, sns.color_palette("tab10", max(1, len(variants))), strict=False))

    def draw(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        _ci_lines(data, "tau_f", "variant", palette)
        b = base[(base["model"] == data["model"].iloc[0]) & (base["task_type"] == data["task_type"].iloc[0])]
        for _, r in b.iterrows():
            ax.axhline(r["mean"], color=SPECIAL_COLOURS["none"], ls="--", lw=1)
        ax.set_xscale("log")

    g = _grid(data, "task_type", sorted(data["task_type"].unique()), sharey=False)
    g.map_dataframe(draw)
    g.set_axis_labels("training temperature τ", "main score (full size)")
    handles = {v: plt.Line2D([], [], color=palette[v], marker="o") for v in variants}
    handles["base (no fine-tuning)"] = plt.Line2D([], [], color=SPECIAL_COLOURS["none"], ls="--")
    _finish(g, f"{title} ({CI_NOTE})", config, set(s["run"]), out, handles)
    return pd.concat([data, base], ignore_index=True)


def retention_by_task_type(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Retention (compressed / full) at the smallest dim per task type vs temperature, per method."""
    s = _with_tau_f(t["scores"])
    variant = core_variant(s)
    title = "Retention per task type at the smallest target dim"
    if variant is None:
        return _empty(out, title, config, set(s["run"]) if len(s) else set())
    d = s[(s["variant"] == variant) & (s["method"] != "none")]
    d = d[d["dim_num"] == d.groupby("model")["dim_num"].transform("min")]
    runs = _with_tau_f(per_run_type(d, "retention"))
    data = summarise(runs, ["model", "task_type", "method", "dim", "tau", "tau_f"], "retention")
    methods = ordered_methods(data["method"])
    palette = dict(zip(methods, sns.color_palette("tab10", max(1, len(methods))), strict=False))

    def draw(data: pd.DataFrame, **_: Any) -> None:
        _ci_lines(data, "tau_f", "method", palette)
        plt.gca().set_xscale("log")

    g = _grid(data, "task_type", sorted(data["task_type"].unique()), sharey=False)
    g.map_dataframe(draw)
    g.set_axis_labels("training temperature τ", "retention (compressed / full)")
    dims = ", ".join(sorted(map(str, data["dim"].unique())))
    handles = {m: plt.Line2D([], [], color=palette[m], marker="o") for m in methods}
    _finish(g, f"{title} ({dims}; {variant}; {CI_NOTE})", config, set(s["run"]), out, handles)
    return data


def variants_pareto(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Full-size score vs score at the two smallest target dims, per variant; rows = models."""
    s = t["scores"]
    title = "Variants: quality at full size vs after compression (upper right is better)"
    comp = s[s["method"] != "none"]
    if comp.empty:
        return _empty(out, title, config, set(s["run"]))
    dims = sorted(comp["dim_num"].dropna().unique())[:2]
    methods = [m for m in ordered_methods(s["method"]) if m in ("truncation", "binarization", "pca", "simproj", "hpd")]
    methods = methods or ordered_methods(s["method"])[:3]
    runs = per_run(s, "score")
    full = runs[runs["method"] == "none"][["run", "score"]].rename(columns={"score": "full"})
    sel = runs[runs["method"].isin(methods) & runs["dim_num"].isin(dims)].merge(full, on="run")
    sel["panel"] = sel["method"] + " @ " + sel["dim_num"].astype(int).astype(str)
    data = _xy_summary(sel, ["model", "panel", "method", "dim_num", "variant", "tau"], "full", "score")
    pal = tau_palette(_all_taus(config, s))
    markers = _markers(data["variant"])
    order = [f"{m} @ {int(d)}" for d in dims for m in methods if f"{m} @ {int(d)}" in set(data["panel"])]
    g = _grid(data, "panel", order, sharey=False)
    g.map_dataframe(_ci_points_xy, palette=pal, markers=markers)
    g.set_axis_labels("full-size score", "score after compression")
    _finish(g, f"{title} ({CI_NOTE})", config, set(s["run"]), out,
            {**_variant_handles(markers), **_tau_handles(pal, data["tau"])})
    return data


def variants_retention(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Chance-corrected retention vs target dim per variant and method; rows = models."""
    s = t["scores"]
    title = "Retention vs target dimension per variant"
    comp = s[s["method"] != "none"]
    if comp.empty:
        return _empty(out, title, config, set(s["run"]))
    runs = per_run(comp, "retention_cc")
    runs["label"] = runs["variant"] + np.where(runs["tau"].isin(["multi", "none"]), "", " τ=" + runs["tau"])
    data = summarise(runs, ["model", "method", "label", "variant", "tau", "dim_num"], "retention_cc")
    labels = list(dict.fromkeys(data.sort_values(["variant", "tau"])["label"]))
    palette = dict(zip(labels, sns.color_palette("husl", max(1, len(labels))), strict=False))

    def draw(data: pd.DataFrame, **_: Any) -> None:
        _ci_lines(data, "dim_num", "label", palette)
        plt.gca().set_xscale("log", base=2)

    g = _grid(data, "method", ordered_methods(data["method"]))
    g.map_dataframe(draw)
    g.set_axis_labels("target dimension (log2)", "chance-corrected retention")
    handles = {lab: plt.Line2D([], [], color=palette[lab], marker="o") for lab in labels}
    _finish(g, f"{title} (mean over task types; {CI_NOTE})", config, set(s["run"]), out, handles)
    return data


def training_loss(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> pd.DataFrame:
    """Training loss per step, mean over seeds with its 95% band; rows = models, columns = variants."""
    loss = t["training_loss"]
    title = "Training loss curves"
    # base models and soups take no training step: no curve is missing for them
    present = {r for r, spec in expand_runs(config).items() if spec.kind in ("base", "soup")}
    present |= set(loss["run"]) if "run" in loss else set()
    if loss.empty or "model" not in loss.columns:
        return _empty(out, title, config, present)
    loss = loss.assign(tau=loss["tau"].astype(str))
    data = summarise(loss, ["model", "variant", "tau", "step"], "loss")
    pal = tau_palette(_all_taus(config, loss))

    def draw(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        for tau, g in data.groupby("tau"):
            g = g.sort_values("step")
            ax.plot(g["step"], g["mean"], color=pal.get(tau, "k"), lw=1)
            ci = g.dropna(subset=["ci_lo"])
            if len(ci):
                ax.fill_between(ci["step"], ci["ci_lo"], ci["ci_hi"], color=pal.get(tau, "k"), alpha=0.2, lw=0)
        _n_note(ax, data["n"])

    g = _grid(data, "variant", list(dict.fromkeys(data["variant"])), sharey=False)
    g.map_dataframe(draw)
    g.set_axis_labels("training step", "training loss")
    _finish(g, f"{title} (band: {CI_NOTE})", config, present, out, _tau_handles(pal, data["tau"]))
    return data


CI_CAPTION = (" Rows of panels are models (never averaged together); points are means over seeds with 95% "
              "t-intervals (mean ± t·sd/√n), a point with one seed has no bar, and each panel gives n "
              "(seeds per point).")

FIGURES: dict[str, tuple[Callable[..., pd.DataFrame | None], str]] = {
    "id_vs_tau": (
        id_vs_tau,
        "Intrinsic dimension (TwoNN, MLE, lPCA) of each model's embeddings of a fixed text sample "
        "(the evaluation texts when both samples are estimated) vs the training temperature τ; "
        "dashed grey = un-fine-tuned base model, dotted black = aggregation variants and soups "
        "(band = their 95% CI)." + CI_CAPTION,
    ),
    "score_vs_dim": (
        score_vs_dim,
        "Main score (mean over tasks of a type, then over task types) vs target dimension for each "
        "compression method, one colour per training temperature; dotted lines = full-size score." + CI_CAPTION,
    ),
    "retention_vs_score": (
        retention_vs_score,
        "Chance-corrected retention ((score - chance) / (full - chance), mean over task types) after "
        "truncation to the smallest target dim and after binarization at the largest scored dim vs the "
        "absolute full-size score (colour = τ, marker = variant). The paper's trade-off plot." + CI_CAPTION,
    ),
    "retention_vs_id": (
        retention_vs_id,
        "Chance-corrected retention after truncation to the smallest target dim vs the intrinsic "
        "dimension of the same model; titles give Spearman's ρ over runs with its 95% Fisher-z "
        "interval (Bonett-Wright variance), descriptive only: runs that share a τ are not independent "
        "draws, and τ drives both ID and retention, so findings.md tests claim 3 within τ strata."
        + CI_CAPTION,
    ),
    "task_type_tradeoff": (
        task_type_tradeoff,
        "Full-size main score per task type vs training temperature, per variant; dashed = base model."
        + CI_CAPTION,
    ),
    "retention_by_task_type": (
        retention_by_task_type,
        "Retention (compressed / full-size score) at the smallest target dim for each task type "
        "separately, vs temperature, one line per compression method (temperature-sweep variant)." + CI_CAPTION,
    ),
    "variants_pareto": (
        variants_pareto,
        "Every variant's full-size score vs its score after compression to the two smallest target dims; "
        "up and right is better." + CI_CAPTION,
    ),
    "variants_retention": (
        variants_retention,
        "Chance-corrected retention (mean over task types) vs target dimension for each training "
        "variant and method." + CI_CAPTION,
    ),
    "training_loss": (
        training_loss,
        "Training loss (InfoNCE / variant loss) per step, mean over seeds with its 95% t-band." + CI_CAPTION,
    ),
}


def load_tables(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
    return {k: pd.read_parquet(Path(v).with_suffix(".parquet")) for k, v in paths.items()}


def make_figure(name: str, tables: dict[str, str], config: dict[str, Any], out: str,
                data_out: str | None = None) -> pd.DataFrame | None:
    """Draw one named figure from the tidy tables; write the plotted data to ``data_out`` (CSV)."""
    sns.set_theme(style="ticks", context="paper")
    data = FIGURES[name][0](load_tables(tables), config, out)
    if data_out is not None:
        Path(data_out).parent.mkdir(parents=True, exist_ok=True)
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame({"note": ["figure records no data"]})
        frame.to_csv(data_out, index=False)
    return data


# Quality per byte and the ID forecast; imported last: it uses the helpers above.
from .figures_budget import BUDGET_FIGURES  # noqa: E402

FIGURES.update(BUDGET_FIGURES)

if tuple(FIGURES) != FIGURE_NAMES:  # the Snakefile's figure rules come from FIGURE_NAMES
    raise ImportError(f"figures.FIGURES {list(FIGURES)} != figure_names.FIGURE_NAMES {list(FIGURE_NAMES)}: "
                      "list a new figure in both")
