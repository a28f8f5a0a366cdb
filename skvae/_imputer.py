"""``VAEImputer``: missing values filled by a variational autoencoder (MIWAE)."""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import TransformerMixin, _fit_context
from sklearn.impute import MissingIndicator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._base import _BaseVAE
from ._data import InMemoryDataset, as_rows
from ._docstrings import fill_doc
from ._donors import (
    CHOICE_DRAWS,
    NEIGHBOURS,
    blend_rows,
    completed_draw,
    completed_mean,
    draw_donors,
    fit_donors,
    make_pool,
    pool_rows,
)
from ._importance import posterior_mean
from ._transforms import empty_column, fill_series
from ._utils import draw_seed, seeded_generator, to_numpy


@fill_doc(
    n_components=10,
    hidden_layer_sizes="(64, 64)",
    activation="elu",
    numeric_transform="their standardised values (mean 0 and variance 1 "
    "over the observed entries)",
    max_epochs=400,
    batch_size=64,
    learning_rate=3e-3,
    weight_decay=0.0,
    n_iter_no_change=400,
    n_score_samples=10,
)
class VAEImputer(TransformerMixin, _BaseVAE):
    """Imputation of missing values with a variational autoencoder (MIWAE).

    A variational autoencoder learns the distribution of the rows from their
    observed entries: it is trained on the importance-weighted bound of the
    observed part of each row (``n_train_samples`` draws of the code per row),
    with an encoder that sees which entries are observed. Each gap is then
    filled with its expected value given the observed entries of its row,
    estimated by self-normalised importance sampling: ``n_impute_samples``
    codes drawn from the encoder's posterior, each weighted by how well it
    explains the observed entries, and their decoded means averaged with
    those weights (Mattei and Frellsen, 2019). Where it does better on the
    fit data, the fill is blended with the values of the training rows
    nearest the gap's row (``n_neighbors``): a look-up step that finds rows
    which repeat, or with a linear read-out of the row's other entries.
    ``sample_posterior=True`` draws one plausible value per
    gap instead, for multiple imputation.

    Observed entries are returned unchanged. Categorical columns of a
    DataFrame are imputed too (their most probable category, or a draw), and
    a DataFrame comes back with its columns and dtypes.

    Parameters
    ----------
    missing_values : float, default=np.nan
        Marker of the missing entries: ``np.nan`` (in DataFrames also
        ``None`` and ``pd.NA``), or a number that marks them in numeric
        columns.

    add_indicator : bool, default=False
        Whether to append a :class:`~sklearn.impute.MissingIndicator` of the
        features that had gaps in ``fit``.

    keep_empty_features : bool, default=False
        Whether columns with no observed value in ``fit`` are kept in the
        output, filled with 0, rather than dropped with a warning. A
        DataFrame's column keeps its dtype: 0 in numeric, boolean and
        ``object`` columns (as in :class:`~sklearn.impute.SimpleImputer`),
        and other columns (strings, categories) are left as they are.

    sample_posterior : bool, default=False
        Draw each row's imputations from the model's posterior predictive
        (a code resampled by its importance weight, then values from the
        likelihood) instead of taking their expected value: different
        ``random_state`` values then give different, equally plausible
        completions.

    n_train_samples : int, default=10
        Draws of the code per row in the training bound (K of MIWAE).

    n_impute_samples : int, default=1000
        Draws of the code per row at imputation (L of MIWAE).

    n_neighbors : "auto", int or None, default="auto"
        Donors of a look-up step: a gap's fill moves towards the mean of its
        column in the ``k`` training rows nearest to its row (both completed
        by the model), by a weight chosen per column on the fit data (entries
        hidden on purpose), 0 where the model alone does best. "auto" chooses
        ``k`` per column too (among 1, 3, 5, 10, 20, 40); an int fixes it.
        The same choice may blend in, for numeric columns, a linear read-out
        (a ridge regression on the row's other entries, fitted on the
        training rows as the model completes them). 0 or None switches
        donors and the read-out off: the fills are the model's alone. See
        the user guide.

    {parameters}

    Attributes
    ----------
    indicator_ : MissingIndicator or None
        The indicator of the features with gaps, when ``add_indicator``.

    net_ : skorch.NeuralNet
        The trained skorch net; its ``module_`` is the PyTorch model.

    history_ : skorch.History
        Per-epoch records of training.

    likelihoods_ : dict
        The likelihood of each input column (``"empty"`` for a column with no
        observed value).

    n_neighbors_ : ndarray of shape (`n_features_in_`,)
        The number of donors of each column (0 where the model fills alone).

    donor_weights_ : ndarray of shape (`n_features_in_`,)
        The weight of the donors' mean in each column's fills, in [0, 1].

    linear_weights_ : ndarray of shape (`n_features_in_`,)
        The weight of the linear read-out in each numeric column's fills, in
        [0, 1] (at most ``1 - donor_weights_``; 0 for categorical columns).

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when ``X`` has
        feature names that are all strings.

    n_iter_ : int
        Number of epochs run.

    loss_curve_ : list of float
        Training loss (negative importance-weighted bound, nats per row)
        after each epoch.

    validation_scores_ : list of float or None
        Minus the held-out loss after each epoch; None
        without early stopping.

    best_epoch_ : int
        Epoch (counted from 1) whose weights the model holds.

    See Also
    --------
    sklearn.impute.IterativeImputer : Imputation by chained regressions.
    sklearn.impute.KNNImputer : Imputation from the nearest rows.
    VAETransformer : The same model as a transformer.

    References
    ----------
    P.-A. Mattei and J. Frellsen, "MIWAE: Deep Generative Modelling and
    Imputation of Incomplete Data Sets", ICML 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEImputer
    >>> X = [[1.0, 2.0, np.nan], [3.0, 4.0, 3.0], [np.nan, 6.0, 5.0], [8.0, 8.0, 7.0]]
    >>> imputer = VAEImputer(max_epochs=5, random_state=0)
    >>> imputer.fit_transform(X).shape
    (4, 3)
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "missing_values": [Real],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
        "n_train_samples": [Interval(Integral, 1, None, closed="left")],
        "n_impute_samples": [Interval(Integral, 1, None, closed="left")],
        "n_neighbors": [
            StrOptions({"auto"}),
            Interval(Integral, 0, None, closed="left"),
            None,
        ],
    }
    _shared_parameters = tuple(
        name
        for name in _BaseVAE._shared_parameters
        if name not in ("missing_values", "n_score_samples")
    )
    # Chosen on benchmarks/bench_imputation.py (see the user guide):
    # standardised numeric columns, each entry with its own predicted noise
    # scale, a decoder with a linear path next to its MLP, an encoder that sees
    # the observation mask, and a learning rate annealed to 0 over max_epochs.
    _numeric_transform = "standardize"
    _numeric_likelihood = "gaussian_heteroscedastic"
    _linear_path = True
    _mask_input = True
    _lr_schedule = "cosine"
    _small_data_epochs = 400
    _small_data_batch_size = 64
    # The ONNX graph of skvae.to_onnx: transform, the filled matrix.
    _onnx_graph = "imputer"
    _allow_empty = True
    _saved_attributes = (
        *_BaseVAE._saved_attributes,
        "_indicator_features",
        "_donor_choice",
        "_donor_keys",
        "_donor_values",
        "_donor_readout",
    )

    def __init__(
        self,
        *,
        missing_values=np.nan,
        add_indicator=False,
        keep_empty_features=False,
        sample_posterior=False,
        n_train_samples=10,
        n_impute_samples=1000,
        n_neighbors="auto",
        n_components=10,
        hidden_layer_sizes=(64, 64),
        activation="elu",
        likelihood="auto",
        module=None,
        beta=1.0,
        kl_warmup_epochs=0,
        max_epochs="auto",
        batch_size="auto",
        learning_rate=3e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=400,
        tol=1e-4,
        device="cpu",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.missing_values = missing_values
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sample_posterior = sample_posterior
        self.n_train_samples = n_train_samples
        self.n_impute_samples = n_impute_samples
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
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
        self.device = device
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _train_draws(self):
        return self.n_train_samples

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distribution of ``X`` from its observed entries.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data with gaps.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if sp.issparse(X):
            raise TypeError("VAEImputer does not take sparse input; pass dense data.")
        self._fit(X)
        X = self._check_input(X, reset=False)
        self._indicator_features = None
        if self.add_indicator:
            missing = self._missing_mask(X)
            self._indicator_features = np.flatnonzero(missing.any(axis=0)).tolist()
        self._fit_donors(X)
        self._after_load()
        return self

    def _fit_donors(self, X):
        """Keep training rows as donors and choose, per column, how many of
        them fill a gap and with what weight (``_donors.fit_donors``)."""
        self._donor_choice = self._donor_keys = self._donor_values = None
        self._donor_readout = None
        if not self.n_neighbors:
            return
        rng = np.random.default_rng(self._score_seed)
        pool = pool_rows(X.shape[0], rng)
        rows = X.iloc[pool] if isinstance(X, pd.DataFrame) else X[pool]
        encoded = np.asarray(self._schema.encode(rows), dtype=np.float64)
        grid = NEIGHBOURS if self.n_neighbors == "auto" else (self.n_neighbors,)
        choice, keys, readout = fit_donors(
            encoded,
            self._completed,
            self._schema.feature_columns(),
            len(self._schema.columns),
            self._schema.numeric_columns(),
            grid,
            rng,
        )
        if choice.weight.any() or choice.linear.any():
            # Plain lists, as save() stores them.
            self._donor_choice = [
                choice.n_neighbors.tolist(),
                choice.weight.tolist(),
                choice.linear.tolist(),
            ]
            self._donor_keys = keys.astype(np.float32).tolist()
            self._donor_values = encoded.astype(np.float32).tolist()
            if readout is not None:
                self._donor_readout = [part.tolist() for part in readout]

    def _completed(self, encoded):
        """Encoded rows (NaN in gaps) with their gaps filled by the model."""
        rows = InMemoryDataset(as_rows(encoded.astype(np.float32)), missing=True)
        n_draws = min(self.n_impute_samples, CHOICE_DRAWS)
        fills = self._importance_sampled(posterior_mean, rows, n_draws)
        return np.where(np.isnan(encoded), fills.numpy(), encoded)

    @property
    def _score_draws(self):
        """None: the imputer has no ``score_samples``."""
        return None

    def _fitted_state(self):
        state = super()._fitted_state()
        # The features of the missing indicator (None without one).
        indicator = self.indicator_
        state["indicator_features"] = None if indicator is None else indicator.features_
        # The donors of the fills (None when the model alone fills).
        state["donors"] = self._donor_pool
        return state

    def _after_load(self):
        """Build ``indicator_`` from the features that had gaps in ``fit``,
        and the donors (none in files saved before they existed)."""
        if getattr(self, "_donor_choice", None) is None:
            self._donor_choice = self._donor_keys = self._donor_values = None
        # Files saved before the linear read-out have none.
        self._donor_readout = getattr(self, "_donor_readout", None)
        self.n_neighbors_, self.donor_weights_, self.linear_weights_, pool = make_pool(
            self._donor_choice,
            self._donor_keys,
            self._donor_values,
            self._donor_readout,
            [column.width for column in self._schema.columns],
        )
        self._donor_pool = pool
        self.indicator_ = None
        if self._indicator_features is not None:
            gaps = np.zeros((1, self.n_features_in_), dtype=bool)
            gaps[0, self._indicator_features] = True
            self.indicator_ = MissingIndicator(error_on_new=False).fit(
                self._as_gaps(gaps)
            )

    def transform(self, X):
        """Fill the missing entries of ``X``; observed entries stay as they are.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data with gaps.

        Returns
        -------
        X_imputed : ndarray or DataFrame of shape (n_samples, n_features_out)
            ``X`` with its gaps filled (columns empty in ``fit`` dropped, or
            filled with 0 when ``keep_empty_features``), followed by the
            missing indicator when ``add_indicator``. A DataFrame with the
            columns and dtypes of ``X`` when ``X`` is one, else an array in
            its dtype (its float dtype, or ``object`` for an array of
            strings).
        """
        check_is_fitted(self)
        if sp.issparse(X):
            raise TypeError("VAEImputer does not take sparse input; pass dense data.")
        array_in = not isinstance(X, pd.DataFrame)
        dtypes = None if array_in else X.dtypes
        X, dataset = self._inference_data(X)
        missing = self._missing_mask(X)
        filled = self._fill(X, missing, self._fills(dataset), dtypes)
        if array_in and isinstance(filled, pd.DataFrame):
            # An array with categorical columns is checked and filled as a
            # table of its columns; it comes back as an array, in X's dtype.
            filled = filled.to_numpy()
        keep = self._schema.kept(self.keep_empty_features)
        if not all(keep):
            self._warn_skipped(keep)
        if isinstance(filled, pd.DataFrame):
            filled = filled.loc[:, keep]
        else:
            filled = filled[:, keep]
        if self.indicator_ is None:
            return filled
        indicator = self.indicator_.transform(self._as_gaps(missing))
        if isinstance(filled, pd.DataFrame):
            names = self.indicator_.get_feature_names_out(self._names())
            flags = pd.DataFrame(indicator, columns=names, index=filled.index)
            return pd.concat([filled, flags], axis=1)
        return np.hstack([filled, indicator.astype(filled.dtype)])

    def _fills(self, dataset):
        """Encoded values for every entry: posterior means, or a draw, with
        the donors' values blended in or drawn (``_donors``)."""
        pool, n_draws = self._donor_pool, self.n_impute_samples
        if not self.sample_posterior:
            fills = self._importance_sampled(completed_mean, dataset, n_draws)
            fills = fills if pool is None else blend_rows(fills, fills, pool)
            return self._schema.decode(to_numpy(fills, np.float64))
        # On the net's device, where the draws are made.
        generator = seeded_generator(draw_seed(self._rng), self.net_.device)
        fills = self._importance_sampled(
            completed_draw, dataset, n_draws, generator=generator
        )
        if pool is not None:
            picks = seeded_generator(draw_seed(self._rng), "cpu")
            columns = torch.as_tensor(self._schema.feature_columns())
            fills = draw_donors(fills, fills, pool, columns, picks)
        return self._schema.decode(to_numpy(fills, np.float64))

    def _fill(self, X, missing, decoded, dtypes=None):
        """``X`` with its missing entries taken from ``decoded``; a DataFrame
        in ``dtypes``, those of the input before its gaps were marked (by
        default X's own)."""
        if isinstance(X, pd.DataFrame):
            dtypes = X.dtypes if dtypes is None else dtypes
            # Decoded as an array when fit saw one (with categorical columns).
            decoded = pd.DataFrame(decoded)
            out = X.copy()
            for i, column in enumerate(self._schema.columns):
                gaps = missing[:, i]
                if gaps.any() and column.width:
                    values = fill_series(X.iloc[:, i], decoded.iloc[:, i], gaps)
                    out.isetitem(i, values.astype(dtypes.iloc[i]))
                elif not column.width and self.keep_empty_features:
                    out.isetitem(i, empty_column(X.iloc[:, i], dtypes.iloc[i]))
            return out
        out = np.array(X, dtype=X.dtype, copy=True)
        decoded = np.asarray(decoded, dtype=np.float64)
        empty = np.array([not c.width for c in self._schema.columns])
        out[missing] = decoded[missing].astype(out.dtype)
        out[:, empty] = 0
        return out

    def _warn_skipped(self, keep):
        """Warn, as SimpleImputer does, of the columns left out of the output."""
        empty = np.flatnonzero(np.logical_not(keep))
        if hasattr(self, "feature_names_in_"):
            empty = self.feature_names_in_[empty]
        warnings.warn(
            f"Skipping features without any observed values: {empty.tolist()}. At "
            "least one observed value in fit is needed to impute a feature; set "
            "keep_empty_features=True to keep such features (filled with 0)."
        )

    def _missing_mask(self, X):
        if isinstance(X, pd.DataFrame):
            return X.isna().to_numpy()
        return np.isnan(X)

    def _as_gaps(self, missing):
        """NaN where ``missing``, 0 elsewhere, with the input's column names."""
        gaps = np.where(missing, np.nan, 0.0)
        if hasattr(self, "feature_names_in_"):
            return pd.DataFrame(gaps, columns=self.feature_names_in_)
        return gaps

    def _names(self):
        return _check_feature_names_in(self, None)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_``, or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        names = names[self._schema.kept(self.keep_empty_features)]
        if self.indicator_ is None:
            return names
        indicator = self.indicator_.get_feature_names_out(
            _check_feature_names_in(self, input_features)
        )
        return np.concatenate([names, indicator])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
