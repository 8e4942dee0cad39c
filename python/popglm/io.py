"""Saved models: NeMoS's ``nemos.io`` names (``load_model``, ``inspect_npz``) for popglm's files.

popglm's model files (``save_params``) hold arrays and JSON settings and are read without
unpickling, so they cannot hold custom Python objects; NeMoS's ``mapping_dict`` exists to supply
such objects (a custom link function or observation model) on load. Here it is accepted for the
parameters a file names by a built-in, and a mapping must agree with what the file holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__

__all__ = ["inspect_npz", "load_model"]

# The parameters NeMoS lets mapping_dict supply that popglm's file records by name.
_MAPPABLE = frozenset({"observation_model", "regularizer", "inverse_link_function"})


def load_model(filename: str | Path, mapping_dict: dict | None = None) -> Any:
    """Rebuild a model saved by ``save_params`` (``popglm.load_model`` with NeMoS's signature).

    Parameters
    ----------
    filename : str or Path
        The ``.npz`` file.
    mapping_dict : dict, optional
        NeMoS's overrides for parameters that were saved by name: ``observation_model``,
        ``regularizer`` (a class, an instance or a name) and ``inverse_link_function`` (a
        name such as ``"exp"``, or NumPy/JAX's function of that name). Each must name what the
        file holds: popglm's solvers are compiled for its built-in families and penalties, so a
        custom object cannot replace them.

    Raises
    ------
    ValueError
        When the file is not a popglm model file, or a mapping names an unknown parameter or
        disagrees with the file.
    """
    from .glm import load_model as load

    model = load(filename)
    for key, value in (mapping_dict or {}).items():
        if key not in _MAPPABLE:
            raise ValueError(
                f"mapping_dict key {key!r} cannot be mapped: popglm files store every parameter "
                f"except {sorted(_MAPPABLE)} as plain values (use set_params after loading)"
            )
        saved = _saved_name(model, key)
        given = _name_of(value)
        if given != saved:
            raise ValueError(
                f"mapping_dict[{key!r}] is {given!r} but the file holds {saved!r}: popglm fits "
                f"only its built-in {key.replace('_', ' ')}s; load without the mapping and use "
                "set_params to change it (then refit)"
            )
    return model


def _saved_name(model: Any, key: str) -> str:
    if key == "inverse_link_function":
        return model._link()
    return type(getattr(model, key)).__name__


def _name_of(value: Any) -> str:
    """Return the name of a class, function or string, or the class name of an instance."""
    if isinstance(value, str):
        return value
    return getattr(value, "__name__", None) or type(value).__name__


def inspect_npz(file_path: str | Path) -> None:
    """Print what a saved model file holds: versions, class, parameters and fitted arrays.

    Reads the file without unpickling and without building the model.
    """
    path = Path(file_path)
    with np.load(path, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    width = max((len(key) for key in contents), default=0) + 2
    print("Metadata\n--------")
    version = str(contents.pop("popglm_version", "unknown"))
    print(f"{'popglm version':<{width}}: {version} (installed: {__version__})")
    print(f"{'format':<{width}}: {contents.pop('format', 'unknown')}")
    print("\nModel class\n-----------")
    print(f"{'Saved model class':<{width}}: {contents.pop('model_class', 'unknown')}")
    print("\nModel parameters\n----------------")
    settings = contents.pop("settings", None)
    parameters = json.loads(str(settings)) if settings is not None else {}
    for key in ("regularizer_strength", "regularizer_ratio"):
        if key in contents:
            parameters[key] = contents.pop(key).tolist()
    for key, value in parameters.items():
        print(
            f"{key:<{width}}: {value:.6g}"
            if isinstance(value, float)
            else f"{key:<{width}}: {value}"
        )
    print("\nModel fit parameters\n--------------------")
    for key, value in contents.items():
        print(f"{key}: {value}")
