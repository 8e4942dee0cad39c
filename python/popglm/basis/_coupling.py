"""Feature masks for coupled population models from a connectivity matrix."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import Basis

__all__ = ["coupling_feature_mask"]


def coupling_feature_mask(
    connectivity: ArrayLike, basis: Basis, coupling_label: str | None = None
) -> NDArray:
    """Build a ``PopulationGLM`` feature mask from a neuron-to-neuron connectivity matrix.

    Feature rows of sender ``i`` are switched on for receiver ``j`` exactly when
    ``connectivity[i, j]`` is non-zero; the feature rows of every other component of a
    composite basis (e.g. a stimulus or behaviour tuning basis) stay on for every receiver.

    Parameters
    ----------
    connectivity : array-like, shape (n_neurons, n_neurons)
        ``connectivity[i, j] != 0`` means neuron ``i``'s history is a predictor of neuron
        ``j``'s rate (the diagonal is self-history).
    basis : Basis
        The basis whose ``compute_features`` made the design: a convolution basis applied to
        the ``(n_samples, n_neurons)`` counts, or a composite containing one. Its input
        shapes must be known (call ``compute_features`` or ``set_input_shape`` first).
    coupling_label : str, optional
        Label of the coupling component of a composite basis. Default: the only component
        whose input has ``n_neurons`` columns.

    Returns
    -------
    ndarray of int, shape (n_features, n_neurons)
        Pass as ``PopulationGLM(feature_mask=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> import popglm as nmo
    >>> connectivity = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]])
    >>> coupling = nmo.basis.RaisedCosineLogConv(2, window_size=10, label="coupling")
    >>> basis = nmo.basis.CyclicBSplineEval(4, label="angle") + coupling
    >>> basis = basis.set_input_shape(1, 3)
    >>> mask = nmo.basis.coupling_feature_mask(connectivity, basis)
    >>> mask.shape
    (10, 3)
    >>> mask[4:, 0]  # receiver 0 hears senders 0 only: 2 features each
    array([1, 1, 0, 0, 0, 0])
    """
    if not isinstance(basis, Basis):
        raise TypeError(f"basis must be a popglm basis, got {type(basis).__name__}")
    conn = np.asarray(connectivity)
    if conn.ndim != 2 or conn.shape[0] != conn.shape[1] or conn.shape[0] == 0:
        raise ValueError(f"connectivity must have shape (n_neurons, n_neurons), got {conn.shape}")
    if conn.dtype.kind not in "biuf" or not np.isfinite(conn.astype(float)).all():
        raise ValueError("connectivity must be a finite numeric (or boolean) matrix")
    n_neurons = conn.shape[0]
    n_features = basis.n_output_features
    if n_features is None:
        raise ValueError(
            "basis input shapes are unknown: call basis.compute_features or "
            "basis.set_input_shape first"
        )
    slices = basis._slices(0)[0]
    if coupling_label is None:
        candidates = [
            label
            for label, (_, component) in slices.items()
            if component._split_shape() == (n_neurons,)
        ]
        if len(candidates) != 1:
            raise ValueError(
                f"cannot tell which component is the coupling block: {len(candidates)} "
                f"components have inputs of shape ({n_neurons},) "
                f"({candidates}); pass coupling_label (one of {list(slices)})"
            )
        coupling_label = candidates[0]
    if coupling_label not in slices:
        raise ValueError(
            f"coupling_label {coupling_label!r} is not an additive component of the basis; "
            f"choose one of {list(slices)}"
        )
    part, component = slices[coupling_label]
    if component._split_shape() != (n_neurons,):
        raise ValueError(
            f"the coupling component {coupling_label!r} has input shape "
            f"{component._split_shape()}, but connectivity is for {n_neurons} neurons: its "
            f"input must have shape (n_samples, {n_neurons})"
        )
    per_sender = (part.stop - part.start) // n_neurons
    mask = np.ones((n_features, n_neurons), dtype=np.int64)
    mask[part] = np.repeat((conn != 0).astype(np.int64), per_sender, axis=0)
    return mask
