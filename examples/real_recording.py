"""A real recording: a cross-validated Ridge per neuron, held-out scores, tests and the map.

The S1 recording (52 neurons of macaque somatosensory cortex in 50 ms bins, from KordingLab's
spykesML; see ../shared/data/README.md) is not part of the project: without it this example
says so and exits cleanly.

1. history features of the whole recording (``RaisedCosineLogConv(4, window_size=10)``);
2. ``PopulationGLMCV`` on the first 80% of bins: a Ridge strength per neuron chosen over 5
   contiguous folds (``gap`` = the window, so no training bin's history overlaps a test bin);
3. each neuron's held-out log-likelihood per bin on the last 20%, against the intercept-only
   model and the unpenalised fit;
4. Wald tests of every (sender, receiver) pair on the Ridge fit, Benjamini-Hochberg at 5%;
5. the connectivity map (robust colour scale, diagonal left out).

    python examples/real_recording.py [DATA] [OUTPUT_DIR]

writes real_recording_connectivity.png to OUTPUT_DIR (default: here).
"""

from __future__ import annotations

import pathlib
import sys
import time
import warnings

import numpy as np

import popglm as nmo

default = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "s1_spikes.npz"
data = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default
out_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else pathlib.Path(".")
if not data.is_file():
    print(f"no recording at {data}: nothing to do (see the README's 'Fitting a real recording')")
    sys.exit(0)

counts = np.load(data)["counts"].astype(np.float64)
n_samples, n_neurons = counts.shape
basis = nmo.basis.RaisedCosineLogConv(4, window_size=10)
X = basis.compute_features(counts)
cut = int(0.8 * n_samples)
print(f"{n_neurons} neurons, {n_samples} bins; fitting on the first {cut}")

start = time.perf_counter()
model = nmo.glm.PopulationGLMCV(regularizer="Ridge", cv=5, gap=basis.window_size)
model.fit(X[:cut], counts[:cut])
print(f"cross-validated Ridge: {time.perf_counter() - start:.1f} s, strengths "
      f"{model.regularizer_strength_.min():.2g} .. {model.regularizer_strength_.max():.2g}")  # fmt: skip

per_bin = {"per_neuron": True}
held_out = model.score(X[cut:], counts[cut:], **per_bin)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", nmo.ConvergenceWarning)
    plain = nmo.glm.PopulationGLM().fit(X[:cut], counts[:cut])
plain_held_out = plain.score(X[cut:], counts[cut:], **per_bin)
null = nmo.glm.PopulationGLM().fit(np.zeros((cut, 1)), counts[:cut])
null_held_out = null.score(np.zeros((n_samples - cut, 1)), counts[cut:], **per_bin)
print("held-out log-likelihood per bin, summed over neurons:")
print(f"  intercept only {null_held_out.sum():.4f}, unpenalised {plain_held_out.sum():.4f}, "
      f"cross-validated Ridge {held_out.sum():.4f}")  # fmt: skip
gain = held_out - null_held_out
print(f"  per neuron over the intercept-only model: min {gain.min():.4f}, median "
      f"{np.median(gain):.4f}, max {gain.max():.4f}")  # fmt: skip

inference = model.inference(X[:cut])
_, p_values = inference.coupling_test(basis.n_basis_funcs)
found = nmo.inference.benjamini_hochberg(p_values, fdr=0.05)
off_diagonal = ~np.eye(n_neurons, dtype=bool)
print(f"{int(found[off_diagonal].sum())} of {int(off_diagonal.sum())} pairs coupled at FDR 5%")

try:
    import matplotlib

    matplotlib.use("Agg")
    from popglm.plotting import plot_connectivity
except ImportError:
    print("matplotlib is not installed: no figure (pip install 'popglm[plot]')")
else:
    fig = plot_connectivity(model, basis, found, diagonal=False)
    path = out_dir / "real_recording_connectivity.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")
