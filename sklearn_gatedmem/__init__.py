"""Recurrent estimators for scikit-learn: LSTMs on a NumPy core, fitted by L-BFGS."""

from ._estimators import LSTMClassifier, LSTMRegressor
from ._forecast import forecast, make_windows
from ._input import make_patches, pad_sequences

__version__ = "0.1.0"

__all__ = [
    "LSTMClassifier",
    "LSTMRegressor",
    "__version__",
    "forecast",
    "make_patches",
    "make_windows",
    "pad_sequences",
]
