"""``VAETransformer``: the scikit-learn face of the variational autoencoder."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import ProgressBar

from ._data import (
    BatchIterator,
    HoldoutSplit,
    InMemoryDataset,
    as_rows,
    file_chunks,
    is_file_backed,
)
from ._likelihoods import _LIKELIHOODS
from ._modules import _ACTIVATIONS, VAEModule
from ._persistence import load_model, save_model
from ._training import StopWhenConverged, _VAENet
from ._utils import (
    draw_seed,
    forked_rng,
    process_group,
    resolve_device,
    seed_torch,
    shared_seed,
    supports_fused,
    to_numpy,
    to_tensor,
)

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}

# Rows per forward pass at inference time: large batches amortise the Python
# overhead; the cap on rows x features (64 MiB of float32) bounds the memory
# of a densified sparse batch and of the decoder's output.
_INFERENCE_ROWS = 4096
_INFERENCE_ENTRIES = 2**24

# Largest magnitude accepted in X: its square still fits in float32.
_LARGEST_VALUE = float(np.sqrt(np.finfo(np.float32).max))


def _check_hidden_layer_sizes(hidden_layer_sizes):
    """Return ``hidden_layer_sizes`` as a non-empty tuple of positive ints."""
    sizes = hidden_layer_sizes
    if isinstance(sizes, Integral):
        sizes = (sizes,)
    sizes = tuple(sizes)
    if not sizes or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a positive int or a non-empty sequence of "
            f"positive ints, got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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

    The defaults are the classic MNIST model: one hidden layer of 256 ReLU
    units on each side, a 2-d latent space, a Bernoulli likelihood (binary
    cross-entropy summed over features) and Adam.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space, the number of output features of
        ``transform``.

    hidden_layer_sizes : int or tuple of int, default=(256,)
        Widths of the encoder's hidden layers, from the input side; the
        decoder mirrors them.

    activation : {"relu", "tanh", "logistic", "elu", "gelu", "silu", \
            "leaky_relu"}, default="relu"
        Activation of the hidden layers.

    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian", \
            "negative_binomial", "poisson"}, default="bernoulli"
        Observation model p(x | z); ``fit`` checks that X lies in its support.

        - ``"bernoulli"``: data in [0, 1], binary or grey levels (binary
          cross-entropy, not a normalised density for grey levels).
        - ``"continuous_bernoulli"``: grey levels in [0, 1], with the
          normalised continuous Bernoulli density (Loaiza-Ganem and
          Cunningham, 2019); ``inverse_transform`` returns its mean.
        - ``"gaussian"``: real-valued data, with a learned standard deviation
          per feature.
        - ``"poisson"``: counts (non-negative integers); the decoder outputs
          log-rates.
        - ``"negative_binomial"``: overdispersed counts, with a learned
          inverse dispersion ``theta`` per feature (variance
          ``mean + mean**2 / theta``).

    missing_values : None or np.nan, default=None
        None rejects NaN in X. ``np.nan`` treats NaN entries as missing: they
        are left out of the reconstruction term in training and in
        ``score_samples``, the encoder sees them as zeros, and
        ``inverse_transform(transform(X))`` fills them, so the model doubles as
        an imputer.

    module : type or None, default=None
        The PyTorch model class. None uses ``VAEModule``: MLP encoder and
        decoder built from ``hidden_layer_sizes`` and ``activation``. To plug
        in other networks (for example convolutional ones for images),
        subclass ``VAEModule`` and replace its ``encoder`` (``x -> (mean,
        log_var)``, each of shape ``(batch, n_components)``) and ``decoder``
        (``z -> params`` of shape ``(batch, n_features *
        likelihood.n_params_per_feature)``); the class is built with the same
        keyword arguments as ``VAEModule``. See the gallery example on custom
        networks.

    beta : float, default=1.0
        Weight of the KL term in the loss (``beta > 1`` gives a beta-VAE).

    kl_warmup_epochs : int, default=0
        Number of epochs over which the KL weight grows linearly from 0 to
        ``beta``. 0 disables the warm-up.

    max_epochs : int, default=200
        Maximum number of passes over the training data. Training stops
        earlier once the loss has converged (see ``tol``).

    batch_size : int, default=128
        Number of samples per gradient step.

    learning_rate : float, default=1e-3
        Step size of the optimizer.

    optimizer : {"adam", "adamw", "rmsprop", "sgd"}, default="adam"
        Optimizer, with PyTorch's default settings apart from
        ``learning_rate`` and ``weight_decay``.

    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``).

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data and
        monitor its loss instead of the training loss to decide when to stop.
        The weights of the best epoch on the held-out data are kept.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Training stops when the monitored loss (training loss, or held-out loss
        with ``early_stopping=True``) has not improved by at least ``tol`` for
        this many consecutive epochs. Without early stopping, epochs of the KL
        warm-up do not count: the training loss rises by design while the KL
        weight grows.

    tol : float, default=1e-4
        Smallest decrease of the monitored loss, in nats per sample, that
        counts as an improvement.

    n_score_samples : int, default=10
        Number of importance samples per data point in ``score_samples``
        and ``score``. 1 gives the ELBO; more give a tighter bound.

    device : str, default="cpu"
        Where to train and infer: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"auto"`` (a GPU when there is one). Outputs are always NumPy arrays
        on the host.

    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (for example a learning-rate scheduler),
        added after the built-in ones.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the training noise. Pass an
        int for reproducible results: the same seed on the same machine and
        device gives the same model.

    verbose : int, default=0
        0 is silent; 1 or more shows a progress bar during each epoch and
        prints the losses (and their reconstruction and KL terms) after it.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net; its ``module_`` is the PyTorch model.

    history_ : skorch.History
        Per-epoch records of training: losses, their reconstruction and KL
        terms, and durations.

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
        when ``early_stopping=False``.

    best_epoch_ : int
        Epoch (counted from 1) whose weights the model holds.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model.
    sklearn.neural_network.BernoulliRBM : Another neural latent model.

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
    >>> vae.inverse_transform(X_new).shape
    (1797, 64)
    >>> vae.sample(5, random_state=0).shape
    (5, 64)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "likelihood": [StrOptions(set(_LIKELIHOODS))],
        "missing_values": [None, Real],
        "module": [type, None],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_score_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256,),
        activation="relu",
        likelihood="bernoulli",
        missing_values=None,
        module=None,
        beta=1.0,
        kl_warmup_epochs=0,
        max_epochs=200,
        batch_size=128,
        learning_rate=1e-3,
        optimizer="adam",
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
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

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. With ``likelihood="bernoulli"`` all values must lie
            in [0, 1]. Sparse matrices are densified one batch at a time, and
            memory-mapped arrays (``np.load(path, mmap_mode="r")``) are read
            one batch at a time.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit(X, epochs=self.max_epochs, reset=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one more epoch on ``X``, starting from the current model.

        The first call initialises the model; later calls continue from it, so
        a stream of chunks can be learned one chunk at a time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no "
                "fixed held-out set across chunks. Use fit, or early_stopping=False."
            )
        return self._fit(X, epochs=1, reset=not hasattr(self, "net_"))

    def _fit(self, X, epochs, reset):
        if not reset:
            return self._train(self.net_, X, epochs, reset=False)
        try:
            return self._train(None, X, epochs, reset=True)
        except BaseException:
            # A fit that fails leaves the estimator unfitted rather than
            # mixing the previous model with the new data's attributes.
            for name in [k for k in vars(self) if k.endswith("_")]:
                delattr(self, name)
            raise

    def _train(self, net, X, epochs, reset):
        if not reset:
            # After unpickling a GPU model on a machine without one, skorch
            # moved the net to the CPU: keep training where the net is.
            self._device = str(net.device)
        if self._missing and not np.isnan(self.missing_values):
            raise ValueError(
                "missing_values must be None or np.nan, got "
                f"{self.missing_values!r}. Replace other markers by np.nan first."
            )
        hidden_layer_sizes = _check_hidden_layer_sizes(self.hidden_layer_sizes)
        X = self._validate_X(X, reset=reset)
        rank, world_size = process_group()
        if reset:
            self._device = resolve_device(self.device)
            self._rng = check_random_state(self.random_state)
            if world_size > 1:
                # Data-parallel training: every process starts from the same
                # seed, hence the same initial weights and validation split.
                seed = shared_seed(draw_seed(self._rng), self._device)
                self._rng = np.random.RandomState(seed)
            self._score_seed = draw_seed(self._rng)
            self._dtype = X.dtype
            net = self._build_net(X.shape[1], hidden_layer_sizes)
        dataset = self._dataset(X, self._device)
        seed = draw_seed(self._rng)
        with forked_rng(seed, self._device):
            if reset:
                net.initialize()
            if world_size > 1:
                # One shuffling order for all processes, each taking its share,
                # and training noise of its own.
                dataset.generator = torch.Generator().manual_seed(seed)
                seed_torch(seed + 1 + rank, self._device)
            net.partial_fit(dataset, epochs=epochs)
        self._store_fit_results(net)
        return self

    def _validate_X(self, X, reset, check_range=True, check_support=True):
        """Validated X (dense or CSR/CSC), NaN allowed only for missing values.

        Training checks the range of X; inference checks its results instead,
        which saves passes over X (see ``_finite``).
        """
        if is_file_backed(X):
            return self._validate_file_backed(X, reset, check_range, check_support)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if self._missing else True,
            reset=reset,
        )
        self._check_values(X.data if sp.issparse(X) else X, check_range, check_support)
        return X

    def _validate_file_backed(self, X, reset, check_range, check_support):
        """Check a memory-mapped array block by block, never all in memory."""
        finite = "allow-nan" if self._missing else True
        validate_data(self, X[:1], ensure_all_finite=finite, reset=reset)
        for chunk in file_chunks(X):
            check_array(chunk, dtype=None, ensure_all_finite=finite)
            self._check_values(chunk, check_range, check_support)
        return X

    def _check_values(self, values, check_range, check_support):
        """Range and likelihood support of the values of X."""
        if self._missing:
            values = values[~np.isnan(values)]
        if values.size == 0:
            return
        largest = max(float(values.max()), -float(values.min())) if check_range else 0
        if largest > _LARGEST_VALUE:
            raise ValueError(
                f"X contains values as large as {largest:.3g}; the model computes "
                "in float32, where squares of such values overflow. Scale X first, "
                "for example with sklearn.preprocessing.StandardScaler."
            )
        if check_support:
            _LIKELIHOODS[self.likelihood].check_support(values)

    @staticmethod
    def _finite(tensor, what):
        """``tensor``, after checking that extreme input did not overflow it."""
        if not torch.isfinite(tensor).all():
            raise ValueError(
                f"{what} overflowed float32: X has values far outside the range "
                "seen in fit. Scale X as the training data was scaled."
            )
        return tensor

    @property
    def _missing(self):
        """Whether NaN entries of X mark missing values."""
        return self.missing_values is not None

    @property
    def _inference_rows(self):
        return max(1, min(_INFERENCE_ROWS, _INFERENCE_ENTRIES // self.n_features_in_))

    def _dataset(self, X, device="cpu"):
        return InMemoryDataset(as_rows(X, device), missing=self._missing)

    def _build_net(self, n_features, hidden_layer_sizes):
        # As in MLPClassifier: stop once the monitored loss has not improved by
        # tol for n_iter_no_change epochs; the held-out loss with early_stopping
        # (keeping the best weights), the training loss otherwise.
        train_split = None
        if self.early_stopping:
            train_split = HoldoutSplit(self.validation_fraction, draw_seed(self._rng))
        stopper = StopWhenConverged(
            monitor="valid_loss" if self.early_stopping else "train_loss",
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            load_best=self.early_stopping,
            sink=print if self.verbose else _silent,
            skip_epochs=0 if self.early_stopping else self.kl_warmup_epochs,
        )
        callbacks = [("stop_when_converged", stopper)]
        if self.verbose:
            # A bar per epoch with the running batch loss; PrintLog adds the
            # table row (losses, KL and reconstruction terms, time) at its end.
            callbacks.append(("progress_bar", ProgressBar(batches_per_epoch="auto")))
        callbacks += list(self.callbacks or [])
        return _VAENet(
            self._module_class(),
            module__n_features=n_features,
            module__n_components=self.n_components,
            module__hidden_layer_sizes=hidden_layer_sizes,
            module__activation=self.activation,
            module__likelihood=_LIKELIHOODS[self.likelihood],
            criterion__beta=self.beta,
            kl_warmup_epochs=self.kl_warmup_epochs,
            optimizer=_OPTIMIZERS[self.optimizer],
            lr=self.learning_rate,
            optimizer__weight_decay=self.weight_decay,
            **self._fused_optimizer(),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=BatchIterator,
            train_split=train_split,
            callbacks=callbacks,
            device=self._device,
            verbose=self.verbose,
        )

    def _fused_optimizer(self):
        """``optimizer__fused=True`` where this PyTorch and device support it."""
        if supports_fused(_OPTIMIZERS[self.optimizer], self._device):
            return {"optimizer__fused": True}
        return {}

    def _module_class(self):
        if self.module is None:
            return VAEModule
        if not issubclass(self.module, torch.nn.Module):
            raise ValueError(
                f"module must be a torch.nn.Module subclass (for example a "
                f"subclass of skvae.VAEModule), got {self.module!r}."
            )
        return self.module

    def _store_fit_results(self, net):
        history = net.history
        self.net_ = net
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        if self.early_stopping:
            valid_loss = history[:, "valid_loss"]
            self.validation_scores_ = [-loss for loss in valid_loss]
            self.best_epoch_ = int(
                dict(net.callbacks_)["stop_when_converged"].best_epoch_
            )
        else:
            self.validation_scores_ = None
            self.best_epoch_ = self.n_iter_

    # ------------------------------------------------------------ inference
    def transform(self, X, return_std=False):
        """Encode ``X`` as the mean of the approximate posterior q(z | x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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
        check_is_fitted(self)
        X = self._validate_X(X, reset=False, check_range=False, check_support=False)
        z_mean, z_logvar = self.net_.encode(self._dataset(X), self._inference_rows)
        z_mean = self._finite(z_mean, "transform")
        if return_std:
            return to_numpy(z_mean, X.dtype), to_numpy(
                torch.exp(0.5 * z_logvar), X.dtype
            )
        return to_numpy(z_mean, X.dtype)

    def inverse_transform(self, X):
        """Decode latent codes to the mean of the likelihood in data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, for example the output of ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            Reconstructed data (for ``"bernoulli"``, probabilities in [0, 1]),
            in the float dtype of the input.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"n_components={self.n_components} latent dimensions."
            )
        X_mean = self.net_.decode_mean(to_tensor(Z), self._inference_rows)
        return to_numpy(X_mean, Z.dtype)

    def sample(self, n_samples=1, random_state=None, *, return_mean=False):
        """Generate new data: z from the prior N(0, I), then x from p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None draws fresh randomness from NumPy's global
            generator.

        return_mean : bool, default=False
            Return the likelihood's mean for each drawn z (a smooth "typical"
            sample, as ``inverse_transform`` gives) instead of a draw from it.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples (for ``"bernoulli"``, values in {0, 1}; with
            ``return_mean=True``, probabilities), in the float dtype of the
            training data.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        seed = draw_seed(check_random_state(random_state))
        X = self.net_.sample(
            int(n_samples),
            self.n_components,
            seed,
            self._inference_rows,
            return_mean=return_mean,
        )
        return to_numpy(X, self._dtype)

    def score_samples(self, X):
        """Estimate the log-likelihood log p(x) of each sample.

        The estimate is the importance-weighted bound with ``n_score_samples``
        draws from q(z | x) (the ELBO when ``n_score_samples=1``), a lower
        bound of log p(x) that tightens as the draws grow. The draws come from
        a generator seeded at ``fit``, so repeated calls agree.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log p(x) in nats, in the float dtype of ``X``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False, check_range=False)
        log_px = self.net_.log_marginal_likelihood(
            self._dataset(X),
            self.n_components,
            self.n_score_samples,
            self._score_seed,
            self._inference_rows,
        )
        return to_numpy(self._finite(log_px, "score_samples"), X.dtype)

    def score(self, X, y=None):
        """Average estimated log-likelihood of ``X``: higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of ``score_samples(X)``, in nats per sample.
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    # ---------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted model to one file, without pickle.

        The weights and optimizer state are stored with safetensors; the
        parameters, fitted attributes, feature names, training history and
        library versions as JSON in the file's header, with a SHA-256 digest
        of it all. The file is written to a temporary name first and then
        renamed, so an existing file at ``path`` is never left half-written.

        Parameters
        ----------
        path : str or path-like
            Destination, conventionally ending in ``.safetensors``.

        Returns
        -------
        self : object
            The estimator, unchanged.

        See Also
        --------
        load : Rebuild the estimator from the file.
        """
        check_is_fitted(self)
        save_model(self, path)
        return self

    @classmethod
    def load(cls, path, device=None, module=None):
        """Load a model written by :meth:`save`.

        Loading reads tensors and JSON only and never executes code from the
        file. A truncated, edited or foreign file, or one written in another
        format version, raises ``ValueError`` with the reason.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        device : str or None, default=None
            Where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:N"``,
            ``"auto"``). None keeps the device it was trained on, or the CPU
            when that was a GPU that this machine does not have.

        module : type or None, default=None
            The custom ``module`` class the model was fitted with, if any. The
            file stores only its name and loading never imports code, so a
            model with a custom module needs its class passed here.

        Returns
        -------
        estimator : VAETransformer
            The fitted estimator, with the same outputs as the saved one.
        """
        return load_model(cls, path, device=device, module=module)

    # ----------------------------------------------------------------- meta
    @property
    def _n_features_out(self):
        """Number of output features, used by ``get_feature_names_out``."""
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = self.missing_values is not None
        return tags


def _silent(*args, **kwargs):
    """A print sink that prints nothing."""
