"""Saving and loading fitted models: an ``.npz`` of arrays and JSON settings, never a pickle.

``_BaseGLM.save_params`` and ``popglm.load_model`` are the public entries; a loaded model gets its
fitted state through ``_set_fitted``, like a fitted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._fitting import FitResult
from ._version import __version__
from .exceptions import NotFittedError
from .observation_models import NegativeBinomialObservations, resolve_observation_model
from .regularizer import GroupLasso

__all__ = ["fitted_state", "load", "restore_fitted_state", "save"]

# fit_info_ entries recomputed on load from "status" rather than stored.
_DERIVED_FIT_INFO = ("converged", "reason")
_FIT_INFO_PREFIX = "fit_info/"
# fit_info_ entry listing, per neuron, the features a fit without an MLE removed.
_DROPPED = "dropped_features"
# The members a model file may have (besides fit_info/...): load reads no other.
_MEMBERS = frozenset({
    "format", "popglm_version", "model_class", "settings", "regularizer_strength",
    "regularizer_ratio", "coef_", "intercept_", "feature_mask", "group_mask", "scale_",
    "dof_resid_",
})  # fmt: skip


def save(model: Any, filename: str | Path) -> None:
    """Write ``model`` (fitted) to an ``.npz`` file: its settings, coefficients and fitted state."""
    model._check_is_fit()
    strength = model.regularizer_strength
    pair = isinstance(strength, tuple)  # ElasticNet's (strength, ratio)
    payload = {
        "format": np.array("popglm-model-1"),
        "popglm_version": np.array(__version__),
        "model_class": np.array(type(model).__name__),
        "settings": np.array(
            json.dumps(
                {
                    "observation_model": type(model.observation_model).__name__,
                    "observation_scale": model.observation_model.scale,
                    "inverse_link_function": model._link(),
                    "regularizer": type(model.regularizer).__name__,
                    "solver_name": model.solver_name,
                    "solver_kwargs": model.solver_kwargs,
                    "tol": model.tol,
                    "max_iter": model.max_iter,
                    "n_threads": model.n_threads,
                    "verbose": model.verbose,
                    "no_mle": model.no_mle,
                }
            )
        ),
        "regularizer_strength": np.asarray(
            np.nan if strength is None else strength[0] if pair else strength,
            dtype=np.float64,
        ),
        "coef_": np.asarray(model.coef_),
        "intercept_": np.asarray(model.intercept_),
    }
    mask = getattr(model, "feature_mask", None)
    if mask is not None:
        payload["feature_mask"] = np.asarray(mask)
    if pair:
        payload["regularizer_ratio"] = np.asarray(strength[1], dtype=np.float64)
    if isinstance(model.regularizer, GroupLasso) and model.regularizer.mask is not None:
        payload["group_mask"] = model.regularizer.mask
    payload.update(fitted_state(model))
    target = Path(filename)
    if not target.parent.is_dir():
        raise ValueError(
            f"cannot save to {filename!s}: the folder {target.parent!s} does not exist"
        )
    # np.savez adds ".npz" to a name without it, as NeMoS's save_params does; load finds it.
    np.savez(target, **payload)


def fitted_state(model: Any) -> dict[str, NDArray]:
    """Collect what ``fit`` set besides the coefficients, for ``save``.

    That is ``scale_`` (score and simulate need it), the numeric ``fit_info_`` entries and
    ``dof_resid_`` when known.
    """
    state = {}
    if getattr(model, "scale_", None) is not None:
        state["scale_"] = np.asarray(model.scale_, dtype=np.float64)
    for key, value in (getattr(model, "fit_info_", None) or {}).items():
        if key == _DROPPED:
            # A list of index arrays per neuron: stored as a (n_features, n_neurons) mask.
            dropped = np.zeros((np.shape(model.coef_)[0], len(value)), dtype=np.uint8)
            for j, features in enumerate(value):
                dropped[np.asarray(features, dtype=np.int64), j] = 1
            state[_FIT_INFO_PREFIX + key] = dropped
            continue
        value = np.asarray(value)
        if key not in _DERIVED_FIT_INFO and value.dtype.kind in "biuf":
            state[_FIT_INFO_PREFIX + key] = value
    try:
        state["dof_resid_"] = np.asarray(model.dof_resid_, dtype=np.float64)
    except (AttributeError, NotFittedError):
        pass  # never computed, and the X it needs is gone: left out
    return state


def restore_fitted_state(
    model: Any, coef: NDArray, intercept: NDArray, contents: dict[str, NDArray]
) -> None:
    """Undo ``fitted_state`` through ``model._set_fitted`` (older files lack some entries)."""
    scale = contents.get("scale_")
    if scale is None and model.observation_model.fixed_scale:
        # A fixed scale, as fit sets it.
        empty = np.empty((0, intercept.shape[0]))
        scale = model.observation_model.estimate_scale(empty, None, None)
    info = {
        key[len(_FIT_INFO_PREFIX) :]: value
        for key, value in contents.items()
        if key.startswith(_FIT_INFO_PREFIX)
    }
    if "status" in info and "n_iter" in info:
        for key in ("n_samples_used", "n_threads"):
            if key in info and info[key].ndim == 0:
                info[key] = int(info[key])
        dropped = info.get(_DROPPED)
        if dropped is not None:
            if dropped.ndim != 2 or dropped.shape[1] != intercept.shape[0]:
                raise ValueError(
                    f"{_FIT_INFO_PREFIX}{_DROPPED} must have shape (n_features, n_neurons), got "
                    f"{dropped.shape}"
                )
            info[_DROPPED] = [np.flatnonzero(column).astype(np.int64) for column in dropped.T]
    else:
        info = None
    dof_resid = contents.get("dof_resid_")
    model._set_fitted(
        FitResult(
            model._coef_to_population(coef),
            intercept,
            scale,
            info,
            None if dof_resid is None else np.asarray(dof_resid, dtype=np.float64),
        )
    )


def load(filename: str | Path, classes: dict[str, type]) -> Any:
    """Rebuild a model saved by ``save`` from ``classes`` (name -> estimator class).

    Never executes code from the file.

    Raises
    ------
    ValueError
        When the file is not a popglm model file or is damaged.
    """
    path = Path(filename)
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").is_file():
        path = path.with_name(path.name + ".npz")  # what save_params wrote for this name
    if not path.is_file():
        raise ValueError(f"no popglm model file at {filename!s}")
    filename = path
    try:
        # The file is opened here so that it is closed even when NumPy fails on a damaged one.
        with open(filename, "rb") as handle:
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not a saved model")
            with data:
                # Only the members a model has are read: anything else in the archive (however
                # large) is never loaded.
                contents = {
                    key: data[key]
                    for key in data.files
                    if key in _MEMBERS or key.startswith(_FIT_INFO_PREFIX)
                }
    except Exception as error:
        # A damaged npz can fail anywhere in zipfile, zlib or NumPy's header parser, with
        # BadZipFile, zlib.error, NotImplementedError, struct.error...: all of it means damaged.
        raise ValueError(f"{filename!s} is not a readable popglm model file: {error}") from None
    required = {"format", "model_class", "settings", "regularizer_strength", "coef_", "intercept_"}
    if missing := required - set(contents):
        raise ValueError(f"{filename!s} is not a popglm model file (missing {sorted(missing)})")
    if str(contents["format"]) != "popglm-model-1":
        raise ValueError(f"{filename!s} has unknown format {str(contents['format'])!r}")
    model_class = classes.get(str(contents["model_class"]))
    if model_class is None:
        raise ValueError(f"{filename!s} holds an unknown model class {contents['model_class']!r}")
    try:
        settings = json.loads(str(contents["settings"]))
        if not isinstance(settings, dict):
            raise ValueError(f"settings must be a JSON object, got {type(settings).__name__}")
        _check_settings(settings)
        strength = contents["regularizer_strength"]
        strength = None if strength.ndim == 0 and np.isnan(strength) else strength
        if strength is not None and strength.ndim == 0:
            strength = float(strength)
        if "regularizer_ratio" in contents:
            ratio = contents["regularizer_ratio"]
            strength = (strength, float(ratio) if ratio.ndim == 0 else ratio)
        name = settings.get("observation_model", "PoissonObservations")
        observation = (
            NegativeBinomialObservations(settings.get("observation_scale", 1.0))
            if name == "NegativeBinomialObservations"
            else resolve_observation_model(name)
        )
        kwargs = dict(
            observation_model=observation,
            inverse_link_function=settings.get("inverse_link_function"),
            regularizer=(
                GroupLasso(contents["group_mask"])
                if "group_mask" in contents
                else settings["regularizer"]
            ),
            regularizer_strength=strength,
            solver_name=settings["solver_name"],
            solver_kwargs=settings["solver_kwargs"],
            tol=settings["tol"],
            max_iter=settings["max_iter"],
            n_threads=settings["n_threads"],
            verbose=settings.get("verbose"),
            no_mle=settings.get("no_mle", "drop"),
        )
        if model_class is classes["PopulationGLM"]:
            kwargs["feature_mask"] = contents.get("feature_mask")
        model = model_class(**kwargs)
    except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as error:
        raise ValueError(f"{filename!s} has damaged settings: {error}") from None
    coef = _real_finite(contents["coef_"], "coef_", filename)
    intercept = _real_finite(contents["intercept_"], "intercept_", filename)
    expected_ndim = 2 if model_class is classes["PopulationGLM"] else 1
    if coef.ndim != expected_ndim or intercept.ndim != 1:
        raise ValueError(f"{filename!s} has coefficients of the wrong shape")
    n_neurons = coef.shape[1] if coef.ndim == 2 else 1
    if intercept.shape[0] != n_neurons:
        raise ValueError(
            f"{filename!s}: intercept_ has {intercept.shape[0]} entries for {n_neurons} neurons"
        )
    mask = contents.get("feature_mask")
    if mask is not None and np.shape(mask) != coef.shape:
        raise ValueError(
            f"{filename!s}: feature_mask has shape {np.shape(mask)}, coef_ {coef.shape}"
        )
    scale = contents.get("scale_")
    if scale is not None and _real_finite(scale, "scale_", filename).shape != (n_neurons,):
        raise ValueError(f"{filename!s}: scale_ must have shape ({n_neurons},)")
    try:
        restore_fitted_state(model, coef, intercept, contents)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ValueError(f"{filename!s} has a damaged fit record: {error}") from None
    return model


def _check_settings(settings: dict) -> None:
    """Raise a ValueError naming the first setting outside its range."""
    tol = settings.get("tol")
    if (
        isinstance(tol, bool)
        or not isinstance(tol, (int, float))
        or not (np.isfinite(tol) and tol > 0)
    ):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    max_iter = settings.get("max_iter")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    n_threads = settings.get("n_threads")
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1
    ):
        raise ValueError(f"n_threads must be None or an integer >= 1, got {n_threads!r}")
    for key in ("solver_kwargs",):
        if settings.get(key) is not None and not isinstance(settings[key], dict):
            raise ValueError(f"{key} must be a JSON object or null, got {settings[key]!r}")


def _real_finite(values: Any, name: str, filename: Any) -> NDArray:
    """``values`` as float64 when real and finite, else a ValueError naming the member."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf" or not np.all(np.isfinite(array)):
        raise ValueError(f"{filename!s}: {name} must hold real finite numbers")
    return array.astype(np.float64)
