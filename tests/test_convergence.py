"""The plateau rule on loss curves with a known answer, and its report in findings.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tempcompress.convergence import MIN_WINDOW, PLATEAU_TOLERANCE, plateau_check, plateau_table
from tempcompress.findings import _plateau_md, _training_state


def _curve(steps: int, start: float, end: float, rate: float, sd: float, seed: int = 0) -> np.ndarray:
    """An exponential approach from ``start`` to ``end`` (``rate`` per step) plus Gaussian noise."""
    t = np.arange(steps)
    return end + (start - end) * np.exp(-rate * t) + np.random.default_rng(seed).normal(0, sd, steps)


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_curve_that_has_levelled_off_has_plateaued(seed: int) -> None:
    check = plateau_check(_curve(500, 3.5, 1.4, 0.05, sd=0.03, seed=seed))
    assert check["plateaued"] and check["status"] == "plateaued"
    assert abs(check["relative_change"]) < PLATEAU_TOLERANCE and check["window"] == 100
    assert check["first_loss"] > 3 and check["relative_change_se"] > 0


@pytest.mark.parametrize("seed", range(5))
def test_a_curve_still_falling_at_the_end_has_not(seed: int) -> None:
    # 3.5 -> 1.4 at 0.003 per step: across the last 100 of 500 steps the loss still falls by ~10%
    check = plateau_check(_curve(500, 3.5, 1.4, 0.003, sd=0.15, seed=seed))
    assert not check["plateaued"] and check["status"] == "falling" and check["relative_change"] < -0.05


def test_a_rising_loss_is_not_a_plateau() -> None:
    check = plateau_check(np.linspace(2.0, 2.5, 300))
    assert check["status"] == "rising" and not check["plateaued"]


def test_the_change_is_between_the_last_two_fifths() -> None:
    # a step down of 0.5% in the last fifth: still a plateau; of 3%: falling, by exactly that
    for fall, plateaued in [(0.005, True), (0.03, False)]:
        y = np.concatenate([np.full(400, 2.0), np.full(100, 2.0 * (1 - fall))])
        check = plateau_check(y)
        assert check["plateaued"] is plateaued and check["relative_change"] == pytest.approx(-fall)
        assert check["relative_change_se"] == pytest.approx(0.0)


def test_the_standard_error_shows_when_batch_noise_swamps_the_tolerance() -> None:
    check = plateau_check(np.full(500, 1.4) + np.random.default_rng(0).normal(0, 0.15, 500))
    assert check["relative_change_se"] == pytest.approx(0.15 * np.sqrt(2 / 100) / 1.4, rel=0.2)
    assert check["relative_change_se"] > PLATEAU_TOLERANCE


@pytest.mark.parametrize("steps", [0, 1, 20, 5 * MIN_WINDOW - 1])
def test_too_few_steps_cannot_be_judged(steps: int) -> None:
    """20 steps (the default's nudge) leave 4 points in the window: not judged, not plateaued."""
    check = plateau_check(np.full(steps, 2.0))
    assert check["status"] == "too short" and check["plateaued"] is False
    assert check["relative_change"] is None and check["steps_logged"] == steps
    assert plateau_check(np.full(5 * MIN_WINDOW, 2.0))["status"] == "plateaued"


def _loss_rows(run: str, model: str, losses: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "run": run, "variant": "crop", "tau": "0.1", "seed": "0",
                         "step": np.arange(1, len(losses) + 1), "loss": losses})


def test_plateau_table_has_one_row_per_trained_run_in_step_order() -> None:
    flat = _curve(500, 3.5, 1.4, 0.05, sd=0.02)
    falling = _curve(500, 3.5, 1.4, 0.003, sd=0.1)
    loss = pd.concat([_loss_rows("a.crop.tau-0.1.seed-0", "a", flat), _loss_rows("b.crop.tau-0.1.seed-0", "b", falling),
                      _loss_rows("b.crop.tau-1.0.seed-0", "b", np.full(20, 3.0))])
    table = plateau_table(loss.sample(frac=1.0, random_state=0))  # shuffled rows: sorted by step again
    assert list(table["run"]) == ["a.crop.tau-0.1.seed-0", "b.crop.tau-0.1.seed-0", "b.crop.tau-1.0.seed-0"]
    assert list(table["status"]) == ["plateaued", "falling", "too short"]
    assert table.loc[0, "first_loss"] == pytest.approx(flat[0])
    assert _training_state(table, "a") == "converged (1/1 runs plateaued)"
    assert _training_state(table, "b") == "not converged (0/2 runs plateaued)"
    assert _training_state(table, "c") == "not trained"
    md = "\n".join(_plateau_md(table))
    assert "## Did training converge?" in md and "| b | b.crop.tau-1.0.seed-0 | 20 |" in md and "too short" in md
    assert plateau_table(pd.DataFrame()).empty


def test_the_converged_config_trains_from_scratch_long_enough_to_judge_off_the_tasks_domain() -> None:
    from conftest import ROOT
    from tempcompress.config import expand_runs, load_config_file
    from tempcompress.findings import same_domain_tasks

    cfg = load_config_file(ROOT / "config" / "converged.yaml")
    (model,) = cfg["models"].values()
    assert model["reinit_top_layers"] == model["keep_layers"]  # every kept encoder layer re-initialised
    assert same_domain_tasks(cfg) == []  # Wikipedia only: no source shared with the news tasks
    assert cfg["training"]["lr_scheduler"] == "constant_with_warmup"
    assert cfg["training"]["steps"] * 0.2 >= 5 * MIN_WINDOW  # windows far above the judging minimum
    runs = expand_runs(cfg).values()
    for variant in ("crop", "agg-sum"):
        seeds = {r.seed for r in runs if r.variant == variant}
        assert len(seeds) >= 3, variant
