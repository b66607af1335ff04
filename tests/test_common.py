"""scikit-learn's own estimator checks, on the defaults and on cheap variants.

The defaults (an ensemble of 3 networks of 32 units) are checked as they
are, once per estimator; the variants use one small network and few
iterations, which is what they vary: every registered cell, stacked layers,
one step, patches, differences, bidirectional layers, channels-first. The
regressor's defaults search ``alpha`` and ``pooling`` ("auto",
tests/test_select.py) on these small sets; its variants fix them, which is
what a search would fit, at a seventh of the cost.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import CELL_NAMES
from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

CHEAP = dict(n_ensemble=1, hidden_layer_sizes=8, max_iter=60)
REG = dict(CHEAP, alpha=1e-4, pooling="last")
ESTIMATORS = [LSTMClassifier(), LSTMRegressor()]
for cell in CELL_NAMES:
    ESTIMATORS += [LSTMClassifier(cell=cell, **CHEAP), LSTMRegressor(cell=cell, **REG)]
ESTIMATORS += [
    LSTMClassifier(**{**CHEAP, "hidden_layer_sizes": (6, 6)}),
    LSTMRegressor(**{**REG, "hidden_layer_sizes": (6, 6)}),
    LSTMClassifier(n_steps=1, **CHEAP),
    LSTMRegressor(n_steps=1, **REG),
    LSTMClassifier(patch_size=2, differences=True, pooling="last", **CHEAP),
    LSTMRegressor(patch_size=3, differences=False, bidirectional=True, **REG),
    LSTMClassifier(data_format="channels_first", **CHEAP),
    LSTMClassifier(missing="carry", **CHEAP),
    LSTMRegressor(missing="carry", variable_length=True, **REG),
    LSTMClassifier(static_features=[0], **CHEAP),
    LSTMRegressor(static_features=[0], **REG),
    LSTMClassifier(alpha="auto", **CHEAP),  # the classifier's search
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
