"""Has a run's training loss plateaued?  One rule, recorded in each run's meta.json and applied
again by findings.md to the training-loss table, so a reader knows which verdicts rest on
converged training and which on a few steps that nudge a finished model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# The rule: compare the mean per-step loss of the last fifth of the steps with that of the fifth
# before it; the run has plateaued when the change is under 1% of the earlier mean (in either
# direction).  The per-step loss of a 32-pair batch is noisy: the change has a standard error of
# about sd x sqrt(2 / window) / loss (a per-step sd of 0.15 at a loss of 1.4 over 100-step windows:
# 1.5%), reported beside it, so that a reader can see when a verdict is within noise.  Fewer than
# MIN_WINDOW logged steps per window cannot be judged (the default's 20 steps: 4), and count as
# not plateaued.
PLATEAU_FRACTION = 0.2
PLATEAU_TOLERANCE = 0.01
MIN_WINDOW = 20
PLATEAU_RULE = (f"mean per-step loss of the last {PLATEAU_FRACTION:.0%} of the steps differs by less than "
                f"{PLATEAU_TOLERANCE:.0%} from that of the {PLATEAU_FRACTION:.0%} before them "
                f"(at least {MIN_WINDOW} logged steps in each)")


def plateau_check(losses: list[float] | np.ndarray, fraction: float = PLATEAU_FRACTION,
                  tolerance: float = PLATEAU_TOLERANCE, min_window: int = MIN_WINDOW) -> dict[str, Any]:
    """The plateau verdict of one loss curve (one value per logged step, in step order).

    Returns ``plateaued`` (bool), ``status`` (``plateaued`` | ``falling`` | ``rising`` |
    ``too short``), the window's size and the last window's mean loss, the ``relative_change`` from
    the window before (negative: still falling) with its standard error, the first and last loss,
    and the rule.
    """
    y = np.asarray(losses, dtype=float)
    n = len(y)
    window = int(math.floor(n * fraction))
    out: dict[str, Any] = {"rule": PLATEAU_RULE, "steps_logged": n, "window": window,
                           "first_loss": float(y[0]) if n else None, "last_loss": float(y[-1]) if n else None}
    if window < max(min_window, 3):
        return {**out, "plateaued": False, "status": "too short", "window_mean": None,
                "relative_change": None, "relative_change_se": None}
    prev, last = y[-2 * window:-window], y[-window:]
    mean = float(prev.mean())
    rel = float((last.mean() - mean) / mean) if mean else math.inf
    rel_se = float(math.sqrt(prev.var(ddof=1) / window + last.var(ddof=1) / window) / abs(mean)) if mean else math.inf
    status = "plateaued" if abs(rel) < tolerance else ("falling" if rel < 0 else "rising")
    return {**out, "plateaued": status == "plateaued", "status": status, "window_mean": float(last.mean()),
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
