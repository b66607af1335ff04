"""Parity with PyTorch: fitted weights exported to the ``torch.nn`` module of
their cell (``nn.LSTM``, ``nn.GRU``: every registered cell that has one)
predict the same, and autograd through that module gives the same gradient as
:func:`sklearn_gatedmem._objective.loss_grad`.

Everything in torch is float64 by explicit ``dtype``; the global default dtype
is never changed.
"""

import numpy as np
import pytest
from scipy.special import expit, softmax

from conftest import CELL_NAMES
from sklearn_gatedmem import (
    LSTMClassifier,
    LSTMRegressor,
    _cells,
    _objective,
    _params,
    make_patches,
)
from sklearn_gatedmem._input import shift_offsets, shift_sequences
from sklearn_gatedmem._network import Network

torch = pytest.importorskip("torch")

# the cells that a torch.nn module holds
TORCH_CELLS = [name for name in CELL_NAMES if _cells.get(name).torch_module]

F64 = torch.float64
RESULTS = {"forward_abs": {}, "grad_rel": {}}


class Net(torch.nn.Module):
    """The cell's ``torch.nn`` module (``nn.LSTM``, ``nn.GRU``) named ``lstm``
    and an ``nn.Linear`` named ``head``, as ``torch_state_dict`` documents."""

    def __init__(self, cell, n_features, n_hidden, n_layers, n_outputs, bidirectional=False,
                 pooling="last"):
        super().__init__()
        self.lstm = getattr(torch.nn, _cells.get(cell).torch_module)(
            n_features, n_hidden, num_layers=n_layers, batch_first=True,
            bidirectional=bidirectional, dtype=F64,
        )
        n_directions = 2 if bidirectional else 1
        self.head = torch.nn.Linear(n_directions * n_hidden, n_outputs, dtype=F64)
        self.bidirectional = bidirectional
        self.pooling = pooling

    def forward(self, x, lengths=None):
        real = None
        if lengths is None:
            out, h = self.lstm(x)
        else:  # packed: each sequence run (both ways) over its real steps
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False
            )
            out, h = self.lstm(packed)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=x.shape[1]
            )
            real = (torch.arange(x.shape[1])[None, :] < torch.as_tensor(lengths)[:, None])
            real = real[:, :, None]
        h_n = h[0] if isinstance(h, tuple) else h  # nn.LSTM also returns c_n
        if self.pooling == "mean":
            r = out.mean(dim=1) if real is None else (
                torch.where(real, out, 0.0).sum(dim=1) / real.sum(dim=1))
        elif self.pooling == "max":
            r = out.max(dim=1).values if real is None else (
                torch.where(real, out, -torch.inf).max(dim=1).values)
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
    # the whole series in one step (the classifier's "auto" candidate)
    ("multiclass", LSTMClassifier, (4,), {"patch_size": 6, "variable_length": True}),
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
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_exported_weights_predict_the_same_in_torch(case, cell):
    task, Estimator, hidden, kwargs = case
    X, Z = _raw_data()
    if task == "binary":
        y = (Z[:, 0, 0] + Z[:, 1, 1] > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(Z[:, 0, 0] + Z[:, 2, 1], [-0.5, 0.5])
    else:
        y = np.c_[100 + 5 * Z[:, :, 0].sum(axis=1), Z[:, 0, 1] * 0.01]
    X_test, _ = _raw_data(n_samples=25, seed=1)
    lengths = np.full(len(X_test), X_test.shape[1])
    if kwargs.get("variable_length"):
        lengths = np.resize(LENGTHS, len(X_test))
        for data in (X, X_test):
            for n, length in enumerate(np.resize(LENGTHS, len(data))):
                data[n, length:] = np.nan
    # the reading given (the classifier's "auto" would search the penalty
    # and a whole-series patch; the one-step reading has its own case)
    fixed = {"alpha": 1.0, "patch_size": None} if Estimator is LSTMClassifier else {}
    est = Estimator(hidden_layer_sizes=hidden, max_iter=15, random_state=0, n_ensemble=1,
                    cell=cell, **{**fixed, **kwargs})
    est.fit(X, y)
    state = est.torch_state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    # torch reads what the network reads: the patches of the raw sequences
    p, differences, norm = est.patch_size_, est.differences_, est.instance_norm_
    assert p == kwargs.get("patch_size", 1)
    assert differences == est.differences  # the regressor's default: True
    assert norm == est.instance_norm  # the default: "append"
    width = p * X.shape[2] * (1 + differences) * (2 if norm == "append" else 1)
    net = Net(cell, width, hidden[0], len(hidden), est.n_outputs_, est.bidirectional, est.pooling_)
    _load(net, state)
    # patched, the small training set read patch_shifts_ ways ("auto": every
    # offset within a patch), each reading's outputs averaged
    assert est.patch_shifts_ == (min(p, 5) if p < X.shape[1] else 1)
    outputs = []
    for offset in shift_offsets(p, est.patch_shifts_):
        X_k, lengths_k = shift_sequences(X_test, lengths, offset)
        patches = make_patches(X_k, p, differences, norm)
        with torch.no_grad():
            out = net(torch.from_numpy(np.nan_to_num(patches)), -(-lengths_k // p)).numpy()
        assert out.dtype == np.float64
        if task == "binary":
            outputs.append(np.c_[expit(-out), expit(out)])
        elif task == "multiclass":
            outputs.append(softmax(out, axis=1))
        else:
            outputs.append(out)
    theirs = np.mean(outputs, axis=0)
    ours = est.predict(X_test) if task.startswith("regression") else est.predict_proba(X_test)
    diff = float(np.max(np.abs(ours - theirs)))
    RESULTS["forward_abs"][cell, _fitted_id(case)] = diff
    print(f"torch forward parity {cell} {_fitted_id(case)}: {diff:.3e}")
    # not a vacuous comparison: the model says different things about different rows
    assert np.ptp(theirs) > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_torch_state_dict_keys_or_refusal(cell):
    """Keys as ``nn.LSTM``'s / ``nn.GRU``'s for a cell that a torch module
    holds; a clear refusal for one that none does (gated_memory)."""
    X, Z = _raw_data(n_samples=20)
    y = (Z[:, 0, 0] > 0).astype(int)
    est = LSTMClassifier(hidden_layer_sizes=(3, 3), max_iter=2, random_state=0, n_ensemble=1,
                         cell=cell)
    est.fit(X, y)
    spec = _cells.get(cell)
    if spec.torch_module is None:
        with pytest.raises(ValueError, match="cell"):
            est.torch_state_dict()
        return
    state = est.torch_state_dict()
    expected = {
        f"lstm.{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for layer in range(2)
    } | {"head.weight", "head.bias"}
    assert set(state) == expected
    # 3 features and their z-scores (instance_norm="append") per step
    module = getattr(torch.nn, spec.torch_module)(6, 3, num_layers=2, dtype=F64)
    for name, value in module.state_dict().items():
        assert state["lstm." + name].shape == tuple(value.shape), name
    # exporting does not alter the estimator
    before = {k: v.copy() for k, v in est.coefs_.items()}
    state["lstm.weight_ih_l0"][:] = 0
    est.torch_state_dict()
    for k, v in est.coefs_.items():
        np.testing.assert_array_equal(v, before[k])


# -- (b) gradients: autograd through torch.nn.LSTM against loss_grad --------

N, T, D, H = 6, 5, 3, 4


TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _export_adjoint(cell, W, U, b, grads):
    """The gradient with respect to ``W``, ``U``, ``b`` of a function of the
    torch parameters that ``cell.torch_weights`` makes of them, from its
    gradient ``grads`` (columns per gate, as ``torch_weights`` returns): the
    map is linear, so it is the transpose applied, column by column."""
    flat = np.concatenate([W.ravel(), U.ravel(), b.ravel()])
    cuts = np.cumsum([W.size, U.size])
    out = np.empty_like(flat)
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = 1
        We, Ue, be = np.split(e, cuts)
        mapped = _cells.get(cell).torch_weights(
            We.reshape(W.shape), Ue.reshape(U.shape), be.reshape(b.shape)
        )
        out[i] = sum(float((m * g).sum()) for m, g in zip(mapped, grads))
    dW, dU, db = np.split(out, cuts)
    return dW.reshape(W.shape), dU.reshape(U.shape), db.reshape(b.shape)


def _torch_objective_and_grad(cell, theta, X, Y, sw, alpha, layout, hidden, kind,
                              n_directions=1, pooling="last", lengths=None):
    """The objective of ``_objective``'s docstring, in torch, and its autograd
    gradient mapped back to the packed layout."""
    params = _params.unpack(theta, layout)
    net = Net(cell, D, hidden[0], len(hidden), Y.shape[1], n_directions == 2, pooling)
    state = {}
    for name in params:
        if name.startswith("W"):
            layer, d = name[1:].split(".")
            suffix = f"l{layer}" + ("_reverse" if d == "1" else "")
            mapped = _cells.get(cell).torch_weights(
                *(params[k + name[1:]] for k in "WUb")
            )
            for key, value in zip(TORCH_NAMES, mapped):
                state[f"lstm.{key}_{suffix}"] = value.T
    state["head.weight"] = params["head.W"].T
    state["head.bias"] = params["head.b"]
    _load(net, state)

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
            torch_grads = [named[f"lstm.{key}_{suffix}"].grad.numpy().T for key in TORCH_NAMES]
            mapped = _export_adjoint(
                cell, *(params[k + name[1:]] for k in "WUb"), torch_grads
            )
            for k, g in zip("WUb", mapped):
                grads[k + name[1:]][...] = g
    grads["head.W"][...] = named["head.weight"].grad.numpy().T
    grads["head.b"][...] = named["head.bias"].grad.numpy()
    return float(loss.detach()), grad


def _gradient_problem(cell, hidden, kind, K, n_directions=1, pooling="last", seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, T, D))
    if kind == "identity":
        Y = rng.normal(size=(N, K))
    elif kind == "logistic":
        Y = rng.randint(2, size=(N, K)).astype(float)
    else:
        Y = np.eye(K)[rng.randint(K, size=N)]
    sw = rng.uniform(0.2, 2.0, size=N)
    spec = Network(
        cell=cell, hidden=hidden, n_directions=n_directions, pooling=pooling,
        patch_size=1, differences=False, n_features=D, n_outputs=K, out_activation=kind,
        x_mean=np.zeros(D), x_scale=np.ones(D),
    )
    layout = spec.layout
    theta = _params.initialize(layout, cell, np.random.RandomState(seed))
    theta += 0.5 * rng.normal(size=theta.shape)
    return theta, X, Y, sw, layout, spec


def _compare(theta, X, Y, sw, layout, spec, hidden, kind, key, n_directions=1,
             pooling="last", lengths=None):
    alpha = 0.3
    loss, grad = _objective.loss_grad(theta, X, Y, sw, alpha, spec, 4, lengths=lengths)
    loss_t, grad_t = _torch_objective_and_grad(
        spec.cell, theta, X, Y, sw, alpha, layout, hidden, kind, n_directions, pooling,
        lengths,
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
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_gradient_matches_torch_autograd(cell, hidden, kind, K, method):
    theta, X, Y, sw, layout, spec = _gradient_problem(cell, hidden, kind, K)
    _compare(theta, X, Y, sw, layout, spec, hidden, kind, (cell, hidden, kind, K, method))


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("n_directions", [1, 2])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_gradient_matches_torch_bidirectional_and_pooling(cell, n_directions, pooling, method):
    hidden = (H, H)
    theta, X, Y, sw, layout, spec = _gradient_problem(
        cell, hidden, "softmax", 3, n_directions, pooling, seed=1
    )
    _compare(theta, X, Y, sw, layout, spec, hidden, "softmax",
             (cell, n_directions, pooling, method), n_directions, pooling)


@pytest.mark.parametrize("n_directions", [1, 2])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_gradient_matches_torch_packed_variable_lengths(cell, n_directions):
    """Variable lengths against ``pack_padded_sequence``: each direction's
    final state (``h_n``) is read at each sequence's own end."""
    hidden = (H, H)
    theta, X, Y, sw, layout, spec = _gradient_problem(
        cell, hidden, "logistic", 2, n_directions, "last", seed=2
    )
    lengths = np.array([5, 2, 4, 1, 3, 5])
    for n, length in enumerate(lengths):
        X[n, length:] = np.nan
    _compare(theta, X, Y, sw, layout, spec, hidden, "logistic",
             (cell, n_directions, "varlen"), n_directions, "last", lengths)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_report_worst_parity(capsys):
    """Summarises the parity checks that ran before it in this module
    (running one of each when it runs alone)."""
    if not RESULTS["forward_abs"]:
        test_exported_weights_predict_the_same_in_torch(FITTED[1], "lstm")
    if not RESULTS["grad_rel"]:
        test_gradient_matches_torch_autograd("lstm", (H, H), "softmax", 3, None)
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
