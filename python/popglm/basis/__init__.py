"""Bases for GLM design matrices, NeMoS-compatible: ``popglm.basis`` is ``nemos.basis``.

Convolution bases (``*Conv``) turn time series (spike counts, stimuli) into history or
coupling features with C++ kernels; evaluation bases (``*Eval``) turn covariates (position,
head direction, speed) into tuning features. Bases compose: ``a + b`` puts features side by
side, ``a * b`` takes their tensor product, and ``split_by_feature`` undoes the stacking.
Kernels and features agree with NeMoS to rounding error.
"""

from __future__ import annotations

from .._history_features import HistoryFeatures
from ._base import Basis
from ._composite import AdditiveBasis, MultiplicativeBasis
from ._conv import (
    HistoryConv,
    _ConvBasis,  # noqa: F401  (the base class, for isinstance checks)
)
from ._coupling import coupling_feature_mask
from ._eval import Category, CustomBasis, FourierEval, IdentityEval, Zero
from ._orth_exp import OrthExponentialConv, OrthExponentialEval
from ._raised_cosine import (
    RaisedCosineLinearConv,
    RaisedCosineLinearEval,
    RaisedCosineLogConv,
    RaisedCosineLogEval,
)
from ._splines import (
    BSplineConv,
    BSplineEval,
    CyclicBSplineConv,
    CyclicBSplineEval,
    MSplineConv,
    MSplineEval,
)
from ._transformer import TransformerBasis

__all__ = [
    "AdditiveBasis",
    "BSplineConv",
    "BSplineEval",
    "Basis",
    "Category",
    "CustomBasis",
    "CyclicBSplineConv",
    "CyclicBSplineEval",
    "FourierEval",
    "HistoryConv",
    "HistoryFeatures",
    "IdentityEval",
    "MSplineConv",
    "MSplineEval",
    "MultiplicativeBasis",
    "OrthExponentialConv",
    "OrthExponentialEval",
    "RaisedCosineLinearConv",
    "RaisedCosineLinearEval",
    "RaisedCosineLogConv",
    "RaisedCosineLogEval",
    "TransformerBasis",
    "Zero",
    "coupling_feature_mask",
]
