"""Has a run's training loss plateaued?  One rule, recorded in each run's meta.json and applied
again by findings.md to the training-loss table, so a reader knows which verdicts rest on
converged training and which on a few steps that nudge a finished model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# The rule: fit a straight line to the per-step loss over the last fifth of the steps; the run has
# plateaued when the line's change across that window is under 1% of the window's mean loss (in
# either direction).  A line is far less noisy than comparing the means of two windows: with a
# per-step sd of 0.15 and 100 steps in the window, the fitted change has an SE of about 0.2% of a
# loss of 2.5, the difference of two window means about 0.9%.  Fewer than MIN_WINDOW logged steps
# in the window cannot be judged (20 steps of the default: 4 points), and count as not plateaued.
PLATEAU_FRACTION = 0.2
PLATEAU_TOLERANCE = 0.01
MIN_WINDOW = 20
PLATEAU_RULE = (f"least-squares line through the per-step loss of the last {PLATEAU_FRACTION:.0%} of the steps "
                f"changes by less than {PLATEAU_TOLERANCE:.0%} of their mean loss across that window "
                f"(at least {MIN_WINDOW} logged steps in the window)")


def plateau_check(losses: list[float] | np.ndarray, fraction: float = PLATEAU_FRACTION,
                  tolerance: float = PLATEAU_TOLERANCE, min_window: int = MIN_WINDOW) -> dict[str, Any]:
    """The plateau verdict of one loss curve (one value per logged step, in step order).

    Returns ``plateaued`` (bool), ``status`` (``plateaued`` | ``falling`` | ``rising`` |
    ``too short``), the window's size and mean loss, the fitted ``relative_change`` across the
    window (negative: still falling) with its standard error, the first and last loss, and the rule.
    """
    y = np.asarray(losses, dtype=float)
    n = len(y)
    window = int(math.floor(n * fraction))
    out: dict[str, Any] = {"rule": PLATEAU_RULE, "steps_logged": n, "window": window,
                           "first_loss": float(y[0]) if n else None, "last_loss": float(y[-1]) if n else None}
    if window < max(min_window, 3):
        return {**out, "plateaued": False, "status": "too short", "window_mean": None,
                "relative_change": None, "relative_change_se": None}
    w = y[-window:]
    x = np.arange(window, dtype=float)
    slope, intercept = np.polyfit(x, w, 1)
    resid = w - (slope * x + intercept)
    se_slope = math.sqrt(float(resid @ resid) / (window - 2) / float(((x - x.mean()) ** 2).sum()))
    mean = float(w.mean())
    span = window - 1
    rel = float(slope * span / mean) if mean else math.inf
    rel_se = float(se_slope * span / abs(mean)) if mean else math.inf
    status = "plateaued" if abs(rel) < tolerance else ("falling" if rel < 0 else "rising")
    return {**out, "plateaued": status == "plateaued", "status": status, "window_mean": mean,
            "relative_change": rel, "relative_change_se": rel_se}


def plateau_table(loss: pd.DataFrame) -> pd.DataFrame:
    """One row per trained run of a training-loss table (columns run, model, step, loss, ...): the
    run's plateau verdict under ``plateau_check``.  Runs without loss rows (the base model, soups)
    were not trained and have no row."""
    cols = ["model", "run", "variant", "tau", "seed", "steps_logged", "first_loss", "last_loss", "window_mean",
            "relative_change", "relative_change_se", "status", "plateaued"]
    if loss is None or loss.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    keys = [c for c in ("model", "run", "variant", "tau", "seed") if c in loss.columns]
    for key, g in loss.sort_values("step").groupby(keys, sort=True):
        check = plateau_check(g["loss"].to_numpy())
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                     **{k: check[k] for k in cols if k in check}})
    return pd.DataFrame(rows, columns=cols)
