"""Observation models with NeMoS's names, losses, likelihoods and scale estimates.

Each model knows its inverse links (the C++ core has each family/link pair built in), the
support of ``y``, its per-sample log-likelihood (with normalising constants, for ``score``), and
NeMoS's scale estimate. The fitted objective is NeMoS's negative log-likelihood up to constants:

- Poisson: ``mu - y log mu`` (links exp, softplus)
- Bernoulli: ``-y log p - (1 - y) log(1 - p)`` (link logistic)
- Gamma: ``y / mu + log mu`` (links one_over_x, i.e. mu = 1 / eta, and exp)
- NegativeBinomial(scale): ``-y log(phi mu / (1 + phi mu)) + log(1 + phi mu) / phi`` with the
  fixed dispersion ``phi = scale`` (link exp)
- Gaussian: ``(y - mu)^2`` (link identity)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, gammaln, xlogy

from ._native import core as _core

__all__ = [
    "BernoulliObservations",
    "GammaObservations",
    "GaussianObservations",
    "NegativeBinomialObservations",
    "Observations",
    "PoissonObservations",
    "resolve_observation_model",
]

_EPS = np.finfo(np.float64).eps


def _softplus(x: NDArray) -> NDArray:
    return np.logaddexp(0.0, x)


#: name -> (inverse link, link (eta from mu))
_LINKS = {
    "exp": (np.exp, np.log),
    "softplus": (_softplus, lambda mu: mu + np.log(-np.expm1(-mu))),
    "logistic": (expit, lambda p: np.log(p) - np.log1p(-p)),
    "one_over_x": (lambda x: 1.0 / x, lambda mu: 1.0 / mu),
    "identity": (lambda x: x, lambda mu: mu),
}
_LINK_ALIASES = {"expit": "logistic", "sigmoid": "logistic", "logit_inverse": "logistic"}


class Observations:
    """Base class of the observation models."""

    #: inverse link name -> the core's family (a struct in cpp/src/families/)
    families: dict[str, Any] = {}
    default_link = "exp"
    scale = 1.0
    #: True when ``scale`` is known (1, or NegativeBinomial's dispersion) and ``fit`` does not
    #: estimate it; then ``estimate_scale`` needs no data.
    fixed_scale = True

    def family_code(self, link: str) -> Any:
        """Return the core's ``ObservationFamily`` for this model with inverse link ``link``."""
        if link not in self.families:
            raise ValueError(
                f"inverse_link_function {link!r} is not available for {type(self).__name__}; "
                f"available: {sorted(self.families)}"
            )
        return self.families[link]

    def check_y(self, y: NDArray, scan_flags: int | None = None) -> None:
        """Raise a ValueError naming ``y`` when it is outside the model's support.

        ``scan_flags``: what the core's ``scan_counts`` found in every row of ``y`` (also the
        rows the fit drops), for the models that read it instead of ``y``.
        """

    def initial_mean(self, mean: NDArray, nudge: float) -> NDArray:
        """Return the mean response of the default start, from each neuron's mean response.

        A mean on the edge of the support (a silent neuron) is moved ``nudge`` inside it, as
        NeMoS does.
        """
        return np.maximum(mean, nudge)

    def deviance(self, y: NDArray, mu: NDArray, scale: NDArray) -> NDArray:
        """Return the per-sample deviance, 2 (log-likelihood(y, y) - log-likelihood(y, mu))."""
        return 2.0 * (self.log_likelihood(y, y, scale) - self.log_likelihood(y, mu, scale))

    def log_likelihood(self, y: NDArray, mu: NDArray, scale: NDArray | float) -> NDArray:
        """Per-sample log-likelihood, with normalising constants."""
        raise NotImplementedError

    def nll(self, y: NDArray, mu: NDArray) -> NDArray:
        """Per-sample loss that ``fit`` minimises (negative log-likelihood up to constants)."""
        raise NotImplementedError

    def estimate_scale(self, y: NDArray, mu: NDArray, dof_resid: NDArray) -> NDArray:
        """NeMoS's scale estimate per neuron (ones for models without a free scale)."""
        return np.ones(y.shape[1])

    def sample(self, rng: np.random.Generator, mu: NDArray, scale: NDArray | float) -> NDArray:
        """Draw responses with mean ``mu``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.scale == getattr(other, "scale", None)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.scale))


class PoissonObservations(Observations):
    """Poisson spike counts (links exp, softplus)."""

    families = {
        "exp": _core.ObservationFamily.poisson_exp,
        "softplus": _core.ObservationFamily.poisson_softplus,
    }

    def check_y(self, y: NDArray, scan_flags: int | None = None) -> None:  # noqa: D102
        if scan_flags is not None:
            # Rows dropped for NaN or inf in X are checked too: a negative count is a data
            # error wherever it is.
            if scan_flags & _core.NEGATIVE_COUNT:
                raise ValueError("y must contain non-negative spike counts, found negative values")
            if scan_flags & _core.FRACTIONAL_COUNT:
                raise ValueError("y must contain integer spike counts, found non-integer values")
            return
        if np.any(y < 0):
            raise ValueError("y must contain non-negative spike counts, found negative values")
        if np.any(y != np.round(y)):
            raise ValueError("y must contain integer spike counts, found non-integer values")

    def log_likelihood(self, y, mu, scale):  # noqa: D102
        mu = np.maximum(mu, _EPS)
        return y * np.log(mu) - mu - gammaln(y + 1.0)

    def deviance(self, y, mu, scale):  # noqa: D102
        mu = np.maximum(mu, _EPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2.0 * (ratio - (y - mu))

    def nll(self, y, mu):  # noqa: D102
        return mu - y * np.log(np.maximum(mu, _EPS))

    def sample(self, rng, mu, scale):  # noqa: D102
        return rng.poisson(mu).astype(np.float64)


class BernoulliObservations(Observations):
    """Binary responses (link logistic)."""

    families = {"logistic": _core.ObservationFamily.bernoulli_logistic}
    default_link = "logistic"

    def check_y(self, y: NDArray, scan_flags: int | None = None) -> None:  # noqa: D102
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("y must contain only 0 and 1 for a Bernoulli model")

    def initial_mean(self, mean: NDArray, nudge: float) -> NDArray:  # noqa: D102
        return np.minimum(np.maximum(mean, nudge), 1.0 - nudge)

    def log_likelihood(self, y, mu, scale):  # noqa: D102
        p = np.clip(mu, _EPS, 1.0 - _EPS)
        return y * np.log(p) + (1.0 - y) * np.log1p(-p)

    def nll(self, y, mu):  # noqa: D102
        return -self.log_likelihood(y, mu, 1.0)

    def sample(self, rng, mu, scale):  # noqa: D102
        return (rng.uniform(size=mu.shape) < mu).astype(np.float64)


class GammaObservations(Observations):
    """Positive continuous responses (links one_over_x, the default, and exp)."""

    families = {
        "one_over_x": _core.ObservationFamily.gamma_inverse,
        "exp": _core.ObservationFamily.gamma_exp,
    }
    default_link = "one_over_x"
    fixed_scale = False

    def check_y(self, y: NDArray, scan_flags: int | None = None) -> None:  # noqa: D102
        if np.any(y <= 0):
            raise ValueError("y must be strictly positive for a Gamma model")

    def log_likelihood(self, y, mu, scale):  # noqa: D102
        k = 1.0 / np.asarray(scale)
        return (k - 1.0) * np.log(y) + k * np.log(k) - gammaln(k) - k * self.nll(y, mu)

    def nll(self, y, mu):  # noqa: D102
        return y / mu + np.log(mu)

    def estimate_scale(self, y, mu, dof_resid):  # noqa: D102
        mu = np.maximum(mu, _EPS)
        return np.sum((y - mu) ** 2 / mu**2, axis=0) / dof_resid

    def sample(self, rng, mu, scale):  # noqa: D102
        k = 1.0 / np.asarray(scale)
        return rng.gamma(k, mu / k)


class NegativeBinomialObservations(Observations):
    """Over-dispersed counts with variance ``mu + scale * mu^2`` (link exp).

    Parameters
    ----------
    scale : float
        The fixed dispersion ``phi`` (> 0); Poisson as ``phi -> 0``.
    """

    families = {"exp": _core.ObservationFamily.negative_binomial_exp}

    def __init__(self, scale: float = 1.0) -> None:
        if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        self.scale = float(scale)

    def check_y(self, y: NDArray, scan_flags: int | None = None) -> None:  # noqa: D102
        PoissonObservations().check_y(y)

    def log_likelihood(self, y, mu, scale):  # noqa: D102
        return (
            -self.nll(y, mu)
            + gammaln(y + 1.0 / self.scale)
            - gammaln(y + 1.0)
            - gammaln(1.0 / self.scale)
        )

    def nll(self, y, mu):  # noqa: D102
        phi_mu = self.scale * np.maximum(mu, _EPS)
        # y log(phi mu / (1 + phi mu)) is 0 at y = 0 whatever mu (xlogy), as the saturated model needs.
        return -xlogy(y, phi_mu / (1.0 + phi_mu)) + np.log1p(phi_mu) / self.scale

    def estimate_scale(self, y, mu, dof_resid):  # noqa: D102
        return np.full(y.shape[1], self.scale)  # fixed, not estimated

    def sample(self, rng, mu, scale):  # noqa: D102
        r = 1.0 / self.scale
        return rng.poisson(rng.gamma(r, mu / r)).astype(np.float64)

    def __repr__(self) -> str:
        return f"NegativeBinomialObservations(scale={self.scale!r})"


class GaussianObservations(Observations):
    """Real-valued responses (link identity)."""

    families = {"identity": _core.ObservationFamily.gaussian_identity}
    default_link = "identity"
    fixed_scale = False

    def initial_mean(self, mean: NDArray, nudge: float) -> NDArray:  # noqa: D102
        return mean  # every real mean is inside the support

    def log_likelihood(self, y, mu, scale):  # noqa: D102
        scale = np.asarray(scale)
        return -0.5 * np.log(2.0 * np.pi * scale) - 0.5 / scale * (y - mu) ** 2

    def nll(self, y, mu):  # noqa: D102
        return (y - mu) ** 2

    def estimate_scale(self, y, mu, dof_resid):  # noqa: D102
        return np.sum((y - mu) ** 2, axis=0) / dof_resid

    def sample(self, rng, mu, scale):  # noqa: D102
        return mu + np.sqrt(np.asarray(scale)) * rng.normal(size=mu.shape)


_MODELS = {
    "Poisson": PoissonObservations,
    "Bernoulli": BernoulliObservations,
    "Gamma": GammaObservations,
    "NegativeBinomial": NegativeBinomialObservations,
    "Gaussian": GaussianObservations,
}


def resolve_observation_model(observation_model: Any) -> Observations:
    """Return an Observations instance for a name (NeMoS's), an instance, or a NeMoS instance."""
    if isinstance(observation_model, Observations):
        return observation_model
    name = (
        observation_model
        if isinstance(observation_model, str)
        else type(observation_model).__name__
    )
    key = name.removesuffix("Observations") if isinstance(name, str) else name
    if key not in _MODELS:
        raise ValueError(
            f"observation_model must be one of {sorted(_MODELS)} (by name or instance), got "
            f"{observation_model!r}"
        )
    if key == "NegativeBinomial" and not isinstance(observation_model, str):
        return NegativeBinomialObservations(float(getattr(observation_model, "scale", 1.0)))
    return _MODELS[key]()


def link_name(observation_model: Observations, inverse_link_function: Any) -> str:
    """Return the name of the inverse link: the model's default for None, else by function name."""
    if inverse_link_function is None:
        return observation_model.default_link
    name = (
        inverse_link_function
        if isinstance(inverse_link_function, str)
        else getattr(inverse_link_function, "__name__", repr(inverse_link_function))
    )
    name = _LINK_ALIASES.get(name, name)
    observation_model.family_code(name)  # raises for an unsupported pair
    return name


def check_link_known(inverse_link_function: Any) -> None:
    """Raise a ValueError unless the inverse link is one popglm knows (any model)."""
    if inverse_link_function is None:
        return
    name = (
        inverse_link_function
        if isinstance(inverse_link_function, str)
        else getattr(inverse_link_function, "__name__", repr(inverse_link_function))
    )
    if _LINK_ALIASES.get(name, name) not in _LINKS:
        raise ValueError(
            f"inverse_link_function must be None or one of {sorted(_LINKS)} (a function of that "
            f"name or the name), got {inverse_link_function!r}"
        )


def inverse_link(name: str):
    """Return the inverse link function (eta -> mean) called ``name``."""
    return _LINKS[name][0]


def link(name: str):
    """Return the link function (mean -> eta) of the inverse link called ``name``."""
    return _LINKS[name][1]
