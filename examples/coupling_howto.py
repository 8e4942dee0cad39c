"""NeMoS's how-to "Fit GLMs For Neural Coupling", run on popglm.

Every cell of the how-to, with `import popglm as nmo` in place of `import nemos as nmo`. The two
figures are written to files instead of shown (pass a folder as the first argument; default:
the current directory).

    python examples/coupling_howto.py [OUTPUT_DIR]
"""

import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")  # write files, never open a window

import matplotlib.pyplot as plt
import numpy as np

import popglm as nmo

output_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
output_dir.mkdir(parents=True, exist_ok=True)

# --- Raw spike history as a feature ------------------------------------------------------------
np.random.seed(42)

n_samples = 100
n_neurons = 4

# generate population counts
counts = np.random.poisson(size=(n_samples, n_neurons))

basis = nmo.basis.HistoryConv(window_size=10, label="spike-history")
X = basis.compute_features(counts)

print("Shape of the feature matrix: ", X.shape)

# visualize the output (skip the first window_size of nans)
plt.title("Features", fontsize=16)
plt.imshow(X[10:], cmap="Greys")
plt.xticks([5, 15, 25, 35], [0, 1, 2, 3])
plt.xlabel("Neurons", fontsize=12)
plt.ylabel("Samples", fontsize=12)
plt.savefig(output_dir / "coupling_howto_features.png", dpi=100)
plt.close()

start = time.perf_counter()
model = nmo.glm.PopulationGLM().fit(X, counts)
elapsed = time.perf_counter() - start
print(model.coef_)
print(
    f"fit: {elapsed * 1e3:.2f} ms, Newton iterations per neuron {model.n_iter_.tolist()}, "
    f"max |gradient| {model.fit_info_['gradient_norm'].max():.1e}"
)

# --- Reducing dimensionality with a basis ------------------------------------------------------
raised_cos = nmo.basis.RaisedCosineLogConv(3, window_size=3)
X2 = raised_cos.compute_features(counts)

# 12 Features: 3 basis funcs x 4 neurons
print("Shape of the feature matrix: ", X2.shape)

plt.title("Basis Feature Matrix", fontsize=16)
plt.imshow(X2[10:], cmap="Greys")
plt.xticks([1, 4, 7, 10], [0, 1, 2, 3])
plt.xlabel("Neurons", fontsize=12)
plt.ylabel("Samples", fontsize=12)
plt.savefig(output_dir / "coupling_howto_basis_features.png", dpi=100)
plt.close()

model_reduced = nmo.glm.PopulationGLM().fit(X2, counts)

# --- Interpreting the coefficients -------------------------------------------------------------
# get the dictionary (1 key per basis component, here there is single basis component)
split_coef = basis.split_by_feature(model.coef_, axis=0)
print(split_coef["spike-history"].shape)

sender_neuron_i = 1
receiver_neuron_j = 2
coeff_ij = split_coef["spike-history"][sender_neuron_i, :, receiver_neuron_j]
print(coeff_ij)

# --- Selecting the connectivity map ------------------------------------------------------------
# initialize a neuron x neuron mask
mask = np.ones((n_neurons, n_neurons))
# remove the bi-directional coupling between 0 and 1
mask[0, 1] = 0
mask[1, 0] = 0
# remove the directional coupling from 2 to 3
mask[2, 3] = 0

# repeat over the rows by the number of basis functions
mask = np.repeat(mask, basis.n_basis_funcs, axis=0)

model_with_mask = nmo.glm.PopulationGLM(feature_mask=mask).fit(X, counts)
print(model_with_mask.coef_)

split_coef = basis.split_by_feature(model_with_mask.coef_, axis=0)["spike-history"]

# check sender=2 receiver=3
print("Coupling 2 -> 3: ", split_coef[2, :, 3], "\n")

# check that we kept the sender=3, receiver=2
print("Coupling 3 -> 2: ", split_coef[3, :, 2])

print(f"figures written to {output_dir.resolve()}")
