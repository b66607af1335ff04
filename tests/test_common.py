"""scikit-learn's own estimator checks, on the defaults and on variants."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

ESTIMATORS = [
    LSTMClassifier(),
    LSTMRegressor(),
    LSTMClassifier(cell="gated_memory"),
    LSTMRegressor(cell="gated_memory"),
    LSTMClassifier(hidden_layer_sizes=(8, 8)),
    LSTMRegressor(hidden_layer_sizes=(8, 8)),
    LSTMClassifier(n_steps=1),
    LSTMRegressor(n_steps=1),
    LSTMClassifier(data_format="channels_first"),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
