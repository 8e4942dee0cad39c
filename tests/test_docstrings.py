"""The Examples sections of the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest

import pytest

import popglm
import popglm.basis
import popglm.basis._base
import popglm.basis._composite
import popglm.basis._conv
import popglm.basis._coupling
import popglm.basis._eval
import popglm.basis._transformer
import popglm.cli
import popglm.distributed
import popglm.glm
import popglm.inference
import popglm.observation_models
import popglm.plotting
import popglm.regularizer
import popglm.simulation

MODULES = [
    popglm.basis,
    popglm.cli,
    # doctest only visits objects defined in the module it is given: list the submodules.
    popglm.basis._base,
    popglm.basis._composite,
    popglm.basis._conv,
    popglm.basis._coupling,
    popglm.basis._eval,
    popglm.basis._transformer,
    popglm.distributed,
    popglm.glm,
    popglm.inference,
    popglm.observation_models,
    popglm.plotting,
    popglm.regularizer,
    popglm.simulation,
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_public_names_have_docstrings():
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                assert obj.__doc__ and len(obj.__doc__.strip()) > 20, f"{module.__name__}.{name}"
