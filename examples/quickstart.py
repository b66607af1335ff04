"""
Quickstart: a sequence task that needs memory
=============================================

Each sequence's class is decided by its first three steps, which are followed
by many steps of noise. A model without memory of the start cannot do better
than chance; the LSTM reads the whole sequence and remembers.
"""

# %%
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sklearn_gatedmem import LSTMClassifier, LSTMRegressor

rng = np.random.RandomState(0)
n_samples, n_steps, n_features = 600, 40, 2
X = rng.normal(size=(n_samples, n_steps, n_features))
y = (X[:, :3, 0].sum(axis=1) > 0).astype(int)
total = X[:, :, 0].sum(axis=1)  # a regression target that needs memory too
X_train, X_test, y_train, y_test, total_train, total_test = train_test_split(
    X, y, total, random_state=0
)

# %%
# The LSTM classifier takes 3-D input (n_samples, n_steps, n_features).
clf = LSTMClassifier(hidden_layer_sizes=16, random_state=0)
clf.fit(X_train, y_train)
print(f"LSTMClassifier accuracy:          {clf.score(X_test, y_test):.3f}")

# A memoryless baseline sees only the last step.
last_step = LogisticRegression().fit(X_train[:, -1], y_train)
print(f"last-step LogisticRegression:     {last_step.score(X_test[:, -1], y_test):.3f}")

# %%
# Regression: the sum of one feature over all steps.
reg = LSTMRegressor(hidden_layer_sizes=16, random_state=0)
reg.fit(X_train, total_train)
print(f"LSTMRegressor R^2 (sum of steps): {reg.score(X_test, total_test):.3f}")
