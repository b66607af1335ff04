"""Parameters chosen from the training data (``alpha="auto"``,
``pooling="auto"``): the grid, the folds and the ranking (``_select``), and
the search inside ``fit`` -- what it picks, its fall-back to the constant
predictor, when it does not run, and what it leaves on the estimator."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.dummy import DummyRegressor
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

from conftest import sequences
from sklearn_gatedmem import LSTMClassifier, LSTMRegressor, _objective, _select
from sklearn_gatedmem._select import (
    AUTO_MAX_VALUES,
    CONSTANT_ALPHA,
    REGRESSOR_AUTO_MAX_VALUES,
    HELD_OUT_SHARE,
    best_candidate,
    candidate_grid,
    case_groups,
    classification_fold_scores,
    held_out_cases,
    held_out_scores,
    patch_candidates,
    regression_fold_score,
    search_folds,
    subsample_cases,
)

# short fits stop at max_iter by design here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# small, quick networks; the search itself as the defaults run it
SMALL = dict(hidden_layer_sizes=6, max_iter=40, n_ensemble=1, random_state=0)


# -- the pure parts ---------------------------------------------------------


def test_the_grid_holds_every_combination_the_defaults_first():
    grid = candidate_grid({"alpha": (1e-4, 1.0), "pooling": ("last", "mean")})
    assert grid[0] == {"alpha": 1e-4, "pooling": "last"}
    assert len(grid) == 4
    assert {tuple(sorted(c.items())) for c in grid} == {
        (("alpha", a), ("pooling", p)) for a in (1e-4, 1.0) for p in ("last", "mean")
    }


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_fold_scores_are_scikit_learns(n_classes, weighted):
    rng = np.random.RandomState(n_classes)
    classes = np.array(["ant", "bee", "cat"][:n_classes], dtype=object)
    y = classes[rng.randint(n_classes, size=20)]
    proba = rng.dirichlet(np.ones(n_classes), size=20)
    proba[:3] = np.eye(n_classes)[rng.randint(n_classes, size=3)]  # certain: clipped
    w = rng.uniform(0, 2, size=20) if weighted else None
    accuracy, neg_log_loss = classification_fold_scores(proba, classes, y, w)
    predicted = classes[proba.argmax(axis=1)]
    assert accuracy == pytest.approx(accuracy_score(y, predicted, sample_weight=w), abs=1e-15)
    assert neg_log_loss == pytest.approx(
        -log_loss(y, proba, sample_weight=w, labels=classes), rel=1e-13
    )
    # labels as a column, as the fit takes them
    assert classification_fold_scores(proba, classes, y[:, None], w) == (accuracy, neg_log_loss)
    # a label the fold's network never saw scores as probability 0 (clipped)
    y[0] = "dog"
    accuracy, neg_log_loss = classification_fold_scores(proba, classes, y)
    # (its term is log(eps) = -36.0, a twentieth of the mean on its own)
    assert np.isfinite(neg_log_loss) and neg_log_loss < np.log(np.finfo(float).eps) / 20
    assert accuracy == pytest.approx(np.mean((predicted == y)[1:]) * 19 / 20)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_regression_fold_score_is_scikit_learns(weighted):
    rng = np.random.RandomState(0)
    Y = rng.normal(size=(20, 2))
    P = Y + rng.normal(size=(20, 2))
    w = rng.uniform(0, 2, size=20) if weighted else None
    # one output, a column of targets against 1-D predictions (never
    # broadcast), two outputs averaged uniformly
    for target, pred in ((Y[:, 0], P[:, 0]), (Y[:, :1], P[:, 0]), (Y, P)):
        assert regression_fold_score(target, pred, w)[0] == pytest.approx(
            -mean_squared_error(target, pred, sample_weight=w), rel=1e-13
        )


def test_the_whole_series_is_a_patch_candidate_of_short_series():
    assert patch_candidates(8, 8) == (1, 8)  # 64 values: the rule, then one step
    assert patch_candidates(64, 1) == (2, 64)
    assert patch_candidates(100, 1) == (4, 100)
    assert patch_candidates(275, 1) == (9,)  # too wide a step
    assert patch_candidates(2000, 3) == (63,)
    assert patch_candidates(20, 8) == (1,)  # 160 values
    assert patch_candidates(1, 3) == (1,)  # one step already
    # a small ragged set: the rule reads the upper quartile of the lengths
    assert patch_candidates(100, 1, np.array([40] * 5 + [100])) == (2, 100)
    assert patch_candidates(100, 1, np.array([40] * 101 + [100])) == (4, 100)


def test_one_step_candidates_are_not_repeated_for_every_pooling():
    grid = candidate_grid(
        {"alpha": (1e-4,), "pooling": ("last", "mean"), "patch_size": (2, 40)}, n_steps=40
    )
    assert grid == [
        {"alpha": 1e-4, "pooling": "last", "patch_size": 2},
        {"alpha": 1e-4, "pooling": "last", "patch_size": 40},
        {"alpha": 1e-4, "pooling": "mean", "patch_size": 2},
    ]


def test_the_one_step_reading_takes_its_own_penalty():
    options = {"alpha": (1e-4, 1e-2), "pooling": ("last", "mean"), "patch_size": (2, 40)}
    grid = candidate_grid(options, n_steps=40, whole_alpha=1.0)
    assert [(c["alpha"], c["pooling"], c["patch_size"]) for c in grid] == [
        (1e-4, "last", 2), (1.0, "last", 40), (1e-4, "mean", 2),
        (1e-2, "last", 2), (1e-2, "mean", 2),
    ]


def test_the_fallback_is_kept_unless_beaten_by_one_standard_error():
    # candidate 0 beats the fallback (1) on average, but within the folds' noise
    noisy = np.array([[0.9, 0.2, 0.9], [0.6, 0.6, 0.6]])[:, :, None]
    np.testing.assert_array_equal(best_candidate(noisy), [1, 2])
    np.testing.assert_array_equal(best_candidate(noisy, fallback=1), [2, 1])
    # beaten on every fold by a clear margin: the network stays first
    clear = np.array([[0.9, 0.8, 0.9], [0.6, 0.6, 0.5]])[:, :, None]
    np.testing.assert_array_equal(best_candidate(clear, fallback=1), [1, 2])


def test_folds_are_stratified_and_cover_every_case_once():
    y = np.repeat([0, 1, 2], [4, 5, 6])
    folds = search_folds(y, np.arange(len(y)), stratified=True, random_state=0)
    assert len(folds) == 3
    tested = np.sort(np.concatenate([test for _, test in folds]))
    np.testing.assert_array_equal(tested, np.arange(len(y)))
    for train, _ in folds:  # every fold's networks see every class
        assert set(y[train]) == {0, 1, 2}


def test_folds_shrink_to_the_smallest_class_and_vanish_below_two():
    y = np.array([0, 0, 1, 1, 1, 1, 1])
    assert len(search_folds(y, np.arange(7), stratified=True, random_state=0)) == 2
    y = np.array([0, 1, 1, 1, 1, 1])  # a class of one case beside one other: no search
    assert search_folds(y, np.arange(6), stratified=True, random_state=0) is None
    assert search_folds(np.zeros(5), np.arange(5), stratified=False, random_state=0) is None


def test_a_class_of_one_case_is_trained_on_in_every_fold_and_never_tested():
    # classes 0 and 3 have one case each; 1 (2 cases) and 2 (3) make 2 folds
    y = np.array([1, 0, 1, 2, 2, 3, 2])
    folds = search_folds(y, np.arange(len(y)), stratified=True, random_state=0)
    assert len(folds) == 2
    tested = np.sort(np.concatenate([test for _, test in folds]))
    np.testing.assert_array_equal(tested, [0, 2, 3, 4, 6])
    for train, test in folds:
        assert set(y[train]) == {0, 1, 2, 3}
        assert set(y[test]) == {1, 2}
        assert len(np.intersect1d(train, test)) == 0


def test_a_classifier_with_classes_of_one_case_still_searches():
    rng = np.random.RandomState(0)
    y = np.array([0] * 6 + [1] * 6 + [2])  # class 2: a single case
    X = rng.normal(size=(len(y), 4, 1)) + y[:, None, None]
    est = LSTMClassifier(hidden_layer_sizes=2, max_iter=3, n_ensemble=1, random_state=0)
    est.fit(X, y)  # the module ignores ConvergenceWarning
    assert len(est.cv_results_["params"]) > 1
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])


def test_a_repeated_case_stays_in_one_fold_and_zero_weights_are_never_tested():
    y = np.arange(8.0)
    groups = np.array([0, 1, 2, 3, 4, 5, 0, -1])  # row 6 repeats row 0; row 7 weighs 0
    # two copies of a case count once: 6 distinct cases make 3 folds
    folds = search_folds(y, groups, stratified=False, random_state=0)
    assert len(folds) == 3
    for train, test in folds:
        assert (0 in test) == (6 in test)
        assert 7 in train and 7 not in test


def test_the_best_mean_ranks_first_and_ties_keep_the_grid_order():
    # (n_candidates=3, n_folds=2, n_criteria=2): accuracy first, then -log-loss
    scores = np.array([
        [[0.8, -0.5], [0.8, -0.5]],
        [[0.9, -0.9], [0.7, -0.9]],  # same mean accuracy, worse log-loss
        [[0.6, -0.1], [0.6, -0.1]],
    ])
    np.testing.assert_array_equal(best_candidate(scores), [1, 2, 3])
    tied = np.ones((3, 2, 1))
    np.testing.assert_array_equal(best_candidate(tied), [1, 2, 3])


# -- the search inside fit --------------------------------------------------


def test_on_noise_the_regressor_falls_back_to_the_weighted_mean():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 8, 1))
    y = rng.normal(size=30)  # nothing to learn
    w = rng.uniform(0.5, 2.0, size=30)
    reg = LSTMRegressor(alpha="auto", pooling="auto", **SMALL).fit(X, y, sample_weight=w)
    assert reg.alpha_ == CONSTANT_ALPHA
    assert reg.cv_results_["rank_test_score"][-1] == 1
    assert reg.cv_results_["params"][-1]["alpha"] == CONSTANT_ALPHA
    # the network it fitted predicts what the search scored: the mean
    dummy = DummyRegressor().fit(X[:, 0], y, sample_weight=w)
    X_new = rng.normal(size=(5, 8, 1))
    np.testing.assert_allclose(reg.predict(X_new), dummy.predict(X_new[:, 0]), atol=1e-4)


def test_the_regressor_picks_the_pooling_the_target_needs():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 10, 1))
    y = X[:, :, 0].mean(axis=1)
    # patches fixed: a mean is as linear as a ridge on the whole series
    by_mean = LSTMRegressor(alpha="auto", pooling="auto", patch_size=None, **SMALL).fit(X, y)
    assert (by_mean.alpha_, by_mean.pooling_) == (1e-4, "mean")
    # scores: minus the held-out mean squared error, well below y's variance
    assert -by_mean.cv_results_["mean_test_score"][1] < 0.5 * y.var()


def test_the_regressor_reads_the_whole_series_with_a_ridge_penalty():
    """A target linear in every value of few short series: the whole series
    read at once, with the penalty of 1.0, beats reading it step by step."""
    rng = np.random.RandomState(2)
    X = rng.normal(size=(40, 16, 1))
    y = X[:, :, 0] @ rng.normal(size=16) + 0.1 * rng.normal(size=40)
    reg = LSTMRegressor(**SMALL).fit(X, y)  # the defaults: every "auto"
    params = reg.cv_results_["params"]
    assert [(c["alpha"], c["pooling"], c["patch_size"]) for c in params] == [
        (1e-4, "last", 1), (1.0, "last", 16), (1e-4, "mean", 1),
        (CONSTANT_ALPHA, "last", 1),
    ]
    assert (reg.alpha_, reg.patch_size_) == (1.0, 16)
    assert reg.alpha == reg.patch_size == "auto"  # the parameters untouched
    # with a fixed penalty, the whole series is read with it (no candidate
    # sets another)
    fixed = LSTMRegressor(alpha=1e-3, **SMALL).fit(X, y)
    assert [tuple(c.items()) for c in fixed.cv_results_["params"]] == [
        (("pooling", "last"), ("patch_size", 1)), (("pooling", "last"), ("patch_size", 16)),
        (("pooling", "mean"), ("patch_size", 1)),
    ]
    assert fixed.alpha_ == 1e-3


def test_a_classifier_search_scores_accuracy_and_log_loss():
    X, y, _ = sequences(45, n_steps=5)
    clf = LSTMClassifier(alpha="auto", class_weight="balanced", patch_size=None, **SMALL)
    results = clf.fit(X, y).cv_results_
    assert [c["alpha"] for c in results["params"]] == [1.0, 0.1]  # no constant
    assert results["mean_test_score"].shape == results["mean_test_log_loss"].shape == (2,)
    assert clf.alpha_ == results["params"][int(np.argmin(results["rank_test_score"]))]["alpha"]
    assert clf.alpha == "auto" and clf.pooling == "max"  # parameters untouched
    assert clf.score(X, y) > 0.8


def _templates(n, seed, n_steps=60, n_classes=3, noise=2.0):
    """Classes of noisy smooth templates (1-NN's home ground): ``n`` training
    cases, 500 new ones."""
    rng = np.random.RandomState(seed)
    t = np.arange(n_steps)

    def bumps(k, widths):
        return sum(rng.normal() * np.exp(-0.5 * ((t - rng.uniform(0, n_steps))
                                                 / rng.uniform(*widths)) ** 2)
                   for _ in range(k))

    base = bumps(4, (3, 10))
    shapes = np.stack([base + bumps(2, (3, 8)) for _ in range(n_classes)])

    def draw(m):
        y = rng.randint(n_classes, size=m)
        return shapes[y][:, :, None] + noise * rng.normal(size=(m, n_steps, 1)), y

    return draw(n) + draw(500)


def test_the_classifier_has_no_class_frequencies_to_fall_back_to():
    """30 cases of 3 classes, 9, 15 and 6 by the draw: the class frequencies
    scored 0.50 in the folds, the best network 0.47, and they were kept
    (until session 12), predicting the middle class for every new case (0.32
    of them right, chance). No such fall-back now: a network, which learnt
    the templates (0.64)."""
    X, y, X_new, y_new = _templates(30, seed=7)
    assert np.bincount(y).tolist() == [9, 15, 6]
    clf = LSTMClassifier(hidden_layer_sizes=8, max_iter=60, n_ensemble=1,
                         random_state=0).fit(X, y)
    assert CONSTANT_ALPHA not in [c["alpha"] for c in clf.cv_results_["params"]]
    assert clf.alpha_ in (1.0, 0.1)
    assert len(np.unique(clf.predict(X_new))) == 3
    assert clf.score(X_new, y_new) > 0.55


def test_a_classifier_weighs_the_whole_series_read_at_once():
    X, y, _ = sequences(45, n_steps=5)
    clf = LSTMClassifier(**SMALL).fit(X, y)  # the defaults: alpha, patch_size "auto"
    params = clf.cv_results_["params"]
    assert [(c["alpha"], c["patch_size"]) for c in params] == [
        (1.0, 1), (1.0, 5), (0.1, 1), (0.1, 5)
    ]
    best = params[int(np.argmin(clf.cv_results_["rank_test_score"]))]
    assert clf.patch_size_ == best["patch_size"] and clf.alpha_ == best["alpha"]
    assert clf.patch_size == "auto"  # the parameter untouched


def test_a_sample_of_distinct_cases_is_drawn_whole_and_stratified():
    # 12 distinct cases, case 3 on two rows; two classes of 6 cases
    groups = np.r_[np.arange(12), 3]
    y = np.r_[np.repeat([0, 1], 6), 0]
    rows, renumbered = subsample_cases(groups, y, 6, True, np.random.RandomState(0))
    cases, first = np.unique(groups[rows], return_index=True)
    assert len(cases) == 6 and np.bincount(y[rows][first]).tolist() == [3, 3]
    assert (3 in cases) == (12 in rows)  # a case comes with all its rows
    # the sample's cases numbered 0..5, equal rows equal numbers
    assert sorted(set(renumbered)) == list(range(6))
    same = groups[rows][:, None] == groups[rows][None, :]
    np.testing.assert_array_equal(renumbered[:, None] == renumbered[None, :], same)
    # few enough cases: every row, and nothing drawn from the random state
    rng = np.random.RandomState(0)
    rows, renumbered = subsample_cases(groups, y, 12, True, rng)
    np.testing.assert_array_equal(rows, np.arange(13))
    np.testing.assert_array_equal(renumbered, groups)
    assert rng.randint(1000) == np.random.RandomState(0).randint(1000)
    # fewer cases left out than there are classes: a plain draw, no error
    many = np.arange(12) % 6  # 6 classes of 2 cases
    rows, _ = subsample_cases(np.arange(12), many, 10, True, np.random.RandomState(0))
    assert len(rows) == 10


def test_a_larger_classifier_training_set_is_searched_on_a_sample(monkeypatch):
    X, y, y_reg = sequences(45, n_steps=5)
    monkeypatch.setattr("sklearn_gatedmem._base.AUTO_MAX_SAMPLES", 24)
    seen = []
    original = LSTMClassifier._search

    def spy(self, grid, folds, *args):
        seen.append(np.unique(np.concatenate([test for _, test in folds])))
        return original(self, grid, folds, *args)

    monkeypatch.setattr(LSTMClassifier, "_search", spy)
    clf = LSTMClassifier(**SMALL).fit(X, y)
    assert len(seen[0]) == 24  # the folds cover the sample, not all 45 cases
    params = clf.cv_results_["params"]
    # the reading is chosen; the constant is no candidate on a sample
    assert [(c["alpha"], c["patch_size"]) for c in params] == [
        (1.0, 1), (1.0, 5), (0.1, 1), (0.1, 5)
    ]
    best = params[int(np.argmin(clf.cv_results_["rank_test_score"]))]
    assert (clf.alpha_, clf.patch_size_) == (best["alpha"], best["patch_size"])
    # the regressor's, its fall-back to the mean, on a sample as well, up to
    # its patch steps (225 here); beyond them, not at all
    seen.clear()
    monkeypatch.setattr(LSTMRegressor, "_search", spy)
    reg = LSTMRegressor(**SMALL).fit(X, y_reg)
    assert len(seen[0]) == 24 and reg.cv_results_ is not None
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 45 * 5 - 1)
    assert LSTMRegressor(**SMALL).fit(X, y_reg).cv_results_ is None
    # nor with early stopping, which would hold out a part of the sample's folds
    stopping = LSTMClassifier(**SMALL, early_stopping=True).fit(X, y)
    assert stopping.cv_results_ is None and stopping.alpha_ == 1.0


def test_no_search_over_too_many_values(monkeypatch):
    X, y, _ = sequences(45, n_steps=5)
    monkeypatch.setattr(LSTMClassifier, "_AUTO_MAX_VALUES", X.size - 1)
    clf = LSTMClassifier(**SMALL).fit(X, y)
    assert clf.cv_results_ is None and (clf.alpha_, clf.patch_size_) == (1.0, 1)


def test_the_regressor_searches_longer_series_than_the_classifier():
    # its search is its fall-back to the training mean: 30 cases of 300
    # steps x 2 (18,000 values) and of 800 x 2 (48,000) are searched; with
    # no signal in the targets, the mean is chosen
    rng = np.random.RandomState(0)
    assert AUTO_MAX_VALUES < 30 * 800 * 2 <= REGRESSOR_AUTO_MAX_VALUES
    X, y = rng.normal(size=(30, 800, 2)), rng.normal(size=30)
    reg = LSTMRegressor(**SMALL).fit(X, y)
    assert reg.cv_results_ is not None and reg.alpha_ == CONSTANT_ALPHA
    np.testing.assert_allclose(reg.predict(X), y.mean(), atol=1e-3 * y.std())
    clf = LSTMClassifier(**SMALL).fit(X, (y > 0).astype(int))
    assert clf.cv_results_ is None
    X = rng.normal(size=(100, 760, 2))  # 152,000 values: beyond it
    assert LSTMRegressor(**SMALL).fit(X, rng.normal(size=100)).cv_results_ is None


def test_the_search_reads_ragged_lists():
    X, y, _ = sequences(30, n_steps=6)
    ragged = [x[: 4 + i % 3] for i, x in enumerate(X)]
    reg = LSTMRegressor(alpha="auto", pooling="auto", variable_length=True, **SMALL)
    reg.fit(ragged, y.astype(float))
    assert reg.cv_results_ is not None and reg.predict(ragged).shape == (30,)


def test_a_larger_regression_set_is_searched_up_to_its_patch_steps(monkeypatch):
    """More than 100 cases: searched (on a sample of 100) while they hold at
    most REGRESSOR_AUTO_MAX_STEPS patch steps. 150 cases of noise, 8 steps (1,200
    patch steps): the training mean, where the network alone fits the noise
    (session 12: no search, RMSE above the mean's)."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    reg = LSTMRegressor(**SMALL).fit(X, y)
    assert reg.cv_results_ is not None and reg.alpha_ == CONSTANT_ALPHA
    np.testing.assert_allclose(reg.predict(X), y.mean(), atol=1e-3 * y.std())
    # beyond the limit, the first candidates, unsearched
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 150 * 8 - 1)
    assert LSTMRegressor(**SMALL).fit(X, y).cv_results_ is None
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 150 * 8)
    assert LSTMRegressor(**SMALL).fit(X, y).cv_results_ is not None
    # the steps are the patches' (4 steps of 2 here), of the real lengths
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 150 * 4)
    assert LSTMRegressor(**SMALL, patch_size=2).fit(X, y).cv_results_ is not None


def test_held_out_cases_are_a_share_of_the_distinct_cases():
    groups = np.r_[np.arange(50), np.arange(50), -np.ones(5, int)]  # each case twice
    train, test = held_out_cases(groups, np.random.RandomState(0))
    assert len(np.unique(groups[test])) == int(HELD_OUT_SHARE * 50)
    assert not np.isin(groups[train], groups[test]).any()  # a case on one side
    assert (groups[test] >= 0).all()  # rows of zero weight are never scored
    assert sorted(np.r_[train, test]) == list(range(len(groups)))
    # at least one case
    assert len(held_out_cases(np.arange(3), np.random.RandomState(0))[1]) == 1


def test_case_groups_number_distinct_rows_by_content():
    X = np.array([[[1.0], [np.nan]], [[0.0], [1.0]], [[1.0], [np.nan]], [[1.0], [np.nan]]])
    Y = np.array([[1.0], [1.0], [1.0], [2.0]])
    groups = case_groups(X, None, Y, np.array([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(groups, [1, 0, 1, -1])


def test_held_out_scores_are_the_weighted_squared_errors():
    rng = np.random.RandomState(0)
    y, predicted, w = rng.normal(size=(3, 20))
    w = np.abs(w)
    scores = held_out_scores(y, predicted, 0.5, w)
    assert scores.shape == (2, 20, 1)
    np.testing.assert_allclose(-scores[0].mean(), mean_squared_error(y, predicted, sample_weight=w))
    np.testing.assert_allclose(-scores[1].mean(),
                               mean_squared_error(y, np.full(20, 0.5), sample_weight=w))
    # the rows of one case count as one case of their summed weight
    repeated = held_out_scores(np.r_[y, y[:5]], np.r_[predicted, predicted[:5]], 0.5,
                               np.r_[w, w[:5]], cases=np.r_[np.arange(20), np.arange(5)])
    doubled = held_out_scores(y, predicted, 0.5, np.r_[2 * w[:5], w[5:]])
    np.testing.assert_allclose(repeated, doubled)


# an ensemble: the check holds out part of the first member's cases
CHECKED = {**SMALL, "n_ensemble": 2}


def test_a_regression_set_beyond_the_search_checks_the_mean_on_held_out_cases(monkeypatch):
    """A larger regression set beyond the search (here every one: its patch
    steps above the limit) holds out a tenth of its cases from the first
    member; the training mean is kept unless that member beats it there by
    one standard error. On noise, the mean (session 13: no check, the network
    fitted to 600 and 1,000 cases of noise, RMSE 1.285 against the mean's
    1.039 and 1.054)."""
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    reg = LSTMRegressor(**CHECKED).fit(X, y)
    assert reg.alpha_ == CONSTANT_ALPHA
    np.testing.assert_allclose(reg.predict(X), y.mean(), atol=1e-3 * y.std())
    cv = reg.cv_results_
    first = {"alpha": 1e-4, "pooling": "last", "patch_size": "auto"}  # unsearched
    assert cv["params"] == [first, {**first, "alpha": CONSTANT_ALPHA}]
    assert list(cv["rank_test_score"]) == [2, 1]
    assert cv["mean_test_score"][1] > cv["mean_test_score"][0]  # the noise learnt
    # a learnable target keeps the network, its first member fitted on
    # nine tenths of the cases, the other on all
    y = X[:, :, 0].sum(axis=1)
    fits = _spy_on_fits(monkeypatch)
    reg = LSTMRegressor(**CHECKED).fit(X, y)
    assert reg.alpha_ == 1e-4 and list(reg.cv_results_["rank_test_score"]) == [1, 2]
    assert sorted(fits) == [150 - int(HELD_OUT_SHARE * 150), 150]
    assert mean_squared_error(y, reg.predict(X)) < 0.5 * np.var(y)


def _spy_on_fits(monkeypatch):
    """The number of rows each network's fit is given, as a list."""
    fits, fit = [], LSTMRegressor._fit

    def spied(self, X, y, sample_weight):
        fits.append(len(X))
        return fit(self, X, y, sample_weight)

    monkeypatch.setattr(LSTMRegressor, "_fit", spied)
    return fits


def test_the_held_out_check_reads_weights_and_ragged_lists(monkeypatch):
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(120, 6, 1)), rng.normal(size=120)
    w = rng.uniform(0.5, 2.0, size=120)
    w[:10] = 0.0
    reg = LSTMRegressor(**CHECKED).fit(X, y, sample_weight=w)
    assert reg.alpha_ == CONSTANT_ALPHA
    np.testing.assert_allclose(reg.predict(X[:3]), np.average(y, weights=w), atol=1e-3 * y.std())
    ragged = [x[: 3 + k % 4] for k, x in enumerate(X)]
    reg = LSTMRegressor(variable_length=True, **CHECKED).fit(ragged, y)
    assert reg.cv_results_ is not None and reg.alpha_ == CONSTANT_ALPHA


def test_the_held_out_check_takes_repeated_rows_as_weights_in_any_order(monkeypatch):
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    y = y + X[:, :4, 0].sum(axis=1)  # a network beats the mean, not by far
    weights = np.r_[np.full(30, 2.0), np.ones(120)]
    weighted = LSTMRegressor(**CHECKED).fit(X, y, sample_weight=weights)
    repeated = LSTMRegressor(**CHECKED).fit(np.r_[X, X[:30]], np.r_[y, y[:30]])
    order = rng.permutation(150)
    shuffled = LSTMRegressor(**CHECKED).fit(X[order], y[order], sample_weight=weights[order])
    for other in (repeated, shuffled):
        np.testing.assert_allclose(other.cv_results_["mean_test_score"],
                                   weighted.cv_results_["mean_test_score"], rtol=1e-9)
        np.testing.assert_allclose(other.predict(X), weighted.predict(X), rtol=1e-9)


def test_the_check_warns_of_the_kept_networks_only(monkeypatch):
    """Networks that stop short warn once, at the call of fit, if the check
    keeps them; discarded for the mean, they are not the model and say
    nothing (as the search's networks)."""
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    params = CHECKED  # 40 iterations: every network stops short
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        reg = LSTMRegressor(**params).fit(X, y)
    assert reg.alpha_ == CONSTANT_ALPHA
    assert not [w for w in record if issubclass(w.category, ConvergenceWarning)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        reg = LSTMRegressor(**params).fit(X, X[:, :, 0].sum(axis=1))
    assert reg.alpha_ == 1e-4
    converge = [w for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(converge) == 1 and "2 of the 2 networks" in str(converge[0].message)
    assert converge[0].filename == __file__  # points at the call of fit


def test_a_warm_start_is_checked_once(monkeypatch):
    """The first fit checks (its constant predictor fitted afresh, not from
    the networks' weights); a warm start keeps that choice unchecked."""
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    reg = LSTMRegressor(warm_start=True, **CHECKED).fit(X, y)
    assert reg.alpha_ == CONSTANT_ALPHA
    cold = LSTMRegressor(**CHECKED).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), cold.predict(X))
    fits = _spy_on_fits(monkeypatch)
    reg.fit(X, y)
    assert reg.alpha_ == CONSTANT_ALPHA and reg.cv_results_ is None
    assert fits == [150, 150]


def test_no_held_out_check_for_a_fixed_penalty_or_a_single_network(monkeypatch):
    """A number for ``alpha`` turns the check off (every member learns from
    every case), and a single network is not checked (it would be left with
    nine tenths of the cases)."""
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(150, 8, 1)), rng.normal(size=150)
    fits = _spy_on_fits(monkeypatch)
    for params in ({**CHECKED, "alpha": 1e-4}, {**CHECKED, "n_ensemble": 1}):
        fits.clear()
        reg = LSTMRegressor(**params).fit(X, y)
        assert reg.cv_results_ is None and reg.alpha_ == 1e-4
        assert fits == [150] * params["n_ensemble"]


def test_no_search_on_large_sets_nor_for_fixed_values(monkeypatch):
    X, _, y = sequences(30)
    monkeypatch.setattr(_select, "AUTO_MAX_SAMPLES", 20)
    monkeypatch.setattr("sklearn_gatedmem._base.AUTO_MAX_SAMPLES", 20)
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    reg = LSTMRegressor(alpha="auto", pooling="auto", **SMALL).fit(X, y)
    assert reg.cv_results_ is None
    assert (reg.alpha_, reg.pooling_) == (1e-4, "last")  # the first candidates
    fixed = LSTMRegressor(alpha=1e-4, pooling="last", **SMALL).fit(X, y)
    assert fixed.cv_results_ is None
    np.testing.assert_array_equal(fixed.predict(X), reg.predict(X))


def test_a_warm_start_keeps_the_choice_without_searching_again(monkeypatch):
    X, _, y = sequences(30)
    reg = LSTMRegressor(alpha="auto", pooling="auto", warm_start=True, **SMALL).fit(X, y)
    chosen = (reg.alpha_, reg.pooling_)

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(LSTMRegressor, "_search", no_search)
    reg.fit(X, y)
    assert (reg.alpha_, reg.pooling_) == chosen


def test_weights_are_repetitions_and_the_row_order_does_not_matter():
    X, _, y = sequences(30)
    params = dict(alpha="auto", pooling="auto", **SMALL)
    weights = np.r_[np.full(10, 2.0), np.ones(20)]
    weighted = LSTMRegressor(**params).fit(X, y, sample_weight=weights)
    repeated = LSTMRegressor(**params).fit(np.r_[X, X[:10]], np.r_[y, y[:10]])
    order = np.random.RandomState(0).permutation(30)
    shuffled = LSTMRegressor(**params).fit(X[order], y[order], sample_weight=weights[order])
    for other in (repeated, shuffled):
        assert other.cv_results_["params"] == weighted.cv_results_["params"]
        np.testing.assert_allclose(other.cv_results_["mean_test_score"],
                                   weighted.cv_results_["mean_test_score"], rtol=1e-9)
        np.testing.assert_allclose(other.predict(X), weighted.predict(X), rtol=1e-9)


def test_the_search_networks_compute_in_float32_the_model_in_the_inputs_dtype(monkeypatch):
    X, _, y = sequences(30)
    seen = []
    original = _objective.loss_grad

    def spy(theta, X, *args):
        seen.append(X.dtype)
        return original(theta, X, *args)

    monkeypatch.setattr(_objective, "loss_grad", spy)
    reg = LSTMRegressor(alpha="auto", pooling="auto", **SMALL).fit(X, y)
    assert reg.cv_results_ is not None
    # the search's networks first, then the model, in float64 as its input
    assert seen[0] == np.float32 and seen[-1] == np.float64
    assert set(seen) == {np.dtype(np.float32), np.dtype(np.float64)}
    # the model keeps this process's activation method
    assert reg._compute_dtype is None and reg._network.activation is None
    seen.clear()
    LSTMRegressor(alpha=1e-4, pooling="last", patch_size=None, **SMALL).fit(X, y)  # no search
    assert set(seen) == {np.dtype(np.float64)}


def test_the_search_networks_use_one_activation_method_whatever_this_process_chose(
    monkeypatch,
):
    """The method a process measures can differ from another process's (in
    float32 the two fastest are close); the search's choice must not follow."""
    X, y, _ = sequences(30)
    results = []
    for method in ("tanh", "exp", "expit"):
        monkeypatch.setenv("SKLEARN_GATEDMEM_ACTIVATION", method)
        results.append(LSTMClassifier(**SMALL).fit(X, y).cv_results_)
    for other in results[1:]:
        for key in ("mean_test_score", "mean_test_log_loss"):
            np.testing.assert_array_equal(other[key], results[0][key])


def test_the_search_networks_take_weights_as_large_as_float64_allows():
    """Scaled to a largest of 1 (with the penalty: the same objective), a
    weight of 1e300 does not overflow the search's float32 networks."""
    X, y, _ = sequences(30)
    weights = np.r_[np.ones(29), 1e300]
    clf = LSTMClassifier(**SMALL).fit(X, y, sample_weight=weights)
    assert np.all(np.isfinite(clf.cv_results_["mean_test_score"]))


def test_the_search_casts_to_float32_after_standardising():
    """A signal a billionth of the series' level (and no per-series z-scores
    to carry it): float32 spaces numbers near 1e6 by 0.06 and would round it
    away, cast before standardising; standardised first, in float64, the
    search's networks learn it."""
    X, y, _ = sequences(45, n_steps=5)
    clf = LSTMClassifier(alpha="auto", patch_size=None, instance_norm=None, **SMALL)
    clf.fit(1e6 + 1e-3 * X, y)
    scores = clf.cv_results_["mean_test_score"]
    assert scores.min() > 0.75  # rounded away, the networks would guess (about 0.5)


def test_the_search_ensemble_is_the_chosen_estimators():
    X, _, y = sequences(30)
    reg = LSTMRegressor(alpha="auto", pooling="auto", **{**SMALL, "n_ensemble": 2}).fit(X, y)
    assert len(reg.estimators_) == 2
    for member in reg.estimators_:
        assert (member.alpha, member.pooling) == (reg.alpha_, reg.pooling_)
        assert member.cv_results_ is None  # the members do not search


@pytest.mark.parametrize("bad", [-1.0, "none"])
def test_alpha_accepts_a_penalty_or_auto(bad):
    X, _, y = sequences(12)
    with pytest.raises(ValueError, match="alpha"):
        LSTMRegressor(alpha=bad, **SMALL).fit(X, y)


def test_random_state_none_leaves_the_global_random_state_as_found(monkeypatch):
    X, y_class, y = sequences(30)
    monkeypatch.setattr(LSTMRegressor, "_AUTO_MAX_STEPS", 0)
    X_larger, y_larger = np.random.RandomState(0).normal(size=(2, 120, 6, 1))
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    # the regressor searches (folds, seeds), the classifier draws ensemble seeds
    LSTMRegressor(**{**SMALL, "random_state": None, "n_ensemble": 2}).fit(X, y).predict(X)
    # the held-out check of a larger set draws its cases
    checked = LSTMRegressor(**{**CHECKED, "random_state": None}).fit(X_larger, y_larger[:, 0, 0])
    assert checked.cv_results_ is not None
    LSTMClassifier(**{**SMALL, "random_state": None, "n_ensemble": 2,
                      "early_stopping": True}).fit(X, y_class).predict(X)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
