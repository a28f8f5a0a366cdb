"""The estimators' shared parameter entries, written once for all docstrings."""

# The parameters' entries in the estimators' docstrings, written once.
PARAMETER_DOCS = {
    "n_components": """n_components : int, default={n_components}
        Dimension of the latent space.""",
    "hidden_layer_sizes": """hidden_layer_sizes : int or tuple of int, \
default={hidden_layer_sizes}
        Widths of the encoder's hidden layers, from the input side; the
        decoder mirrors them.""",
    "activation": """activation : {{"relu", "tanh", "logistic", "elu", "gelu", "silu", \
"leaky_relu"}}, default="{activation}"
        Activation of the hidden layers.""",
    "likelihood": """likelihood : str or dict, default="auto"
        Observation model p(x | z), per column. ``"auto"`` resolves each
        column at ``fit`` (see ``likelihoods_``): when every column is numeric
        with values in [0, 1] (images, the classic model), ``"bernoulli"`` for
        all of them, on the data as given; otherwise ``"gaussian"`` for
        numeric columns, on {numeric_transform}, and ``"categorical"``
        for categorical ones (pandas ``object``, ``string``, ``category`` or
        ``bool`` columns). A name sets one likelihood for all columns, on the
        data as given; a dict ``{{column name or position: name}}`` sets it for
        the columns it names, the others resolving as ``"auto"``. Names:

        - ``"bernoulli"``: data in [0, 1], binary or grey levels (binary
          cross-entropy, not a normalised density for grey levels).
        - ``"continuous_bernoulli"``: grey levels in [0, 1], with the
          normalised continuous Bernoulli density (Loaiza-Ganem and
          Cunningham, 2019).
        - ``"gaussian"``: real values, with a learned standard deviation per
          feature.
        - ``"gaussian_heteroscedastic"``: real values, with a standard
          deviation per entry that the decoder predicts next to the mean.
        - ``"poisson"``: counts (non-negative integers).
        - ``"negative_binomial"``: overdispersed counts, with a learned
          inverse dispersion per feature.
        - ``"categorical"``: one of a column's categories (softmax over them).

        ``fit`` checks that each column lies in its likelihood's support.""",
    "missing_values": """missing_values : float or None, default=np.nan
        Marker of missing entries: ``np.nan`` (in DataFrames also ``None`` and
        ``pd.NA``), or a number such as -1 that marks them in numeric columns.
        Missing entries are left out of the likelihood in training and in
        scores; the encoder sees zeros in their place. None rejects gaps.""",
    "module": """module : type or None, default=None
        The PyTorch model class. None uses ``VAEModule``: MLP encoder and
        decoder built from ``hidden_layer_sizes`` and ``activation``. To plug
        in other networks, subclass ``VAEModule`` and replace its ``encoder``
        (``x -> (mean, log_var)``) and ``decoder`` (``z -> params`` of shape
        ``(batch, likelihood.n_params)``); see the gallery example on custom
        networks.""",
    "beta": """beta : float, default=1.0
        Weight of the KL term in the loss (``beta > 1`` gives a beta-VAE).""",
    "kl_warmup_epochs": """kl_warmup_epochs : int, default=0
        Number of epochs over which the KL weight grows linearly from 0 to
        ``beta``. 0 disables the warm-up.""",
    "max_epochs": """max_epochs : int or "auto", default="auto"
        Maximum number of passes over the training data. Training stops
        earlier once the loss has converged (see ``tol``). ``"auto"``:
        {max_epochs} on up to 20,000 rows; beyond, fewer as the rows grow
        (``{max_epochs} * sqrt(20,000 / n_samples)``, at least 10), with the
        learning rate annealed to 0 along a cosine over them (see the user
        guide's "Speed" page).""",
    "batch_size": """batch_size : int or "auto", default="auto"
        Number of samples per gradient step. ``"auto"``: {batch_size} below
        100,000 rows, doubled each time the rows grow fourfold beyond (at most
        8 times {batch_size}).""",
    "learning_rate": """learning_rate : float, default={learning_rate}
        Step size of the optimizer.""",
    "optimizer": """optimizer : {{"adam", "adamw", "rmsprop", "sgd"}}, default="adam"
        Optimizer, with PyTorch's default settings apart from
        ``learning_rate`` and ``weight_decay``.""",
    "weight_decay": """weight_decay : float, default={weight_decay}
        L2 penalty (decoupled for ``"adamw"``).""",
    "early_stopping": """early_stopping : bool or "auto", default="auto"
        Whether to hold out ``validation_fraction`` of the training data and
        monitor its loss instead of the training loss to decide when to stop.
        The weights of the best epoch on the held-out data are kept.
        ``"auto"`` holds out above 20,000 rows (not in ``partial_fit``).""",
    "validation_fraction": """validation_fraction : float, default=0.1
        Share of the training data held out when early stopping is on.""",
    "n_iter_no_change": """n_iter_no_change : int, default={n_iter_no_change}
        Training stops when the monitored loss (training loss, or held-out loss
        with early stopping) has not improved by at least ``tol`` for
        this many consecutive epochs. Without early stopping, epochs of the KL
        warm-up do not count.""",
    "tol": """tol : float, default=1e-4
        Smallest decrease of the monitored loss, in nats per sample, that
        counts as an improvement.""",
    "n_score_samples": """n_score_samples : int, default={n_score_samples}
        Number of importance samples per row in ``score_samples``: 1 gives
        the ELBO; more give a tighter bound.""",
    "device": """device : str, default="cpu"
        Where to train and infer: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
        ``"auto"`` (a GPU when there is one). Outputs are always on the host.""",
    "callbacks": """callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (for example a learning-rate scheduler),
        added after the built-in ones.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the training noise. Pass an
        int for reproducible results: the same seed on the same machine and
        device gives the same model.""",
    "verbose": """verbose : int, default=0
        0 is silent; 1 or more shows the progress of training and prints the
        losses (and their reconstruction and KL terms) after each epoch.""",
}


def fill_doc(**defaults):
    """Class decorator: put the shared parameter entries into the docstring.

    The docstring names them as ``{parameters}``, one entry per parameter
    listed in ``PARAMETER_DOCS``, formatted with the class's ``defaults``.
    """

    def decorate(cls):
        entries = [PARAMETER_DOCS[name] for name in cls._shared_parameters]
        text = "\n\n    ".join(entries).format(**defaults)
        cls.__doc__ = cls.__doc__.replace("{parameters}", text)
        return cls

    return decorate
