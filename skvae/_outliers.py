"""``VAEOutlierDetector``: rows of low likelihood, with the outlier API."""

from dataclasses import replace
from functools import partial
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import OutlierMixin, _fit_context, clone
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._base import _BaseVAE
from ._docstrings import fill_doc
from ._donors import completed_mean
from ._importance import feature_log_likelihoods
from ._local import (
    DENSITY_WEIGHT,
    DensityView,
    LocalView,
    blocked_density_term,
    blocked_local_term,
    calibrate,
    code_rows,
    density_rows,
    fit_density,
)
from ._utils import draw_seed, to_numpy

# Folds of the cross-fitting that scores each training row with a model that
# did not see it (novelty=True): each fold's model trains on 80 % of the rows.
N_FOLDS = 5
# Rows held out by early stopping that set the threshold instead, as new rows
# (on big tables: "auto" holds out a tenth of over 20,000 rows). Fewer leave
# the quantiles of small contaminations to a handful of rows.
MIN_HELD_OUT = 1_000


@fill_doc(
    n_components=2,
    hidden_layer_sizes="(256,)",
    activation="relu",
    numeric_transform="their standardised values (mean 0 and variance 1 over "
    "the training rows)",
    max_epochs=1000,
    batch_size=32,
    learning_rate=1e-3,
    weight_decay=0.0,
    n_iter_no_change=20,
    n_score_samples=10,
)
class VAEOutlierDetector(OutlierMixin, _BaseVAE):
    """Outlier detection with a variational autoencoder.

    The detector learns the distribution of the training rows with a
    variational autoencoder and scores each row by its estimated
    log-likelihood log p(x) (the importance-weighted bound with
    ``n_score_samples`` draws), plus two local views of its ``n_neighbors``
    nearest training rows: how far the row's code lies from theirs, and how
    much sparser the place of the row is than theirs (its local outlier
    factor among the training rows, as the model completes their gaps).
    Rows that the model finds unlikely, or that lie apart from their
    neighbours, are outliers; the local density finds rows just outside a
    tight cluster, where the likelihood of a model that also fits wider
    clusters does not. Scores are deterministic: the same fitted model gives the
    same scores for the same rows, whatever the other rows.
    ``feature_scores`` tells which features make a row unlikely.

    It takes what :class:`VAETransformer` takes (arrays, sparse matrices,
    DataFrames with categorical columns, gaps: a row's score is then that of
    its observed entries) and shares its network and training.

    Parameters
    ----------
    {parameters}

    contamination : "auto" or float, default="auto"
        The expected share of outliers, which sets the threshold of
        ``predict`` (``offset_``) on the reference scores: with
        ``novelty=True``, those of the training rows each scored by a model
        fitted without it; with ``novelty=False``, those of the training rows
        by the model itself. A float in (0, 0.5]: the threshold is that
        quantile of the reference scores. ``"auto"``: their lower Tukey fence,
        ``Q1 - 1.5 (Q3 - Q1)``, which flags the rows far below the bulk of
        the data (none when it has no such rows).

    n_neighbors : int, default=20
        Training rows that the local views of a row look at, at most
        ``n_samples - 1`` (a training row is not its own neighbour); those
        of all the training rows, or of 10,000 drawn at random from bigger
        tables (the local density keeps fewer for rows of over 1,677 encoded
        columns: 2**24 numbers at most). A row's score adds two terms:

        - the codes: minus its mean distance to the ``n_neighbors`` nearest
          posterior means of the training rows (the root expected squared
          distance under the row's posterior), weighted by half the
          interquartile range of the reference log-likelihoods per
          interquartile range of these scores;
        - the local density: minus the log of its local outlier factor (as
          :class:`~sklearn.neighbors.LocalOutlierFactor` computes it) among
          the training rows in the encoded columns (standardised numbers,
          one-hot categories), gaps filled by the model's posterior means,
          weighted by three interquartile ranges of the reference scores so
          far per interquartile range of these.

        The reference scores are those that set ``offset_`` (see
        ``novelty``). 0: the score is the log-likelihood alone.

    novelty : bool, default=True
        Whether the detector is for new rows, as in
        :class:`~sklearn.neighbors.LocalOutlierFactor`. True: the threshold
        is set on cross-fitted scores (each training row scored by one of
        five models fitted on the other 80 % of the rows, for as many epochs
        as the detector's own model), so that clean new
        rows are flagged at the ``contamination`` rate; a model scores the
        rows it was fitted to higher than new ones, and a threshold set on
        those would flag far more new rows (on small tables, several times
        more). Fitting takes about five times longer, and ``fit_predict`` is
        not available. When early stopping holds out at least 1,000 rows
        (``early_stopping="auto"`` does on over 20,000 rows), the threshold
        is set on their scores instead, with no refits: the model never
        trained on them. False, or fewer than five rows: the threshold is set
        on the training rows' own scores, so that ``fit_predict`` flags the
        ``contamination`` share of them.

    Attributes
    ----------
    offset_ : float
        Threshold on ``score_samples``: ``decision_function`` is
        ``score_samples - offset_``, negative for outliers.

    n_neighbors_ : int
        Neighbours of the local views: ``n_neighbors``, at most
        ``n_samples - 1``; 0 without the local views.

    neighbor_codes_ : ndarray of shape (n_codes, n_components)
        The posterior means of the training rows (float32; at most 10,000
        of them) among which the local view finds neighbours; no rows
        without the local view.

    local_weight_ : float
        Nats of ``score_samples`` per unit of the local score.

    local_center_ : float
        The median local score of the reference rows, where the local view
        adds 0 to a score.

    neighbor_rows_ : ndarray of shape (n_rows, n_encoded)
        The training rows among which the local density finds neighbours,
        encoded and completed (float32): those of ``neighbor_codes_``, or a
        random subset of them for wide rows (at most 2**24 numbers in all);
        no rows without the local views.

    density_weight_ : float
        Nats of ``score_samples`` per unit of the local density score
        (minus a log local outlier factor).

    density_center_ : float
        The median local density score of the reference rows.

    n_score_samples_ : int
        The draws per row of the scores: ``n_score_samples`` at ``fit``, with
        which ``offset_`` was set. Setting ``n_score_samples`` on a fitted
        detector takes effect at the next ``fit``, since a threshold holds
        for scores with the draws it was set on.

    net_ : skorch.NeuralNet
        The trained skorch net; its ``module_`` is the PyTorch model.

    history_ : skorch.History
        Per-epoch records of training.

    likelihoods_ : dict
        The likelihood of each input column, as ``likelihood`` resolved at
        ``fit``.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when ``X`` has
        feature names that are all strings.

    n_iter_ : int
        Number of epochs run.

    loss_curve_ : list of float
        Training loss (negative ELBO, nats per sample) after each epoch.

    validation_scores_ : list of float or None
        Minus the held-out loss after each epoch; None
        without early stopping.

    best_epoch_ : int
        Epoch (counted from 1) whose weights the model holds.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outliers by random partitioning.
    sklearn.neighbors.LocalOutlierFactor : Outliers by local density.
    VAETransformer : The same model as a transformer.

    References
    ----------
    J. An and S. Cho, "Variational Autoencoder based Anomaly Detection using
    Reconstruction Probability", SNU Data Mining Center, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> detector = VAEOutlierDetector(contamination=0.05, max_epochs=2,
    ...                               random_state=0).fit(X)
    >>> detector.predict([[0.0, 0.0, 0.0, 0.0], [9.0, -9.0, 9.0, -9.0]])
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "novelty": ["boolean"],
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
    }
    _local_attributes = (
        "n_neighbors_",
        "neighbor_codes_",
        "local_weight_",
        "local_center_",
        "neighbor_rows_",
        "density_weight_",
        "density_center_",
        "_neighbor_k_distances",
        "_neighbor_log_densities",
    )
    _saved_attributes = (
        *_BaseVAE._saved_attributes,
        "offset_",
        "n_score_samples_",
        *_local_attributes,
    )
    # Measured on the one-class benchmark: standardised columns detect better
    # than normal scores (ROC-AUC 0.976 / 0.953 against 0.959 / 0.945 on wine
    # and breast cancer), whose flattening of the tails hides extreme values.
    _numeric_transform = "standardize"
    _small_data_epochs = 1000
    _small_data_batch_size = 32
    # The ONNX graph of skvae.to_onnx: predict and decision_function.
    _onnx_graph = "detector"

    def __init__(
        self,
        n_components=2,
        *,
        contamination="auto",
        novelty=True,
        n_neighbors=20,
        hidden_layer_sizes=(256,),
        activation="relu",
        likelihood="auto",
        missing_values=np.nan,
        module=None,
        beta=1.0,
        kl_warmup_epochs=0,
        max_epochs="auto",
        batch_size="auto",
        learning_rate=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        n_score_samples=10,
        device="cpu",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.contamination = contamination
        self.novelty = novelty
        self.n_neighbors = n_neighbors
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.missing_values = missing_values
        self.module = module
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.n_score_samples = n_score_samples
        self.device = device
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distribution of ``X`` and the threshold ``offset_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._fit(X)
        self.n_score_samples_ = self.n_score_samples
        # Rows are taken from X once validated (a DataFrame, or an array or
        # CSR/CSC matrix).
        checked = self._check_input(X, reset=False)
        self._set_neighbors(checked)
        log_px, local, density = self._reference_scores(checked)
        self.local_weight_, self.local_center_ = 0.0, 0.0
        self.density_weight_, self.density_center_ = 0.0, 0.0
        # As local_term and density_term compute them, in float64.
        scores = log_px
        if self.n_neighbors_:
            self.local_weight_, self.local_center_ = calibrate(scores, local)
            scores = scores + self.local_weight_ * (local - self.local_center_)
            self.density_weight_, self.density_center_ = calibrate(
                scores, density, DENSITY_WEIGHT
            )
            scores = scores + self.density_weight_ * (density - self.density_center_)
        if self.contamination == "auto":
            q1, q3 = np.percentile(scores, [25, 75])
            self.offset_ = float(q1 - 1.5 * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(scores, 100 * self.contamination))
        return self

    def _reference_scores(self, X):
        """Log-likelihoods and local scores (see ``_parts``) of the rows
        whose scores set ``offset_`` and the local weights (see
        ``novelty``)."""
        held_out = self._held_out_rows(X)
        if self.novelty and held_out is not None:
            # Rows the model never trained on are new rows to it: their
            # scores set the threshold, with no refits.
            return self._parts(_safe_indexing(X, held_out))
        if self.novelty and _num_samples(X) >= N_FOLDS:
            try:
                return self._cross_fitted_scores(X)
            except BaseException:
                self._forget_fit()
                raise
        return self._parts(X)

    def _set_neighbors(self, X):
        """Keep the posterior means and the completed encoded rows of the
        rows of ``X`` (``MAX_CODES`` of them at most) for the local views,
        and the rows' local reachability densities."""
        rows = code_rows(_num_samples(X), self._score_seed)
        self.n_neighbors_ = max(0, min(self.n_neighbors, len(rows) - 1))
        if not self.n_neighbors_:
            self._no_neighbors()
            return
        if len(rows) < _num_samples(X):
            X = _safe_indexing(X, rows)
        _, dataset = self._inference_data(X)
        z_mean, _ = self.net_.encode(dataset, self._inference_rows)
        self.neighbor_codes_ = self._finite(z_mean, "fit").numpy()
        dense = density_rows(
            len(rows), self._schema.n_features, self.n_neighbors_, self._score_seed
        )
        if len(dense) < len(rows):
            _, dataset = self._inference_data(_safe_indexing(X, dense))
        completed = self._importance_sampled(completed_mean, dataset)
        self.neighbor_rows_ = completed.numpy().astype(np.float32)
        k_distances, log_densities = fit_density(
            torch.from_numpy(self.neighbor_rows_), self.n_neighbors_
        )
        self._neighbor_k_distances = k_distances.numpy()
        self._neighbor_log_densities = log_densities.numpy()

    def _no_neighbors(self):
        """The fitted attributes of the local views, without them."""
        self.n_neighbors_ = 0
        self.neighbor_codes_ = np.zeros((0, self.n_components), np.float32)
        self._no_density()

    def _no_density(self):
        """The fitted rows of the local density, without it."""
        self.neighbor_rows_ = np.zeros((0, self._schema.n_features), np.float32)
        self._neighbor_k_distances = np.zeros(0)
        self._neighbor_log_densities = np.zeros(0)

    def _local_view(self, weight=1.0, center=0.0):
        codes = torch.from_numpy(np.asarray(self.neighbor_codes_, np.float32))
        return LocalView(codes, self.n_neighbors_, weight, center)

    def _density_view(self, weight=1.0, center=0.0):
        return DensityView(
            torch.from_numpy(np.asarray(self.neighbor_rows_, np.float32)),
            torch.from_numpy(np.asarray(self._neighbor_k_distances, np.float64)),
            torch.from_numpy(np.asarray(self._neighbor_log_densities, np.float64)),
            self.n_neighbors_,
            weight,
            center,
        )

    def _local_terms(self, dataset, views):
        """The terms of the local views ``(LocalView, DensityView)`` for the
        rows of ``dataset``, each as float64 NumPy."""
        local, density = views
        z_mean, z_logvar = self.net_.encode(dataset, self._inference_rows)
        local = blocked_local_term(z_mean, z_logvar, local)
        # No rows: a file from before the local density; no weight: a
        # reference range of 0 (see calibrate).
        if not len(density.rows) or not density.weight:
            return local, np.zeros_like(local)
        rows = self._importance_sampled(completed_mean, dataset)
        return local, blocked_density_term(rows, density)

    def _fitted_views(self):
        return (
            self._local_view(self.local_weight_, self.local_center_),
            self._density_view(self.density_weight_, self.density_center_),
        )

    def _parts(self, X):
        """Log-likelihoods, local scores (``neighbour_scores``) and local
        density scores (``density_scores``) of the rows of ``X``, as float64
        (zeros without the local views)."""
        log_px = self._log_likelihood(X).astype(np.float64)
        if not self.n_neighbors_:
            return log_px, np.zeros_like(log_px), np.zeros_like(log_px)
        _, dataset = self._inference_data(X)
        views = (self._local_view(), self._density_view())
        return (log_px, *self._local_terms(dataset, views))

    def _fitted_state(self):
        state = super()._fitted_state()
        if self.n_neighbors_:
            state["local"], density = self._fitted_views()
            if self.density_weight_:
                state["density"] = density
        return state

    def _after_load(self):
        # Files written before the local view: the score is the likelihood.
        if not hasattr(self, "n_neighbors_"):
            self._no_neighbors()
            self.local_weight_, self.local_center_ = 0.0, 0.0
        # Files written before the local density: the score is the
        # likelihood and the codes' view, as it was.
        if not hasattr(self, "density_weight_"):
            self._no_density()
            self.density_weight_, self.density_center_ = 0.0, 0.0

    def _held_out_rows(self, X):
        """Positions of the rows that early stopping held out of training,
        when there are at least ``MIN_HELD_OUT`` of them; else None."""
        split = self.net_.train_split
        if split is None:
            return None
        rows = split.held_out(_num_samples(X))
        return rows if len(rows) >= MIN_HELD_OUT else None

    def _cross_fitted_scores(self, X):
        """Scores of the rows of ``X``, each by a model fitted without it.

        ``N_FOLDS``-fold cross-fitting: each fold's rows are scored by a
        detector with the same parameters, fitted on the other folds for as
        many epochs as the model holds (``best_epoch_``). The longer a model
        trains on a small table, the more it prefers its own rows to new
        ones; folds that stopped at other epochs would set the threshold for
        another model (on 46 rows of Cars93, folds stopping after 200-550
        epochs where the model ran 900 flagged 38 % of clean new rows for a
        contamination of 0.1).
        """
        n_samples = _num_samples(X)
        epochs = self.best_epoch_
        folds = KFold(N_FOLDS, shuffle=True, random_state=draw_seed(self._rng))
        log_px, local = np.empty(n_samples), np.empty(n_samples)
        density = np.empty(n_samples)
        for train, test in folds.split(np.empty((n_samples, 1))):
            model = clone(self).set_params(
                novelty=False,
                n_iter_no_change=epochs,  # no stop before max_epochs
                verbose=0,
                random_state=draw_seed(self._rng),
            )
            # The columns as the whole table defines them: a fold may lack a
            # column's gaps, categories or values outside [0, 1]; the batches
            # and schedule of the whole table's fit, for ``epochs`` epochs.
            plan = replace(self._plan, max_epochs=epochs, early_stopping=False)
            rows = _safe_indexing(X, train)
            model._fit(rows, schema=self._schema, plan=plan)
            model._set_neighbors(rows)
            parts = model._parts(_safe_indexing(X, test))
            log_px[test], local[test], density[test] = parts
        return log_px, local, density

    @property
    def _score_draws(self):
        return getattr(self, "n_score_samples_", self.n_score_samples)

    def _can_fit_predict(self):
        if self.novelty:
            raise AttributeError(
                "fit_predict is not available when novelty=True, whose threshold "
                "is set for new rows; use novelty=False to flag the training rows."
            )
        return True

    @available_if(_can_fit_predict)
    def fit_predict(self, X, y=None, **kwargs):
        """Fit on ``X`` and flag its outliers (with ``novelty=False`` only).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        **kwargs : dict
            Not used.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        return self.fit(X).predict(X)

    def score_samples(self, X):
        """Normality of each row: the lower, the more abnormal.

        The importance-weighted estimate of log p(x) with
        ``n_score_samples_`` draws, of the observed entries of each row, plus
        ``local_weight_`` times the row's local score (minus its mean
        distance to its ``n_neighbors_`` nearest training codes) less
        ``local_center_``, plus ``density_weight_`` times its local density
        score (minus the log of its local outlier factor among the training
        rows ``neighbor_rows_``, its gaps filled with the model's posterior
        means) less ``density_center_``; the log-likelihood alone when
        ``n_neighbors=0``.
        Deterministic: the draws are keyed by each row's values and a seed
        drawn at ``fit``. A category that ``fit`` did not see is as likely as
        an additive-smoothing estimate makes a never-seen level, and a row
        holding one scores at most ``offset_`` plus that log-probability, so
        that ``predict`` flags it.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The scores in nats, in the float dtype of ``X``.
        """
        check_is_fitted(self)
        extra = None
        if self.n_neighbors_:
            extra = partial(self._local_extra, views=self._fitted_views())
        return self._log_likelihood(X, unseen_ceiling=self.offset_, extra=extra)

    def _local_extra(self, dataset, views):
        """The sum of the local views' terms (``_local_terms``)."""
        local, density = self._local_terms(dataset, views)
        return local + density

    def decision_function(self, X):
        """Score shifted by the threshold: negative for outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        check_is_fitted(self)
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Whether each row is an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Rows to classify.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_scores(self, X):
        """Each feature's share of a row's log-likelihood.

        It explains the log-likelihood part of ``score_samples``, not the
        local view.

        The expected log-likelihood of each entry under the posterior of its
        row's code, ``sum_k w_k log p(x_j | z_k)`` with the self-normalised
        importance weights of ``score_samples``: very negative entries are the
        ones that make a row unlikely. They sum, over a row, to its expected
        reconstruction log-likelihood, the part of the score that the
        features explain (the rest is the cost of the code). A categorical
        column's entry is the log-probability of its category, a transformed
        numeric column's includes its log-slope (as in ``score_samples``),
        a category that ``fit`` did not see has its additive-smoothing
        log-probability (see ``score_samples``), and a missing entry's is 0.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Rows to explain.

        Returns
        -------
        scores : ndarray or DataFrame of shape (n_samples, n_features)
            One column per input column; a DataFrame with the column names
            (and the index of ``X``) when ``X`` is a DataFrame.
        """
        frame = isinstance(X, pd.DataFrame)
        X, dataset = self._inference_data(X, support=True)
        terms = self._importance_sampled(feature_log_likelihoods, dataset)
        terms = self._schema.per_column(to_numpy(terms, np.float64), X)
        terms = terms.astype(self._out_dtype(X), copy=False)
        if frame:
            names = [column.name for column in self._schema.columns]
            return pd.DataFrame(terms, columns=names, index=X.index)
        return terms
