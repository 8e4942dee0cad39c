"""What a fit produces, in one record: the only way fitted state reaches a model.

A local fit (``glm``), a distributed fit (``distributed``) and a loaded file (``load_model``)
each build a :class:`FitResult`; ``_BaseGLM._set_fitted`` turns it into the model's attributes
(``coef_``, ``intercept_``, ``scale_``, ``fit_info_``, ``n_iter_``, ``converged_``,
``dof_resid_``), so that no other module writes a model's fitted members.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from numpy.typing import NDArray

__all__ = ["FitResult"]


@dataclasses.dataclass
class FitResult:
    """The outcome of one fit of every neuron of a model.

    Attributes
    ----------
    coef : ndarray, shape (n_features, n_neurons)
        Population layout, also for the single-neuron ``GLM`` (one column).
    intercept : ndarray, shape (n_neurons,)
    scale : ndarray or None
        The observation model's scale per neuron; None when unknown (files from before it was
        saved, for models whose scale fit estimates).
    info : dict or None
        The fit record: ``status``, ``n_iter``, ``gradient_norm``, ``objective``,
        ``n_hessian``, ``n_samples_used``, ``n_threads`` (as available); None when unknown.
    dof_resid : ndarray or None
        Residual degrees of freedom, when known.
    dof_pending : tuple or None
        ``(weakref to X, rows, coef)`` from which ``dof_resid_`` is computed on first access.
    """

    coef: NDArray
    intercept: NDArray
    scale: NDArray | None = None
    info: dict[str, Any] | None = None
    dof_resid: NDArray | None = None
    dof_pending: tuple | None = None
