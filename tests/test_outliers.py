"""VAEOutlierDetector: the outlier API of scikit-learn on the VAE's likelihood."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback

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
    return VAEOutlierDetector(max_epochs=60, novelty=False, random_state=0).fit(X)


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
        contamination=contamination, novelty=False, max_epochs=5, random_state=0
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


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    n = 200
    kind = rng.randint(2, size=n)
    return pd.DataFrame(
        {
            "kind": np.array(["small", "large"])[kind],
            "size": kind * 10 + rng.normal(size=n),
            "weight": kind * 5 + rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def table_detector(table):
    detector = VAEOutlierDetector(max_epochs=60, novelty=False, random_state=0)
    return detector.fit(table)


def test_feature_scores_of_a_table_are_named_by_column(table, table_detector):
    detector = table_detector
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


def test_a_category_unseen_in_fit_is_flagged_and_named(table, table_detector):
    detector = table_detector
    rows = table.head(3).copy()
    rows.loc[1, "kind"] = "medium"
    gaps = rows.assign(kind=[rows.kind[0], None, rows.kind[2]])
    assert_array_equal(detector.predict(rows), [1, -1, 1])
    # Its additive-smoothing log-probability (200 rows, 2 categories), and a
    # score below the threshold by at least as much.
    unseen = -np.log(200 + 2 + 1)
    expected = detector.score_samples(gaps)
    expected[1] = min(expected[1], detector.offset_) + unseen
    assert_allclose(detector.score_samples(rows), expected, rtol=1e-12)
    contributions = detector.feature_scores(rows)
    assert contributions.loc[1, "kind"] == pytest.approx(unseen, rel=1e-12)
    assert contributions.iloc[1].idxmin() == "kind"


def test_held_out_rows_are_flagged_at_the_contamination_rate():
    rng = np.random.RandomState(0)
    mixing = rng.normal(size=(10, 10)) / np.sqrt(10)
    X = rng.normal(size=(2150, 10)) @ mixing
    train, new = X[:150], X[150:]
    detector = VAEOutlierDetector(
        contamination=0.1,
        max_epochs=20,
        batch_size=8,
        learning_rate=3e-3,
        random_state=0,
    ).fit(train)
    # With a threshold at the 15th lowest of 150 scores of rows that the
    # scoring model did not see, the share of new rows below it is about
    # Beta(15, 136): mean 0.099, sd 0.024; the 2,000 new rows add a binomial
    # sd of 0.007. Three joint sds: 0.1 +- 0.076. The threshold set on the
    # training rows' own scores flags 0.2 of the new rows here.
    flagged = (detector.predict(new) == -1).mean()
    assert abs(flagged - 0.1) < 0.076


class _TrainingLengths(Callback):
    """Records the epochs of every training run, across clones."""

    runs = []

    def on_train_end(self, net, **kwargs):
        _TrainingLengths.runs.append(len(net.history))


def test_the_threshold_models_train_as_long_as_the_model(clusters):
    X, _ = clusters
    _TrainingLengths.runs.clear()
    detector = VAEOutlierDetector(
        max_epochs=40,
        n_iter_no_change=3,
        tol=0.05,
        callbacks=[_TrainingLengths()],
        random_state=0,
    ).fit(X[:100])
    # The model's own run, then one per fold for as many epochs as it ran.
    assert detector.n_iter_ < 40
    assert _TrainingLengths.runs == [detector.n_iter_] * 6


def test_big_tables_set_the_threshold_on_the_held_out_rows(monkeypatch):
    # 1,500 rows made "big" by lower limits (a fast test): "auto" holds out
    # 150 rows, which set the threshold, and no fold model is trained.
    monkeypatch.setattr("skvae._sizing.SMALL_DATA", 500)
    monkeypatch.setattr("skvae._outliers.MIN_HELD_OUT", 150)
    X = np.random.default_rng(0).normal(size=(1_500, 3))
    _TrainingLengths.runs.clear()
    detector = VAEOutlierDetector(
        contamination=0.1,
        max_epochs=3,
        hidden_layer_sizes=(8,),
        callbacks=[_TrainingLengths()],
        random_state=0,
    ).fit(X)
    held_out = detector.net_.train_split.held_out(len(X))
    assert len(held_out) == 150
    expected = np.percentile(detector.score_samples(X[held_out]), 10)
    assert detector.offset_ == pytest.approx(expected, rel=1e-12)
    assert _TrainingLengths.runs == [3]
    # One row fewer held out than needed: the five fold models set it.
    monkeypatch.setattr("skvae._outliers.MIN_HELD_OUT", 151)
    _TrainingLengths.runs.clear()
    detector.fit(X)
    assert _TrainingLengths.runs == [3] * 6


def test_fit_predict_is_for_the_training_rows_only():
    assert hasattr(VAEOutlierDetector(novelty=False), "fit_predict")
    with pytest.raises(AttributeError) as excinfo:
        VAEOutlierDetector().fit_predict
    assert "use novelty=False" in str(excinfo.value.__cause__)


def test_the_threshold_keeps_the_draws_it_was_set_with(clusters):
    X, _ = clusters
    detector = VAEOutlierDetector(n_score_samples=1, max_epochs=5, random_state=0)
    scores = detector.fit(X[:100]).score_samples(X)
    offset = detector.offset_
    detector.set_params(n_score_samples=20)
    assert_array_equal(detector.score_samples(X), scores)
    assert detector.offset_ == offset and detector.n_score_samples_ == 1
    assert detector.fit(X[:100]).n_score_samples_ == 20


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
    assert loaded.n_score_samples_ == detector.n_score_samples_
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
    # The features explain the likelihood, not the local view.
    detector = VAEOutlierDetector(
        n_score_samples=1,
        n_neighbors=0,
        max_epochs=3,
        missing_values=np.nan,
        random_state=0,
    ).fit(table)
    assert detector._schema.columns[1].transform is not None
    _, z_mean, z_logvar = detector._encode(table)
    kl = gaussian_kl(z_mean, z_logvar).double().numpy()
    scores = detector.feature_scores(table).to_numpy()
    assert_allclose(scores.sum(axis=1), detector.score_samples(table) + kl, atol=1e-4)


@pytest.mark.parametrize(
    "column",
    [
        # Out of the [0, 1] of the other rows: a fold of those alone would be
        # modelled as Bernoulli and refuse the -1.
        pd.Series([0, 0, 0, 0, -1]),
        # A fold whose rows are all gaps in that column.
        pd.Series([0.5, np.nan, 1.5, 2.5, 3.5]),
    ],
)
def test_the_threshold_folds_keep_the_columns_of_the_whole_table(column):
    table = column.to_frame("x")
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    detector = VAEOutlierDetector(**params).fit(table)
    assert np.isfinite(detector.offset_)
    assert set(detector.predict(table)) <= {-1, 1}


# ---------------------------------------------------------- the local view
def _local_by_hand(detector, X, own=None):
    """Minus the mean root expected squared distance of each row's posterior
    to its nearest training codes, in float64 NumPy; ``own[i]``, where not
    -1, is the position of row i's own code, left out of its neighbours."""
    _, z_mean, z_logvar = detector._encode(X)
    z_mean, spread = z_mean.double().numpy(), z_logvar.exp().sum(1).double().numpy()
    codes = detector.neighbor_codes_.astype(np.float64)
    squared = ((z_mean[:, None, :] - codes[None]) ** 2).sum(axis=2)
    if own is not None:
        rows = np.flatnonzero(own >= 0)
        squared[rows, own[rows]] = np.inf
    nearest = np.sort(squared, axis=1)[:, : detector.n_neighbors_]
    return -np.sqrt(nearest + spread[:, None]).mean(axis=1)


def _density_by_hand(detector, X, own=None):
    """Minus the log local outlier factor of each row of ``X`` among the
    standardised training rows ``neighbor_rows_``, in float64 NumPy, with
    the floor of ``_local``; ``own`` as for ``_local_by_hand``."""
    from scipy.spatial.distance import cdist

    from skvae._local import DISTANCE_FLOOR

    train = detector.neighbor_rows_.astype(np.float64)
    rows = detector._schema.encode(X).astype(np.float32).astype(np.float64)
    k = detector.n_neighbors_

    def neighbours(distances):
        index = np.argsort(distances, axis=1, kind="stable")[:, :k]
        return index, np.take_along_axis(distances, index, axis=1)

    within = cdist(train, train)
    np.fill_diagonal(within, np.inf)
    index, nearest = neighbours(within)
    k_distance = nearest[:, -1]
    density = 1 / (np.maximum(nearest, k_distance[index]).mean(axis=1) + DISTANCE_FLOOR)
    distances = cdist(rows, train)
    if own is not None:
        mine = np.flatnonzero(own >= 0)
        distances[mine, own[mine]] = np.inf
    index, nearest = neighbours(distances)
    own_density = 1 / (
        np.maximum(nearest, k_distance[index]).mean(axis=1) + DISTANCE_FLOOR
    )
    return np.log(own_density / density[index].mean(axis=1))


def _weight(base, scores, share):
    (q1, q3), (l1, l3) = np.percentile(base, [25, 75]), np.percentile(scores, [25, 75])
    return share * (q3 - q1) / (l3 - l1)


def test_the_score_adds_the_local_views_of_the_nearest_training_rows(
    detector, clusters
):
    X, far = clusters
    assert detector.n_neighbors_ == 20
    assert_array_equal(detector.neighbor_codes_, detector._encode(X)[1].numpy())
    # Without gaps, the rows of the local density are the standardised rows.
    standardised = (X - X.mean(axis=0)) / X.std(axis=0)
    assert_allclose(detector.neighbor_rows_, standardised, rtol=1e-5, atol=1e-5)
    # The weights and centres are set on the training rows' own scores
    # (novelty=False), none of them its own neighbour: first the codes' view
    # against the log-likelihood, then the density against both.
    own = np.arange(len(X))
    log_px, local = detector._log_likelihood(X), _local_by_hand(detector, X, own)
    assert detector.local_weight_ == pytest.approx(_weight(log_px, local, 0.5))
    assert detector.local_center_ == pytest.approx(np.median(local), rel=1e-6)
    base = log_px + detector.local_weight_ * (local - detector.local_center_)
    density = _density_by_hand(detector, X, own)
    assert detector.density_weight_ == pytest.approx(
        _weight(base, density, 3.0), rel=1e-5
    )
    assert detector.density_center_ == pytest.approx(np.median(density), rel=1e-5)
    expected = base + detector.density_weight_ * (density - detector.density_center_)
    assert_allclose(detector.score_samples(X), expected, rtol=1e-5)
    new = _local_by_hand(detector, far)
    expected = (
        detector._log_likelihood(far)
        + detector.local_weight_ * (new - detector.local_center_)
        + detector.density_weight_
        * (_density_by_hand(detector, far) - detector.density_center_)
    )
    assert_allclose(detector.score_samples(far), expected, rtol=1e-5)


def test_the_local_density_flags_rows_just_outside_a_tight_cluster():
    # A tight cluster and a wide one: rows 4 spreads outside the tight one
    # are likelier under one smooth density than the wide cluster's own
    # rows, but far sparser than their neighbours.
    rng = np.random.RandomState(0)
    tight = 0.2 * rng.normal(size=(200, 3))
    wide = 8.0 + 2.0 * rng.normal(size=(200, 3))
    direction = rng.normal(size=(10, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    outside = 0.8 * direction
    test = np.vstack([8.0 + 2.0 * rng.normal(size=(50, 3)), outside])
    labels = np.r_[np.zeros(50), np.ones(10)]
    params = dict(max_epochs=60, novelty=False, random_state=0)
    detector = VAEOutlierDetector(**params).fit(np.vstack([tight, wide]))
    assert detector.density_weight_ > 0
    assert roc_auc_score(labels, -detector.score_samples(test)) > 0.9
    # The likelihood and the codes alone rank them among the wide rows.
    alone = detector._log_likelihood(test)
    assert roc_auc_score(labels, -alone) < 0.8


def test_no_neighbours_score_the_likelihood_alone(clusters):
    X, far = clusters
    detector = VAEOutlierDetector(
        n_neighbors=0, max_epochs=5, novelty=False, random_state=0
    ).fit(X)
    assert detector.n_neighbors_ == 0 and detector.neighbor_codes_.shape == (0, 2)
    rows = np.vstack([X, far])
    expected = detector._log_likelihood(rows, unseen_ceiling=detector.offset_)
    assert_array_equal(detector.score_samples(rows), expected)
    q1, q3 = np.percentile(detector._log_likelihood(X), [25, 75])
    assert detector.offset_ == q1 - 1.5 * (q3 - q1)


def test_neighbours_are_at_most_the_other_training_rows(clusters):
    X, _ = clusters
    params = dict(n_neighbors=50, max_epochs=2, hidden_layer_sizes=(8,))
    detector = VAEOutlierDetector(**params, random_state=0).fit(X[:12])
    assert detector.n_neighbors_ == 11 and detector.neighbor_codes_.shape == (12, 2)
    assert np.isfinite(detector.offset_) and detector.local_weight_ > 0
    assert VAEOutlierDetector(**params).fit(X[:1]).n_neighbors_ == 0


def test_big_tables_keep_a_seeded_subset_of_the_codes(clusters, monkeypatch):
    monkeypatch.setattr("skvae._local.MAX_CODES", 50)
    X, _ = clusters
    detector = VAEOutlierDetector(max_epochs=2, novelty=False, random_state=0)
    detector.fit(X)
    rows = np.random.default_rng(detector._score_seed).choice(300, 50, replace=False)
    rows.sort()
    assert_array_equal(detector.neighbor_codes_, detector._encode(X[rows])[1])
    # The rows among the codes are not their own neighbours; the others
    # look among all 50.
    own = np.full(len(X), -1)
    own[rows] = np.arange(50)
    assert detector.neighbor_rows_.shape == (50, 5)
    expected = (
        detector._log_likelihood(X)
        + detector.local_weight_
        * (_local_by_hand(detector, X, own) - detector.local_center_)
        + detector.density_weight_
        * (_density_by_hand(detector, X, own) - detector.density_center_)
    )
    assert_allclose(detector.score_samples(X), expected, rtol=1e-5)


@pytest.mark.parametrize("n_neighbors", [-1, 2.5, "auto"])
def test_bad_n_neighbors_raise_before_training(n_neighbors):
    with pytest.raises(ValueError, match="n_neighbors"):
        VAEOutlierDetector(n_neighbors=n_neighbors).fit(np.zeros((10, 2)))


def test_save_and_load_keep_the_local_view(detector, clusters, tmp_path):
    X, far = clusters
    detector.save(tmp_path / "d.safetensors")
    loaded = VAEOutlierDetector.load(tmp_path / "d.safetensors")
    assert_array_equal(loaded.neighbor_codes_, detector.neighbor_codes_)
    assert loaded.neighbor_codes_.dtype == np.float32
    assert loaded.local_weight_ == detector.local_weight_
    assert loaded.local_center_ == detector.local_center_
    assert_array_equal(loaded.neighbor_rows_, detector.neighbor_rows_)
    for name in ("_neighbor_k_distances", "_neighbor_log_densities"):
        assert_array_equal(getattr(loaded, name), getattr(detector, name))
    assert (loaded.density_weight_, loaded.density_center_) == (
        detector.density_weight_,
        detector.density_center_,
    )
    rows = np.vstack([X, far])
    assert_array_equal(loaded.score_samples(rows), detector.score_samples(rows))


def test_files_from_before_the_local_view_score_the_likelihood(
    detector, clusters, tmp_path
):
    import json

    import safetensors.torch

    from skvae import _persistence

    X, _ = clusters
    path = tmp_path / "d.safetensors"
    detector.save(path)
    # The file as written before the local view: no parameter, attributes or
    # codes of it.
    with safetensors.safe_open(path, "pt") as f:
        info = json.loads(f.metadata()["skvae"])
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("fitted.")}
    del info["params"]["n_neighbors"]
    for name in ("n_neighbors_", "local_weight_", "local_center_"):
        del info["fitted"][name]
    document = json.dumps(info)
    digest = _persistence._digest(document, tensors)
    metadata = {"skvae": document, "sha256": digest}
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    loaded = VAEOutlierDetector.load(path)
    assert loaded.n_neighbors_ == 0 and loaded.local_weight_ == 0.0
    expected = detector._log_likelihood(X, unseen_ceiling=detector.offset_)
    assert_array_equal(loaded.score_samples(X), expected)


def test_files_from_before_the_local_density_score_as_they_did(
    detector, clusters, tmp_path
):
    import json

    import safetensors.torch

    from skvae import _persistence

    X, far = clusters
    path = tmp_path / "d.safetensors"
    detector.save(path)
    # The file as written before the local density: the codes' view alone.
    density = ("neighbor_rows_", "_neighbor_k_distances", "_neighbor_log_densities")
    with safetensors.safe_open(path, "pt") as f:
        info = json.loads(f.metadata()["skvae"])
        names = [k for k in f.keys() if k.removeprefix("fitted.") not in density]
        tensors = {k: f.get_tensor(k) for k in names}
    for name in ("density_weight_", "density_center_"):
        del info["fitted"][name]
    document = json.dumps(info)
    metadata = {"skvae": document, "sha256": _persistence._digest(document, tensors)}
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    loaded = VAEOutlierDetector.load(path)
    assert loaded.density_weight_ == 0.0 and loaded.neighbor_rows_.shape == (0, 5)
    rows = np.vstack([X, far])
    # The training rows are in the codes: each is not its own neighbour.
    own = np.r_[np.arange(len(X)), np.full(len(far), -1)]
    expected = detector._log_likelihood(rows) + detector.local_weight_ * (
        _local_by_hand(detector, rows, own) - detector.local_center_
    )
    assert_allclose(loaded.score_samples(rows), expected, rtol=1e-6)
    # Saved again, it stays as it was.
    loaded.save(tmp_path / "again.safetensors")
    again = VAEOutlierDetector.load(tmp_path / "again.safetensors")
    assert_array_equal(again.score_samples(rows), loaded.score_samples(rows))


def test_wide_rows_keep_a_seeded_subset_for_the_local_density(clusters, monkeypatch):
    from skvae._local import density_rows

    # Room for 40 rows of 5 numbers: the density keeps 40 of the 300 rows
    # whose codes it keeps.
    monkeypatch.setattr("skvae._local.MAX_DENSITY_ENTRIES", 200)
    X, far = clusters
    detector = VAEOutlierDetector(max_epochs=2, novelty=False, random_state=0)
    detector.fit(X)
    assert detector.neighbor_codes_.shape == (300, 2)
    rows = density_rows(300, 5, 20, detector._score_seed)
    assert len(rows) == 40 and detector.neighbor_rows_.shape == (40, 5)
    assert_allclose(detector.neighbor_rows_, detector._schema.encode(X[rows]))
    own = np.full(len(X), -1)
    own[rows] = np.arange(40)
    expected = (
        detector._log_likelihood(X)
        + detector.local_weight_
        * (_local_by_hand(detector, X, np.arange(300)) - detector.local_center_)
        + detector.density_weight_
        * (_density_by_hand(detector, X, own) - detector.density_center_)
    )
    assert_allclose(detector.score_samples(X), expected, rtol=1e-5)
    # At least the neighbours and the row itself.
    assert len(density_rows(300, 10**9, 20, 0)) == 21
