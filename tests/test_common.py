"""scikit-learn's own estimator checks, on the defaults and on variants.

The defaults (an ensemble of 3 networks) are checked as they are; the variants
use one network, which is what they vary."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

ONE = dict(n_ensemble=1)
ESTIMATORS = [
    LSTMClassifier(),
    LSTMRegressor(),
    LSTMClassifier(cell="gated_memory", **ONE),
    LSTMRegressor(cell="gated_memory", **ONE),
    LSTMClassifier(hidden_layer_sizes=(8, 8), **ONE),
    LSTMRegressor(hidden_layer_sizes=(8, 8), **ONE),
    LSTMClassifier(n_steps=1, **ONE),
    LSTMRegressor(n_steps=1, **ONE),
    LSTMClassifier(patch_size=2, differences=True, pooling="last", **ONE),
    LSTMRegressor(patch_size=3, differences=False, bidirectional=True, **ONE),
    LSTMClassifier(data_format="channels_first", **ONE),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
