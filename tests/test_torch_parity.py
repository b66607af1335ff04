"""Parity with PyTorch: fitted weights exported to ``torch.nn.LSTM`` predict the
same, and autograd through ``torch.nn.LSTM`` gives the same gradient as
:func:`sklearn_gatedmem._objective.loss_grad`.

Everything in torch is float64 by explicit ``dtype``; the global default dtype
is never changed.
"""

import numpy as np
import pytest
from scipy.special import expit, softmax

from sklearn_gatedmem import (
    LSTMClassifier,
    LSTMRegressor,
    _objective,
    _params,
    make_patches,
)

torch = pytest.importorskip("torch")

F64 = torch.float64
RESULTS = {"forward_abs": {}, "grad_rel": {}}


class Net(torch.nn.Module):
    """An ``nn.LSTM`` named ``lstm`` and an ``nn.Linear`` named ``head``, as
    ``torch_state_dict`` documents."""

    def __init__(self, n_features, n_hidden, n_layers, n_outputs, bidirectional=False,
                 pooling="last"):
        super().__init__()
        self.lstm = torch.nn.LSTM(
            n_features, n_hidden, num_layers=n_layers, batch_first=True,
            bidirectional=bidirectional, dtype=F64,
        )
        n_directions = 2 if bidirectional else 1
        self.head = torch.nn.Linear(n_directions * n_hidden, n_outputs, dtype=F64)
        self.bidirectional = bidirectional
        self.pooling = pooling

    def forward(self, x, lengths=None):
        if lengths is None:
            out, (h_n, _) = self.lstm(x)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False
            )
            out, (h_n, _) = self.lstm(packed)
            out = None  # only h_n is read for variable lengths here
        if self.pooling == "mean":
            r = out.mean(dim=1)
        elif self.pooling == "max":
            r = out.max(dim=1).values
        elif self.bidirectional or lengths is not None:
            r = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        else:
            r = out[:, -1]
        return self.head(r)


def _load(net, state):
    assert torch.get_default_dtype() == torch.float32  # untouched
    missing, unexpected = net.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
        strict=True,
    )
    assert not missing and not unexpected
    return net


def _raw_data(n_samples=40, n_steps=6, n_features=3, seed=0):
    """Raw features with means and scales far from 0 and 1."""
    rng = np.random.RandomState(seed)
    loc = np.array([50.0, -20.0, 0.003])[:n_features]
    scale = np.array([10.0, 0.05, 0.001])[:n_features]
    Z = rng.normal(size=(n_samples, n_steps, n_features))
    return loc + scale * Z, Z


# -- (a) fitted estimators exported to torch --------------------------------

FITTED = [
    ("binary", LSTMClassifier, (5,), {}),
    ("binary", LSTMClassifier, (4, 4), {}),
    ("multiclass", LSTMClassifier, (5,), {}),
    ("multiclass", LSTMClassifier, (4, 4), {}),
    ("regression2", LSTMRegressor, (5,), {}),
    ("regression2", LSTMRegressor, (4, 4), {}),
    ("multiclass", LSTMClassifier, (4, 4), {"bidirectional": True}),
    ("regression2", LSTMRegressor, (4,), {"bidirectional": True}),
    ("binary", LSTMClassifier, (4, 4), {"pooling": "mean"}),
    ("regression2", LSTMRegressor, (4,), {"bidirectional": True, "pooling": "max"}),
    ("binary", LSTMClassifier, (4,), {"variable_length": True, "pooling": "last"}),
    ("multiclass", LSTMClassifier, (4, 4), {
        "variable_length": True, "bidirectional": True, "pooling": "last",
    }),
    ("binary", LSTMClassifier, (4,), {"variable_length": True}),
    ("binary", LSTMClassifier, (4,), {"pooling": "last"}),
    ("regression2", LSTMRegressor, (4,), {"differences": False}),
    ("binary", LSTMClassifier, (4,), {"differences": True, "variable_length": True}),
    # patches: 6 steps in patches of 4 leave a partial last patch
    ("binary", LSTMClassifier, (4,), {"patch_size": 4}),
    ("regression2", LSTMRegressor, (4,), {"patch_size": 4, "variable_length": True}),
    ("regression2", LSTMRegressor, (4,), {"patch_size": 2, "bidirectional": True}),
    ("multiclass", LSTMClassifier, (4,), {"patch_size": 4, "variable_length": True}),
    ("binary", LSTMClassifier, (3, 3), {
        "patch_size": 2, "variable_length": True, "bidirectional": True, "pooling": "mean",
    }),
    # the per-sequence z-scores: in place of the raw values, or none
    ("binary", LSTMClassifier, (4,), {"instance_norm": "replace", "variable_length": True}),
    ("regression2", LSTMRegressor, (4,), {"instance_norm": None, "patch_size": 4}),
    ("multiclass", LSTMClassifier, (4,), {
        "instance_norm": "append", "differences": True, "patch_size": 4,
        "variable_length": True,
    }),
]
LENGTHS = np.array([6, 3, 1, 5, 2])


def _fitted_id(case):
    task, Estimator, hidden, kwargs = case
    return "-".join([task, "x".join(map(str, hidden))] + [f"{k}={v}" for k, v in kwargs.items()])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", FITTED, ids=_fitted_id)
def test_exported_weights_predict_the_same_in_torch(case):
    task, Estimator, hidden, kwargs = case
    X, Z = _raw_data()
    if task == "binary":
        y = (Z[:, 0, 0] + Z[:, 1, 1] > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(Z[:, 0, 0] + Z[:, 2, 1], [-0.5, 0.5])
    else:
        y = np.c_[100 + 5 * Z[:, :, 0].sum(axis=1), Z[:, 0, 1] * 0.01]
    X_test, _ = _raw_data(n_samples=25, seed=1)
    lengths = None
    if kwargs.get("variable_length"):
        lengths = np.resize(LENGTHS, len(X_test))
        for data in (X, X_test):
            for n, length in enumerate(np.resize(LENGTHS, len(data))):
                data[n, length:] = np.nan
    est = Estimator(hidden_layer_sizes=hidden, max_iter=15, random_state=0, n_ensemble=1,
                    **kwargs)
    est.fit(X, y)
    state = est.torch_state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    # torch reads what the network reads: the patches of the raw sequences
    p, differences, norm = est.patch_size_, est.differences_, est.instance_norm_
    assert p == kwargs.get("patch_size", 1)
    assert differences == est.differences  # the regressor's default: True
    assert norm == est.instance_norm  # the default: "append"
    width = p * X.shape[2] * (1 + differences) * (2 if norm == "append" else 1)
    net = Net(width, hidden[0], len(hidden), est.n_outputs_, est.bidirectional, est.pooling)
    _load(net, state)
    patches = make_patches(X_test, p, differences, norm)
    if lengths is not None:
        lengths = -(-lengths // p)
        if est.pooling != "last":  # torch pools over all steps
            keep = lengths == patches.shape[1]
            patches, lengths, X_test = patches[keep], None, X_test[keep]
    with torch.no_grad():
        out = net(torch.from_numpy(np.nan_to_num(patches)), lengths).numpy()
    assert out.dtype == np.float64
    if task == "binary":
        ours, theirs = est.predict_proba(X_test), np.c_[expit(-out), expit(out)]
    elif task == "multiclass":
        ours, theirs = est.predict_proba(X_test), softmax(out, axis=1)
    else:
        ours, theirs = est.predict(X_test), out
    diff = float(np.max(np.abs(ours - theirs)))
    RESULTS["forward_abs"][_fitted_id(case)] = diff
    print(f"torch forward parity {_fitted_id(case)}: {diff:.3e}")
    # not a vacuous comparison: the model says different things about different rows
    assert np.ptp(theirs) > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_torch_state_dict_keys_and_gated_memory_refusal():
    X, Z = _raw_data(n_samples=20)
    y = (Z[:, 0, 0] > 0).astype(int)
    est = LSTMClassifier(hidden_layer_sizes=(3, 3), max_iter=2, random_state=0, n_ensemble=1)
    est.fit(X, y)
    state = est.torch_state_dict()
    expected = {
        f"lstm.{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for layer in range(2)
    } | {"head.weight", "head.bias"}
    assert set(state) == expected
    assert state["lstm.weight_ih_l0"].shape == (12, 6)  # 3 features and their z-scores
    np.testing.assert_array_equal(state["lstm.bias_hh_l1"], 0.0)
    gm = LSTMClassifier(hidden_layer_sizes=3, cell="gated_memory", max_iter=2, random_state=0,
                        n_ensemble=1)
    gm.fit(X, y)
    with pytest.raises(ValueError, match="cell"):
        gm.torch_state_dict()
    # exporting does not alter the estimator
    before = {k: v.copy() for k, v in est.coefs_.items()}
    state["lstm.weight_ih_l0"][:] = 0
    est.torch_state_dict()
    for k, v in est.coefs_.items():
        np.testing.assert_array_equal(v, before[k])


# -- (b) gradients: autograd through torch.nn.LSTM against loss_grad --------

N, T, D, H = 6, 5, 3, 4


def _torch_objective_and_grad(theta, X, Y, sw, alpha, layout, hidden, kind,
                              n_directions=1, pooling="last", lengths=None):
    """The objective of ``_objective``'s docstring, in torch, and its autograd
    gradient mapped back to the packed layout."""
    params = _params.unpack(theta, layout)
    net = Net(D, hidden[0], len(hidden), Y.shape[1], n_directions == 2, pooling)
    state = {}
    for name in params:
        if name.startswith("W"):
            layer, d = name[1:].split(".")
            suffix = f"l{layer}" + ("_reverse" if d == "1" else "")
            state[f"lstm.weight_ih_{suffix}"] = params["W" + name[1:]].T
            state[f"lstm.weight_hh_{suffix}"] = params["U" + name[1:]].T
            state[f"lstm.bias_ih_{suffix}"] = params["b" + name[1:]]
            state[f"lstm.bias_hh_{suffix}"] = np.zeros_like(params["b" + name[1:]])
    state["head.weight"] = params["head.W"].T
    state["head.bias"] = params["head.b"]
    _load(net, state)
    for name, p in net.named_parameters():
        p.requires_grad_("bias_hh" not in name)

    Yt, swt = torch.from_numpy(Y), torch.from_numpy(sw)
    Zt = net(torch.from_numpy(np.nan_to_num(X)), lengths)
    K = Y.shape[1]
    if kind == "identity":
        per = 0.5 * ((Zt - Yt) ** 2).sum(dim=1) / K
    elif kind == "logistic":
        per = (torch.nn.functional.softplus(Zt) - Yt * Zt).sum(dim=1)
    else:
        per = torch.logsumexp(Zt, dim=1) - (Yt * Zt).sum(dim=1)
    penalty = sum(
        (p**2).sum() for name, p in net.named_parameters()
        if name.startswith("lstm.weight") or name == "head.weight"
    )
    loss = ((per * swt).sum() + 0.5 * alpha * penalty) / swt.sum()
    loss.backward()

    grad = np.zeros_like(theta)
    grads = _params.unpack(grad, layout)
    named = dict(net.named_parameters())
    for name in params:
        if name.startswith("W"):
            layer, d = name[1:].split(".")
            suffix = f"l{layer}" + ("_reverse" if d == "1" else "")
            grads["W" + name[1:]][...] = named[f"lstm.weight_ih_{suffix}"].grad.numpy().T
            grads["U" + name[1:]][...] = named[f"lstm.weight_hh_{suffix}"].grad.numpy().T
            grads["b" + name[1:]][...] = named[f"lstm.bias_ih_{suffix}"].grad.numpy()
    grads["head.W"][...] = named["head.weight"].grad.numpy().T
    grads["head.b"][...] = named["head.bias"].grad.numpy()
    return float(loss.detach()), grad


def _gradient_problem(hidden, kind, K, n_directions=1, pooling="last", seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, T, D))
    if kind == "identity":
        Y = rng.normal(size=(N, K))
    elif kind == "logistic":
        Y = rng.randint(2, size=(N, K)).astype(float)
    else:
        Y = np.eye(K)[rng.randint(K, size=N)]
    sw = rng.uniform(0.2, 2.0, size=N)
    layout = _params.make_layout("lstm", D, hidden, K, n_directions)
    theta = _params.initialize(layout, "lstm", np.random.RandomState(seed))
    theta += 0.5 * rng.normal(size=theta.shape)
    spec = _objective.make_spec(
        "lstm", hidden, kind, layout, np.float64, np.zeros(D), np.ones(D),
        n_directions=n_directions, pooling=pooling,
    )
    return theta, X, Y, sw, layout, spec


def _compare(theta, X, Y, sw, layout, spec, hidden, kind, key, n_directions=1,
             pooling="last", lengths=None):
    alpha = 0.3
    loss, grad = _objective.loss_grad(theta, X, Y, sw, alpha, spec, 4, lengths=lengths)
    loss_t, grad_t = _torch_objective_and_grad(
        theta, X, Y, sw, alpha, layout, hidden, kind, n_directions, pooling, lengths
    )
    assert loss == pytest.approx(loss_t, rel=1e-12)
    rel = np.linalg.norm(grad - grad_t) / np.linalg.norm(grad_t)
    RESULTS["grad_rel"][key] = rel
    print(f"torch gradient parity {key}: relative error {rel:.3e}")
    assert rel <= 1e-10, rel


@pytest.mark.parametrize(
    "kind, K", [("logistic", 1), ("logistic", 3), ("softmax", 3), ("identity", 2)]
)
@pytest.mark.parametrize("hidden", [(H,), (H, H)], ids=["1layer", "2layers"])
def test_gradient_matches_torch_autograd(hidden, kind, K, method):
    theta, X, Y, sw, layout, spec = _gradient_problem(hidden, kind, K)
    _compare(theta, X, Y, sw, layout, spec, hidden, kind, (hidden, kind, K, method))


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("n_directions", [1, 2])
def test_gradient_matches_torch_bidirectional_and_pooling(n_directions, pooling, method):
    hidden = (H, H)
    theta, X, Y, sw, layout, spec = _gradient_problem(
        hidden, "softmax", 3, n_directions, pooling, seed=1
    )
    _compare(theta, X, Y, sw, layout, spec, hidden, "softmax",
             (n_directions, pooling, method), n_directions, pooling)


@pytest.mark.parametrize("n_directions", [1, 2])
def test_gradient_matches_torch_packed_variable_lengths(n_directions):
    """Variable lengths against ``pack_padded_sequence``: each direction's
    final state (``h_n``) is read at each sequence's own end."""
    hidden = (H, H)
    theta, X, Y, sw, layout, spec = _gradient_problem(
        hidden, "logistic", 2, n_directions, "last", seed=2
    )
    lengths = np.array([5, 2, 4, 1, 3, 5])
    for n, length in enumerate(lengths):
        X[n, length:] = np.nan
    _compare(theta, X, Y, sw, layout, spec, hidden, "logistic",
             (n_directions, "varlen"), n_directions, "last", lengths)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_report_worst_parity(capsys):
    """Summarises the parity checks that ran before it in this module
    (running one of each when it runs alone)."""
    if not RESULTS["forward_abs"]:
        test_exported_weights_predict_the_same_in_torch(FITTED[1])
    if not RESULTS["grad_rel"]:
        test_gradient_matches_torch_autograd((H, H), "softmax", 3)
    with capsys.disabled():
        if RESULTS["forward_abs"]:
            key, worst = max(RESULTS["forward_abs"].items(), key=lambda kv: kv[1])
            print(f"\nworst torch forward abs difference {worst:.3e} at {key}")
        if RESULTS["grad_rel"]:
            key, worst = max(RESULTS["grad_rel"].items(), key=lambda kv: kv[1])
            print(f"worst torch gradient relative error {worst:.3e} at {key}")
    assert all(v <= 1e-10 for v in RESULTS["forward_abs"].values())
    assert all(v <= 1e-10 for v in RESULTS["grad_rel"].values())
    assert torch.get_default_dtype() == torch.float32
