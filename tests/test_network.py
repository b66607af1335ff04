"""The fitted network object: frozen, built once by fit, read after it."""

import dataclasses
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from conftest import sequences
from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _params
from sklearn_gatedmem._network import Network


def _fitted(Estimator=LSTMClassifier, **params):
    X, y_class, y_reg = sequences(30, n_steps=6, n_features=2)
    y = y_class if Estimator is LSTMClassifier else y_reg
    est = Estimator(hidden_layer_sizes=3, max_iter=3, n_ensemble=1, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y), X


def test_fit_builds_the_network_of_its_parameters(cell):
    est, X = _fitted(LSTMRegressor, cell=cell, bidirectional=True, patch_size=2,
                     pooling="mean")
    network = est._network
    # per raw feature: the value, its z-score, and both differences
    assert network == Network(
        cell=cell, hidden=(3,), n_directions=2, pooling="mean", patch_size=2,
        differences=True, n_features=2 * 2 * 4, n_outputs=1, out_activation="identity",
        instance_norm="append", patch_shifts=2,  # 30 cases: each read twice
    )
    assert network.widen == 4 and network.input_shape(6, 2) == (3, 16)
    assert {k: v.shape for k, v in est.coefs_.items()} == {
        k: shape for k, (_, _, shape) in network.layout.items()
    }
    np.testing.assert_array_equal(network.x_mean, est.x_mean_)
    assert network.layout == _params.make_layout(cell, 16, (3,), 1, 2)


def test_the_network_is_frozen():
    est, _ = _fitted()
    with pytest.raises(dataclasses.FrozenInstanceError):
        est._network.cell = "gru"


def test_predictions_read_the_fitted_network_not_set_params():
    est, X = _fitted(cell="lstm")
    before = est.predict_proba(X)
    est.set_params(cell="gru", hidden_layer_sizes=7, bidirectional=True, pooling="mean")
    np.testing.assert_array_equal(est.predict_proba(X), before)
    assert est._network.cell == "lstm"
    assert set(est.torch_state_dict()) >= {"lstm.weight_ih_l0", "head.weight"}


def test_the_network_pickles_with_the_estimator():
    est, X = _fitted()
    restored = pickle.loads(pickle.dumps(est))
    assert restored._network == est._network
    assert restored._network.layout == est._network.layout
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
