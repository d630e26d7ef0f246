"""Figures beyond the paper: quality per byte (``score_vs_bytes``) and the ID forecast
(``id_forecast``).  Drawn from the budget / forecast tables (rule ``budget``) like every
other figure from the tidy tables; registered in figures.FIGURES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .budget import configurations, frontier_label, pareto_frontier  # noqa: E402
from .forecast import NO_ID, fitted_curve, id_per_run, logistic, retention_points, with_feature  # noqa: E402

METHOD_MARKERS = {"none": "*", "truncation": "o", "binarization": "s", "int8": "^", "pca": "D",
                  "random_projection": "v", "hpd": "P", "simproj": "X", "float16": "<", "bfloat16": ">",
                  "float8": "h", "int4": "d"}


def _figures() -> Any:
    """figures.py's shared helpers (colour per tau, missing-run note), imported late: no cycle."""
    from . import figures

    return figures


def _core_variant(config: dict[str, Any]) -> str | None:
    """The first single-temperature (infonce) variant: the core tau sweep; None without training."""
    return next((n for n, v in config.get("variants", {}).items() if v["kind"] == "infonce"), None)


def score_vs_bytes(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Main score vs bytes per vector, one panel per (model, task type): every configuration as
    a faint point, each tau's upper envelope over methods, and the global Pareto frontier."""
    f = _figures()
    budget = t["budget"]
    conf = configurations(budget)
    models = sorted(conf["model"].unique())
    types = [x for x in dict.fromkeys(sorted(conf["task_type"].unique())) if x != "all"] + ["all"]
    pal = f.tau_palette(f._all_taus(config))
    core = _core_variant(config)
    fig, axes = plt.subplots(len(models), len(types), figsize=(4.4 * len(types), 3.8 * len(models)),
                             squeeze=False, layout="constrained")
    for i, model in enumerate(models):
        for j, ttype in enumerate(types):
            ax = axes[i][j]
            g = conf[(conf["model"] == model) & (conf["task_type"] == ttype)]
            for method, gm in g.groupby("method"):
                ax.scatter(gm["bytes"], gm["score"], c=[pal.get(x, "k") for x in gm["tau"]],
                           marker=METHOD_MARKERS.get(method, "o"), s=14, alpha=0.35, lw=0)
            sweep = g[g["variant"].isin([core, "base"])]
            for tau, gt in sweep.groupby("tau"):
                env = pareto_frontier(gt)
                ax.step(env["bytes"], env["score"], where="post", color=pal.get(tau, "k"), lw=1.2,
                        label=f"τ={tau} envelope" if tau != "none" else "base envelope")
            front = pareto_frontier(g)
            ax.plot(front["bytes"], front["score"], color="#b2182b", lw=1.8, ls="--", marker="o", ms=4,
                    label="Pareto frontier (all runs)")
            for _, r in front.iterrows():
                ax.annotate(frontier_label(r), (r["bytes"], r["score"]), fontsize=5, rotation=20,
                            xytext=(3, -8), textcoords="offset points", color="#b2182b")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("bytes per vector (log2)")
            ax.set_ylabel("main score (mean over tasks of the type)")
            ax.set_title(f"{model}: {ttype}", fontsize=9)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    handles += [plt.Line2D([], [], marker=m, ls="", color="grey", label=k)
                for k, m in METHOD_MARKERS.items() if k in set(conf["method"])]
    axes[0][-1].legend(handles=handles, fontsize=6, bbox_to_anchor=(1.02, 1), loc="upper left")
    title = "Quality per byte: score vs bytes per vector"
    title += f" (envelopes: {core} τ sweep and base)" if core else " (off-the-shelf models)"
    fig.suptitle(title)
    f._note_missing(fig, config, set(budget["run"]))
    f._save(fig, out)


def id_forecast(t: dict[str, pd.DataFrame], config: dict[str, Any], out: str) -> None:
    """Retention vs d / ID for every run (one column per estimator, d alone first), with the
    logistic fit on all runs and the held-out MAE in each title."""
    f = _figures()
    points = retention_points(t["scores"])
    ids = id_per_run(t["intrinsic_dim"])
    mae = t["forecast"]
    methods = list(dict.fromkeys(points["method"])) or ["truncation"]
    ests = [NO_ID, *dict.fromkeys(ids["estimator"])]
    pal = f.tau_palette(f._all_taus(config))
    markers = f._markers(list(points["variant"]) or ["base"])
    by_run = points["tau"].nunique() <= 1  # no temperature sweep (e.g. off-the-shelf models): colour = run
    run_colours = {r: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(sorted(points["run"].unique()))}
    fig, axes = plt.subplots(len(methods), len(ests), figsize=(3.9 * len(ests), 3.5 * len(methods)),
                             squeeze=False, layout="constrained")
    for i, method in enumerate(methods):
        pts = points[points["method"] == method]
        for j, est in enumerate(ests):
            ax = axes[i][j]
            d = with_feature(pts, ids, est)
            for run, g in d.groupby("run"):
                g = g.sort_values("x")
                colour = run_colours[run] if by_run else pal.get(g["tau"].iloc[0], "k")
                ax.plot(np.exp(g["x"]), g["retention"], color=colour, lw=0.8, alpha=0.7, label=run,
                        marker=markers.get(g["variant"].iloc[0], "o"), ms=4, mec="k", mew=0.3)
            curve = fitted_curve(mae, method, est) if len(mae) else None
            if curve and len(d):
                xs = np.linspace(d["x"].min(), d["x"].max(), 100)
                ax.plot(np.exp(xs), logistic(xs, curve["a"], curve["b"]), color="#b2182b", lw=1.6, ls="--")
            errs = mae[(mae["method"] == method) & (mae["estimator"] == est)] if len(mae) else mae
            txt = ", ".join(f"{s.split('-')[2]} {v:.3f}" for s, v in zip(errs["scheme"], errs["mae"], strict=True)
                            if s.startswith("leave") and np.isfinite(v))
            ax.set_xscale("log", base=2)
            ax.set_xlabel("d (log2)" if est == NO_ID else f"d / ID ({est}, log2)")
            ax.set_ylabel(f"{method} retention (mean over tasks)")
            ax.set_title(f"{method}, {est}" + (f"\nheld-out MAE: {txt}" if txt else ""), fontsize=8)
            ax.axhline(1.0, color="grey", lw=0.6, ls=":")
            ax.grid(alpha=0.3)
    if by_run:
        items = {r: plt.Line2D([], [], color=c, marker="o") for r, c in run_colours.items()}
    else:
        items = f._tau_handles(pal, points["tau"]) if len(points) else {}
    items = {**items, **f._variant_handles(markers)}  # label -> handle
    axes[0][-1].legend(list(items.values()), list(items.keys()), fontsize=6, bbox_to_anchor=(1.02, 1),
                       loc="upper left")
    fig.suptitle("Does retention depend on d / ID alone? (dashed: logistic fit on all runs; "
                 "MAE: leave-one-run / -tau-out)", fontsize=10)
    f._note_missing(fig, config, set(t["scores"]["run"]))
    f._save(fig, out)


BUDGET_FIGURES: dict[str, tuple[Callable[..., None], str]] = {
    "score_vs_bytes": (
        score_vs_bytes,
        "Main score vs bytes per vector for every (variant, τ, method, dim), per model and task type; "
        "solid steps: each τ's upper envelope over methods; dashed red: the global Pareto frontier, "
        "each point labelled variant / τ / method / dim.",
    ),
    "id_forecast": (
        id_forecast,
        "Retention after truncation / binarization vs d / ID for every run, per ID estimator "
        "(first column: d alone); dashed: logistic fit in log(d/ID); titles: held-out MAE.",
    ),
}
