"""scikit-learn's own estimator checks, on the defaults and on cheap variants.

The defaults are checked once per estimator with every default code path:
an ensemble of 3 networks, and the search of the "auto" parameters
(``alpha``, ``pooling``, ``patch_size``; tests/test_select.py), which runs
on these small sets; only the networks are smaller (8 units, 60 iterations:
the search fits up to 13 networks per fit, and at 32 units the classifier's
checks alone took about 7 minutes). The variants use one small network and
fix the searched values, which is what they vary: every registered cell,
stacked layers, one step, patches, differences, bidirectional layers,
channels-first.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import CELL_NAMES
from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

CHEAP = dict(n_ensemble=1, hidden_layer_sizes=8, max_iter=60)
CLF = dict(CHEAP, alpha=1.0, patch_size=None)
REG = dict(CHEAP, alpha=1e-4, pooling="last", patch_size=None)
DEFAULTS = dict(hidden_layer_sizes=8, max_iter=60)
ESTIMATORS = [LSTMClassifier(**DEFAULTS), LSTMRegressor(**DEFAULTS)]
for cell in CELL_NAMES:
    ESTIMATORS += [LSTMClassifier(cell=cell, **CLF), LSTMRegressor(cell=cell, **REG)]
ESTIMATORS += [
    LSTMClassifier(**{**CLF, "hidden_layer_sizes": (6, 6)}),
    LSTMRegressor(**{**REG, "hidden_layer_sizes": (6, 6)}),
    LSTMClassifier(n_steps=1, **CLF),
    LSTMRegressor(n_steps=1, **REG),
    LSTMClassifier(**{**CLF, "patch_size": 2, "differences": True, "pooling": "last"}),
    LSTMRegressor(**{**REG, "patch_size": 3, "differences": False, "bidirectional": True}),
    LSTMClassifier(data_format="channels_first", **CLF),
    LSTMClassifier(missing="carry", **CLF),
    LSTMRegressor(missing="carry", variable_length=True, **REG),
    LSTMClassifier(static_features=[0], **CLF),
    LSTMRegressor(static_features=[0], **REG),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
