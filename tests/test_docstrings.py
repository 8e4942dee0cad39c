"""The Examples sections of the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import re

import pytest

import popglm
import popglm.basis
import popglm.basis._base
import popglm.basis._composite
import popglm.basis._conv
import popglm.basis._coupling
import popglm.basis._eval
import popglm.basis._orth_exp
import popglm.basis._raised_cosine
import popglm.basis._splines
import popglm.basis._transformer
import popglm.cli
import popglm.distributed
import popglm.glm
import popglm.identifiability_constraints
import popglm.inference
import popglm.io
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
    popglm.basis._orth_exp,
    popglm.basis._raised_cosine,
    popglm.basis._splines,
    popglm.basis._transformer,
    popglm.distributed,
    popglm.glm,
    popglm.identifiability_constraints,
    popglm.inference,
    popglm.io,
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


@pytest.mark.parametrize("estimator", ["GLM", "PopulationGLM"])
def test_estimator_docstrings_name_every_model_link_and_penalty_accepted(estimator):
    """The estimators' docstrings list what the package accepts, read from the registries that
    decide it (a docstring once said Poisson was the only model, long after it was not)."""
    import popglm.glm
    from popglm import observation_models, regularizer

    doc = getattr(popglm.glm, estimator).__doc__
    for name in observation_models._MODELS:
        assert f'``"{name}"``' in doc, name
    for name in regularizer._AVAILABLE:
        assert f'``"{name}"``' in doc, name
    for name in observation_models._LINKS:
        assert f"``{name}``" in doc or f"/``{name}``" in doc, name
    for model, cls in observation_models._MODELS.items():
        for link in cls.families:  # each model's links are named in its own entry
            assert re.search(rf"{model}\s[^,.]*``{link}``", doc), (model, link)
    assert "only model" not in doc
