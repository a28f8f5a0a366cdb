"""``VAEOutlierDetector``: rows of low likelihood, with the outlier API."""

from dataclasses import replace
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import OutlierMixin, _fit_context, clone
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._base import _BaseVAE
from ._docstrings import fill_doc
from ._importance import feature_log_likelihoods
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
    ``n_score_samples`` draws): rows that the model finds unlikely are
    outliers. Scores are deterministic: the same fitted model gives the same
    scores for the same rows, whatever the other rows. ``feature_scores``
    tells which features make a row unlikely.

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
    }
    _saved_attributes = (*_BaseVAE._saved_attributes, "offset_", "n_score_samples_")
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
        held_out = self._held_out_rows(checked)
        if self.novelty and held_out is not None:
            # Rows the model never trained on are new rows to it: their
            # scores set the threshold, with no refits.
            rows = _safe_indexing(checked, held_out)
            scores = self._log_likelihood(rows).astype(np.float64)
        elif self.novelty and _num_samples(checked) >= N_FOLDS:
            try:
                scores = self._cross_fitted_scores(checked)
            except BaseException:
                self._forget_fit()
                raise
        else:
            scores = self._log_likelihood(checked).astype(np.float64)
        if self.contamination == "auto":
            q1, q3 = np.percentile(scores, [25, 75])
            self.offset_ = float(q1 - 1.5 * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(scores, 100 * self.contamination))
        return self

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
        scores = np.empty(n_samples)
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
            scores[test] = model._log_likelihood(_safe_indexing(X, test))
        return scores

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
        """Log-likelihood of each row: the lower, the more abnormal.

        The importance-weighted estimate of log p(x) with
        ``n_score_samples_`` draws, of the observed entries of each row.
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
            Estimated log p(x) in nats, in the float dtype of ``X``.
        """
        check_is_fitted(self)
        return self._log_likelihood(X, unseen_ceiling=self.offset_)

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
