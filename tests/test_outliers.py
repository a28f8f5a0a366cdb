"""VAEOutlierDetector: the outlier API of scikit-learn on the VAE's likelihood."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae._losses import gaussian_kl


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.RandomState(0)
    centers = rng.normal(scale=4, size=(3, 5))
    X = centers[rng.randint(3, size=300)] + rng.normal(size=(300, 5))
    far = rng.normal(size=(20, 5)) * 8  # outside the clusters
    return X, far


@pytest.fixture(scope="module")
def detector(clusters):
    X, _ = clusters
    return VAEOutlierDetector(max_epochs=60, random_state=0).fit(X)


def test_outliers_score_lower_than_inliers(detector, clusters):
    X, far = clusters
    scores = np.concatenate([detector.score_samples(X), detector.score_samples(far)])
    labels = np.r_[np.zeros(len(X)), np.ones(len(far))]
    assert roc_auc_score(labels, -scores) > 0.95


def test_the_api_of_scikit_learn_outlier_detectors(detector, clusters):
    X, far = clusters
    scores = detector.score_samples(X)
    assert_allclose(detector.decision_function(X), scores - detector.offset_)
    predictions = detector.predict(np.vstack([X, far]))
    assert set(np.unique(predictions)) <= {-1, 1}
    assert_array_equal(
        predictions[: len(X)], np.where(scores < detector.offset_, -1, 1)
    )
    assert (detector.predict(far) == -1).mean() > 0.8


def test_scores_are_deterministic(detector, clusters):
    X, _ = clusters
    first = detector.score_samples(X)
    assert_array_equal(detector.score_samples(X), first)
    # A row's score does not depend on the other rows.
    assert_allclose(detector.score_samples(X[::-1][:50]), first[::-1][:50], rtol=1e-5)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.25])
def test_contamination_sets_the_share_of_training_rows_flagged(clusters, contamination):
    X, _ = clusters
    detector = VAEOutlierDetector(
        contamination=contamination, max_epochs=5, random_state=0
    ).fit(X)
    flagged = (detector.predict(X) == -1).mean()
    assert abs(flagged - contamination) <= 0.01
    assert_array_equal(detector.fit_predict(X), detector.predict(X))


def test_auto_contamination_is_the_lower_tukey_fence(detector, clusters):
    X, _ = clusters
    q1, q3 = np.percentile(detector.score_samples(X), [25, 75])
    assert detector.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1), rel=1e-5)


def test_feature_scores_point_at_the_unusual_feature(detector, clusters):
    X, _ = clusters
    row = X[:1].copy()
    row[0, 3] += 25.0  # one feature far off
    contributions = detector.feature_scores(row)
    assert contributions.shape == (1, 5)
    assert np.argmin(contributions[0]) == 3
    # The score is what the features explain less the cost of the code.
    assert contributions.sum() > detector.score_samples(row)[0]


def test_feature_scores_of_a_table_are_named_by_column():
    rng = np.random.RandomState(0)
    n = 200
    kind = rng.randint(2, size=n)
    table = pd.DataFrame(
        {
            "kind": np.array(["small", "large"])[kind],
            "size": kind * 10 + rng.normal(size=n),
            "weight": kind * 5 + rng.normal(size=n),
        }
    )
    detector = VAEOutlierDetector(n_components=2, max_epochs=60, random_state=0).fit(
        table
    )
    odd = pd.DataFrame({"kind": ["small"], "size": [30.0], "weight": [0.2]})
    contributions = detector.feature_scores(odd)
    assert list(contributions.columns) == ["kind", "size", "weight"]
    normal = detector.feature_scores(table.head(20)).mean()
    assert contributions.loc[0, "size"] < normal["size"] - 5
    assert contributions.iloc[0].idxmin() == "size"
    # Gaps: the score is that of the observed entries, and a gap adds 0.
    gappy = table.head(3).assign(size=np.nan)
    assert (detector.feature_scores(gappy)["size"] == 0).all()
    assert np.all(np.isfinite(detector.score_samples(gappy)))


def test_feature_scores_of_an_array_are_an_array():
    rng = np.random.RandomState(0)
    X = np.c_[rng.randint(3, size=40).astype(float), rng.normal(size=(40, 2))]
    params = dict(likelihood={0: "categorical"}, max_epochs=2, random_state=0)
    scores = VAEOutlierDetector(**params).fit(X).feature_scores(X)
    assert isinstance(scores, np.ndarray) and scores.shape == (40, 3)
    table = pd.DataFrame(X)
    named = VAEOutlierDetector(**params).fit(table).feature_scores(table)
    assert isinstance(named, pd.DataFrame)
    assert_array_equal(scores, named.to_numpy())


def test_digits_of_another_class_are_flagged():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    train, test = X[y == 0][:120], np.vstack([X[y == 0][120:], X[y != 0][:300]])
    labels = np.r_[np.zeros((y == 0).sum() - 120), np.ones(300)]
    detector = VAEOutlierDetector(max_epochs=30, random_state=0).fit(train)
    assert detector.likelihoods_[0] == "bernoulli"
    assert roc_auc_score(labels, -detector.score_samples(test)) > 0.9


def test_save_and_load_keep_the_threshold(detector, clusters, tmp_path):
    X, _ = clusters
    detector.save(tmp_path / "d.safetensors")
    loaded = VAEOutlierDetector.load(tmp_path / "d.safetensors")
    assert loaded.offset_ == detector.offset_
    assert_array_equal(loaded.predict(X), detector.predict(X))


def test_feature_scores_add_up_to_the_score_with_the_cost_of_the_code():
    # With one draw of the code the importance weight is 1: the features'
    # scores sum to log p(x | z) in the columns' units, and the score is that
    # minus the closed-form KL term, so the two differ by the KL exactly.
    # Both carry the log-slopes of the transformed (skewed) columns.
    rng = np.random.RandomState(0)
    n = 120
    kind = rng.randint(2, size=n)
    table = pd.DataFrame(
        {
            "kind": np.array(["small", "large"])[kind],
            "size": np.exp(kind + rng.normal(size=n)),
            "weight": kind * 5 + rng.gamma(2.0, size=n),
        }
    )
    table.loc[::7, "weight"] = np.nan
    detector = VAEOutlierDetector(
        n_score_samples=1, max_epochs=3, missing_values=np.nan, random_state=0
    ).fit(table)
    assert detector._schema.columns[1].transform is not None
    _, z_mean, z_logvar = detector._encode(table)
    kl = gaussian_kl(z_mean, z_logvar).double().numpy()
    scores = detector.feature_scores(table).to_numpy()
    assert_allclose(scores.sum(axis=1), detector.score_samples(table) + kl, atol=1e-4)
