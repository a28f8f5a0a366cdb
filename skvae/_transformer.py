"""``VAETransformer``: the variational autoencoder as a scikit-learn transformer."""

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseVAE
from ._docstrings import fill_doc
from ._missingness import missing_rates
from ._utils import to_numpy, to_tensor


@fill_doc(
    n_components=2,
    hidden_layer_sizes="(256,)",
    activation="relu",
    numeric_transform="normal scores (a monotone map that makes each column's "
    "marginal close to N(0, 1))",
    max_epochs=100,
    batch_size=128,
    learning_rate=1e-3,
    weight_decay=0.0,
    n_iter_no_change=20,
    n_score_samples=10,
)
class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE):
    """Variational autoencoder as a scikit-learn transformer.

    An encoder network maps each sample to a Gaussian posterior over
    ``n_components`` latent variables and a decoder maps latent codes back to
    the parameters of a likelihood over the data. Both are trained together
    by maximising the evidence lower bound (ELBO) with minibatch gradient
    descent, through skorch on PyTorch.

    ``transform`` returns the posterior mean, ``inverse_transform`` the
    decoder's mean, ``sample`` draws new data, and ``score`` estimates the
    average log-likelihood of held-out data, so that model selection tools
    such as :class:`~sklearn.model_selection.GridSearchCV` can choose the
    latent size without labels.

    X may be an array, a sparse matrix, a memory-mapped file or a pandas
    DataFrame with numeric and categorical columns and gaps: fitted on a
    DataFrame, ``sample`` and ``inverse_transform`` return DataFrames with
    the same columns and dtypes.

    The defaults on data in [0, 1] are the classic MNIST model: one hidden
    layer of 256 ReLU units on each side, a 2-d latent space, a Bernoulli
    likelihood (binary cross-entropy summed over features) and Adam.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net; its ``module_`` is the PyTorch model.

    history_ : skorch.History
        Per-epoch records of training: losses, their reconstruction and KL
        terms, and durations.

    likelihoods_ : dict
        The likelihood of each input column (keyed by column name, or by
        position for arrays), as ``likelihood`` resolved at ``fit``.

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
        Minus the held-out loss after each epoch (nats per sample, higher is
        better): the held-out ELBO, with the KL term weighted by ``beta``. None
        without early stopping.

    best_epoch_ : int
        Epoch (counted from 1) whose weights the model holds.

    missing_rates_ : dict
        The share of missing entries of each column in the training data
        (keyed as ``likelihoods_``; of the last chunk after ``partial_fit``),
        which ``sample`` reproduces. For each column with gaps, ``fit`` also
        learns a logistic regression of its missingness on the code of each
        row (drawn from q(z | x)), with the intercept set so that codes drawn
        from the prior give that share; ``sample`` draws each row's gaps from
        the code that made the row, so gaps keep their dependence on the
        other columns. Estimated from up to 50,000 rows drawn at random.

    See Also
    --------
    VAEImputer : Fills missing values with the same model.
    VAEOutlierDetector : Flags rows of low likelihood.
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.

    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted
    Autoencoders", ICLR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> vae = VAETransformer(n_components=2, max_epochs=2, random_state=0)
    >>> X_new = vae.fit_transform(X)
    >>> X_new.shape
    (1797, 2)
    >>> vae.likelihoods_[0]
    'bernoulli'
    >>> vae.inverse_transform(X_new).shape
    (1797, 64)
    >>> vae.sample(5, random_state=0).shape
    (5, 64)
    >>> vae.sample(3, given={0: 0.0}, random_state=0)[:, 0]
    array([0., 0., 0.])
    """

    # The ONNX graph of skvae.to_onnx: transform (and score_samples).
    _onnx_graph = "transformer"
    # sample draws gaps where the training data had them.
    _learns_gaps = True
    _saved_attributes = (*_BaseVAE._saved_attributes, "_gap_model")
    # No gaps in samples until fit learns them (and in models saved before).
    _gap_model = None

    def __init__(
        self,
        n_components=2,
        *,
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
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Training data. Sparse matrices are densified one batch at a time,
            and memory-mapped arrays (``np.load(path, mmap_mode="r")``) are
            read one batch at a time.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one more epoch on ``X``, starting from the current model.

        The first call initialises the model (and learns the columns of X);
        later calls continue from it, so a stream of chunks can be learned one
        chunk at a time.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            A chunk of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._partial_fit(X)

    def transform(self, X, return_std=False):
        """Encode ``X`` as the mean of the approximate posterior q(z | x).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Data to encode.

        return_std : bool, default=False
            Also return the posterior standard deviation of each latent
            dimension: how uncertain the encoder is about each code.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Latent codes, in the float dtype of ``X``.

        X_std : ndarray of shape (n_samples, n_components)
            Posterior standard deviations. Only returned when
            ``return_std=True``.
        """
        X, z_mean, z_logvar = self._encode(X)
        dtype = self._out_dtype(X)
        if return_std:
            return to_numpy(z_mean, dtype), to_numpy(torch.exp(0.5 * z_logvar), dtype)
        return to_numpy(z_mean, dtype)

    def inverse_transform(self, X):
        """Decode latent codes to the mean of the likelihood in data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, for example the output of ``transform``.

        Returns
        -------
        X_original : ndarray or DataFrame of shape (n_samples, `n_features_in_`)
            Reconstructed data. For a column modelled as given, the
            likelihood's mean (for ``"bernoulli"``, probabilities in [0, 1]);
            for a transformed numeric column, the mean on the internal scale
            mapped back to the column's units (within the range seen in
            ``fit``); for a categorical column, the most probable category.
            A DataFrame with the training columns and dtypes when ``fit`` saw
            one, else an array in the float dtype of the input.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"n_components={self.n_components} latent dimensions."
            )
        X_mean = self.net_.decode_mean(to_tensor(Z), self._inference_rows)
        return self._decode(X_mean, Z.dtype)

    def sample(
        self,
        n_samples=1,
        random_state=None,
        *,
        given=None,
        missing=True,
        return_mean=False,
    ):
        """Generate new data: z from the prior N(0, I), then x from p(x | z).

        With ``given``, the rows are drawn from the model's conditional
        distribution of the other columns given those: the given columns are
        observed and the rest missing, 20 codes are proposed per row (half
        from the encoder, half from the prior), one is picked with
        probability proportional to its importance weight p(x_given | z)
        p(z) / (proposal density of z) (sampling-importance-resampling), and
        the row is drawn from p(x | z). The number of draws is fixed, not a
        parameter: 20 keep the picked code close to p(z | x_given) at the
        cost of 20 decoder passes per row (see :ref:`conditional_sampling`).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate. With a DataFrame or array
            ``given``, leave it at 1 or pass the number of its rows.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None draws fresh randomness from NumPy's global
            generator. The same seed gives the same rows.

        given : dict, DataFrame, array-like or None, default=None
            Columns to condition on. A dict ``{column: value}`` gives every
            row the same values; a DataFrame of some columns (or an array of
            all columns, NaN where not given) gives one row per sample, and
            its number of rows sets the number of samples. Columns are named
            as in ``fit`` (by position for arrays). A gap (NaN, None) in a
            condition leaves that column to be drawn in that row. Given
            columns come back exactly as given; a category that ``fit`` did
            not see or a number outside the range seen in ``fit`` is a
            ``ValueError``.

        missing : bool, default=True
            Put gaps in the samples as the training data had them: each
            column with gaps in ``fit`` is missing with a probability that
            depends on the row's code (see ``missing_rates_``). False gives
            rows without gaps. Given entries are never missing, and rows of
            ``return_mean=True`` have no gaps.

        return_mean : bool, default=False
            Return the likelihood's mean for each drawn z (a smooth "typical"
            sample, as ``inverse_transform`` gives) instead of a draw from it.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, `n_features_in_`)
            Generated samples (for ``"bernoulli"``, values in {0, 1}; with
            ``return_mean=True``, probabilities). A DataFrame with the
            training columns and dtypes when ``fit`` saw one (categories drawn
            from their probabilities, integer columns among the values seen in
            ``fit`` (rounded within their range beyond 1,000 values), float
            columns whose values in ``fit`` had at most 6 decimals rounded to
            as many), else an array in the float dtype of the training data.
            Gaps are NaN, or ``missing_values`` in numeric columns when it is
            a number.
        """
        return self._sample(n_samples, random_state, return_mean, given, missing)

    @property
    def missing_rates_(self):
        """The share of missing entries of each column in ``fit``."""
        check_is_fitted(self)
        return missing_rates(getattr(self, "_gap_model", None), self._schema)

    def score_samples(self, X):
        """Estimate the log-likelihood log p(x) of each sample.

        The estimate is the importance-weighted bound with ``n_score_samples``
        draws from q(z | x) (the ELBO when ``n_score_samples=1``), a lower
        bound of log p(x) that tightens as the draws grow. The draws are keyed
        by each row's values and a seed drawn at ``fit``, so repeated calls
        agree. Missing entries are left out (the score is that of the observed
        ones); transformed numeric columns add the log-slope of their
        transform, so scores are densities in the columns' own units.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Data to score.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log p(x) in nats, in the float dtype of ``X``.
        """
        return self._log_likelihood(X)

    def score(self, X, y=None):
        """Average estimated log-likelihood of ``X``: higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, \
n_features)
            Data to score.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of ``score_samples(X)``, in nats per sample.
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    @property
    def _n_features_out(self):
        """Number of output features, used by ``get_feature_names_out``."""
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
