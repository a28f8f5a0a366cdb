"""What the estimators share: parameters, training and inference.

``VAETransformer``, ``VAEImputer`` and ``VAEOutlierDetector`` are thin faces
on ``_BaseVAE``: one network (``net_``, a skorch net around ``VAEModule``),
one training path (``_fit``), one column schema and one file format. The
checks of the input are in ``_validation``; the fitted state that ``save``,
``load`` and the ONNX export see, in ``_fitted``.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR

from ._callbacks import StopWhenConverged, print_progress
from ._conditional import conditional_draws, read_conditions, restore_given
from ._data import (
    BatchIterator,
    HoldoutSplit,
    InMemoryDataset,
    as_rows,
    block_rows,
    has_nan,
    is_file_backed,
)
from ._fitted import FittedStateMixin
from ._importance import log_marginal_likelihood
from ._likelihoods import LIKELIHOODS
from ._missingness import add_gaps, draw_gaps, learn_gaps
from ._modules import ACTIVATIONS, VAEModule
from ._net import VAENet
from ._scan import AUTO
from ._schema import fit_schema
from ._sizing import TrainingPlan, plan_training
from ._utils import (
    draw_seed,
    forked_rng,
    process_group,
    resolve_device,
    seed_torch,
    shared_seed,
    supports_fused,
    to_numpy,
)
from ._validation import (
    check_decoder_width,
    check_hidden_layer_sizes,
    check_input,
    check_module_class,
    check_n_samples,
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
# On a GPU, this many times more: passes of 4,096 rows leave it waiting on the
# host's kernel launches (on an H200, score_samples ran about 100 launches per
# 409 rows x 10 draws, with 17 ms of GPU work in 132 ms), and its memory is
# larger than a CPU's share of a batch (512 MiB of float32 per tensor here).
_GPU_INFERENCE_SCALE = 8


class _BaseVAE(FittedStateMixin, BaseEstimator):
    """Shared machinery of the skvae estimators (not for direct use)."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "likelihood": [StrOptions({AUTO, *LIKELIHOODS}), dict],
        "missing_values": [None, Real],
        "module": [type, None],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({AUTO})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({AUTO})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({AUTO})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_score_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "callbacks": [list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _shared_parameters = tuple(_parameter_constraints)

    # How "auto" numeric columns outside [0, 1] are transformed before the
    # Gaussian likelihood: "normal_scores", "standardize" or None.
    _numeric_transform = "normal_scores"
    # Whether the encoder sees the observation mask next to the data.
    _mask_input = False
    # Whether columns with no observed value are left out rather than refused.
    _allow_empty = False
    # The likelihood of "auto" numeric columns outside [0, 1].
    _numeric_likelihood = "gaussian"
    # Whether the decoder adds a linear map of the code to its output.
    _linear_path = False
    # Learning-rate schedule over max_epochs: None (constant) or "cosine".
    _lr_schedule = None
    # What max_epochs="auto" and batch_size="auto" give on small data.
    _small_data_epochs = 100
    _small_data_batch_size = 128
    # Whether fit learns where the data has gaps, for sample to draw them.
    _learns_gaps = False

    # ------------------------------------------------------------ training
    def _fit(self, X, epochs=None, reset=True, schema=None, plan=None):
        """Train on ``X``: from scratch (``reset``), or on from ``net_``.

        ``epochs=None`` runs the training plan's ``max_epochs`` (see
        ``_sizing``); a number of epochs is for ``partial_fit``. A ``schema``
        fitted elsewhere (on a superset of X's rows) stands in for the one
        that a fit from scratch would learn from X, and a ``plan`` for the one
        that it would draw up.
        """
        if not reset:
            try:
                return self._train(self.net_, X, epochs, reset=False)
            except FloatingPointError as exc:
                # The net went back to the last completed epoch: the state
                # from before this call, as partial_fit trains one epoch.
                _add_to_message(exc, "The model is left as it was before this call.")
                raise
        try:
            return self._train(None, X, epochs, reset=True, schema=schema, plan=plan)
        except BaseException as exc:
            self._forget_fit()
            if isinstance(exc, FloatingPointError):
                _add_to_message(exc, "The estimator is left unfitted.")
            raise

    def _forget_fit(self):
        """Drop the fitted attributes: a fit that fails leaves the estimator
        unfitted rather than mixing the previous model with the new data's
        attributes."""
        for name in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, name)

    def _partial_fit(self, X):
        if self.early_stopping is True:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no "
                "fixed held-out set across chunks. Use fit, or early_stopping=False."
            )
        if hasattr(self, "net_") and self.net_.train_split is not None:
            # Also after set_params(early_stopping=False): the net would go on
            # holding out a share of every chunk and restoring its best epoch.
            raise ValueError(
                "partial_fit cannot continue a model fitted with early stopping "
                "(early_stopping=True, or 'auto' on over 20,000 rows): it holds "
                "its best epoch on a held-out share of the fit's data. Fit with "
                "early_stopping=False to go on training with partial_fit."
            )
        return self._fit(X, epochs=1, reset=not hasattr(self, "net_"))

    def _train(self, net, X, epochs, reset, schema=None, plan=None):
        if not reset:
            # After unpickling a GPU model on a machine without one, skorch
            # moved the net to the CPU: keep training where the net is.
            self._device = str(net.device)
        hidden_layer_sizes = check_hidden_layer_sizes(self.hidden_layer_sizes)
        # The dtypes of fit are those of X before numeric gaps are marked.
        dataframe = isinstance(X, pd.DataFrame)
        dtypes = X.dtypes if dataframe else None
        X = self._check_input(X, reset=reset)
        rank, world_size = process_group()
        if reset:
            if schema is None:
                schema = fit_schema(
                    X,
                    self.likelihood,
                    self._numeric_transform,
                    allow_nan=self._missing,
                    dataframe=dataframe,
                    dtypes=dtypes,
                    allow_empty=self._allow_empty,
                    numeric_likelihood=self._numeric_likelihood,
                )
            else:
                schema.check(X, allow_nan=self._missing)
            self._schema = schema
            self._device = resolve_device(self.device)
            self._rng = check_random_state(self.random_state)
            if world_size > 1:
                # Data-parallel training: every process starts from the same
                # seed, hence the same initial weights and validation split.
                seed = shared_seed(draw_seed(self._rng), self._device)
                self._rng = np.random.RandomState(seed)
            self._score_seed = draw_seed(self._rng)
            if plan is None:
                plan = self._training_plan(_num_samples(X), epochs is not None)
            self._plan = plan
            net = self._build_net(hidden_layer_sizes)
        else:
            self._schema.check(X, allow_nan=self._missing)
        seed = draw_seed(self._rng)
        dataset = self._dataset(X, self._device, checked=True, seed=seed)
        with forked_rng(seed, self._device):
            if reset:
                net.initialize()
                check_decoder_width(net.module_, self._device)
            if world_size > 1:
                # One shuffling order for all processes, each taking its share,
                # and training noise of its own.
                dataset.generator = torch.Generator().manual_seed(seed)
                seed_torch(seed + 1 + rank, self._device)
            net.partial_fit(dataset, epochs=epochs or net.max_epochs)
        self._store_fit_results(net)
        if self._learns_gaps:
            self._gap_model = learn_gaps(
                net, dataset, self._schema, self._score_seed, self._inference_rows
            )
        return self

    def _training_plan(self, n_samples, incremental=False):
        """What a fit on ``n_samples`` rows runs (see ``_sizing``)."""
        small_data = TrainingPlan(
            self._small_data_epochs,
            self._small_data_batch_size,
            False,
            self._lr_schedule,
        )
        return plan_training(
            n_samples,
            self.max_epochs,
            self.batch_size,
            self.early_stopping,
            small_data,
            incremental,
        )

    def _build_net(self, hidden_layer_sizes=None):
        if hidden_layer_sizes is None:
            hidden_layer_sizes = check_hidden_layer_sizes(self.hidden_layer_sizes)
        # As in MLPClassifier: stop once the monitored loss has not improved by
        # tol for n_iter_no_change epochs; the held-out loss with early_stopping
        # (keeping the best weights), the training loss otherwise.
        plan = self._plan
        train_split = None
        if plan.early_stopping:
            train_split = HoldoutSplit(self.validation_fraction, draw_seed(self._rng))
        stopper = StopWhenConverged(
            monitor="valid_loss" if plan.early_stopping else "train_loss",
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            load_best=plan.early_stopping,
            sink=print_progress if self.verbose else _silent,
            skip_epochs=0 if plan.early_stopping else self.kl_warmup_epochs,
        )
        # The net shows the progress when verbose (VAENet.get_default_callbacks).
        callbacks = [("stop_when_converged", stopper)]
        if plan.lr_schedule == "cosine":
            # Down to 0 over max_epochs, stepped once per epoch.
            schedule = LRScheduler(policy=CosineAnnealingLR, T_max=plan.max_epochs)
            callbacks.append(("lr_schedule", schedule))
        callbacks += list(self.callbacks or [])
        return VAENet(
            self._module_class(),
            module__n_features=self._schema.n_features,
            module__n_components=self.n_components,
            module__hidden_layer_sizes=hidden_layer_sizes,
            module__activation=self.activation,
            module__likelihood=self._schema.blocks,
            **({"module__mask_input": True} if self._mask_input else {}),
            **({"module__linear_path": True} if self._linear_path else {}),
            criterion__beta=self.beta,
            kl_warmup_epochs=self.kl_warmup_epochs,
            train_draws=self._train_draws,
            optimizer=_OPTIMIZERS[self.optimizer],
            lr=self.learning_rate,
            optimizer__weight_decay=self.weight_decay,
            **self._fused_optimizer(),
            max_epochs=plan.max_epochs,
            batch_size=plan.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=BatchIterator,
            train_split=train_split,
            callbacks=callbacks,
            device=self._device,
            verbose=self.verbose,
        )

    @property
    def _score_draws(self):
        """Draws of z per row in scores (``n_score_samples``)."""
        return self.n_score_samples

    @property
    def _train_draws(self):
        """Draws of z per row in the training loss (1: the ELBO)."""
        return 1

    def _fused_optimizer(self):
        """``optimizer__fused=True`` where this PyTorch and device support it."""
        if supports_fused(_OPTIMIZERS[self.optimizer], self._device):
            return {"optimizer__fused": True}
        return {}

    def _module_class(self):
        if self.module is None:
            return VAEModule
        return check_module_class(self.module)

    def _store_fit_results(self, net):
        history = net.history
        self.net_ = net
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = list(history[:, "train_loss"])
        self.likelihoods_ = self._schema.likelihoods_by_name
        if net.train_split is not None:
            valid_loss = history[:, "valid_loss"]
            self.validation_scores_ = [-loss for loss in valid_loss]
            self.best_epoch_ = int(
                dict(net.callbacks_)["stop_when_converged"].best_epoch_
            )
        else:
            self.validation_scores_ = None
            self.best_epoch_ = self.n_iter_

    # ---------------------------------------------------------- validation
    @property
    def _missing(self):
        """Whether missing entries are accepted."""
        return self.missing_values is not None

    def _check_input(self, X, reset):
        """Validated X (see ``_validation.check_input``)."""
        schema = None if reset else getattr(self, "_schema", None)
        return check_input(self, X, reset, schema)

    @property
    def _inference_rows(self):
        """Rows per forward pass at inference time (each row's results do
        not depend on it: the draws are keyed by the row's values)."""
        n_features = self._schema.n_features
        rows = min(_INFERENCE_ROWS, _INFERENCE_ENTRIES // n_features)
        if torch.device(self._device).type == "cuda":
            rows *= _GPU_INFERENCE_SCALE
        return block_rows(rows)

    def _dataset(self, X, device="cpu", checked=False, support=False, seed=None):
        """The dataset of the encoded rows of validated ``X``.

        Unless ``checked``, the values are checked first (with ``support``,
        against the support of the likelihoods too). Memory-mapped files are
        checked and encoded batch by batch as they are read, not in passes of
        their own. A ``seed`` marks training data: it seeds the spreading of
        integer columns over their intervals (see ``Column.levels``).
        """
        schema, allow_nan = self._schema, self._missing
        if is_file_backed(X):

            def prepare(block):
                if not checked:
                    schema.check(block, allow_nan=allow_nan, support=support)
                return schema.encode(block)

            rows, prepare = X, None if schema.identity and checked else prepare
        else:
            if not checked and (support or isinstance(X, pd.DataFrame)):
                schema.check(X, allow_nan=allow_nan, support=support)
            rng = None if seed is None else np.random.default_rng(seed)
            unseen = "missing" if seed is None else "raise"
            encoded = schema.encode(X, allow_nan, rng, unseen)
            # Without gaps, batches need no mask: exactly the same losses and
            # codes, without a mask to compute and apply at every step. A
            # category that fit did not see is a gap even without
            # missing_values.
            categorical = any(column.categorical for column in schema.columns)
            allow_nan = (allow_nan or categorical) and has_nan(encoded)
            rows, prepare = as_rows(encoded, device), None
        return InMemoryDataset(rows, missing=allow_nan, prepare=prepare)

    def _inference_data(self, X, support=False):
        """Validated X and the dataset of its encoded rows."""
        check_is_fitted(self)
        X = self._check_input(X, reset=False)
        return X, self._dataset(X, support=support)

    @staticmethod
    def _finite(tensor, what):
        """``tensor``, after checking that extreme input did not overflow it."""
        if not torch.isfinite(tensor).all():
            raise ValueError(
                f"{what} overflowed float32: X has values far outside the range "
                "seen in fit. Scale X as the training data was scaled."
            )
        return tensor

    def _out_dtype(self, X):
        """Float dtype of outputs computed from ``X``."""
        if isinstance(X, np.ndarray) or sp.issparse(X):
            if X.dtype in (np.float32, np.float64):
                return X.dtype
        return self._schema.dtype

    # ----------------------------------------------------------- inference
    def _encode(self, X):
        """Posterior means and log-variances of the rows of ``X``, and X."""
        X, dataset = self._inference_data(X)
        z_mean, z_logvar = self.net_.encode(dataset, self._inference_rows)
        return X, self._finite(z_mean, "transform"), z_logvar

    def _log_likelihood(self, X, unseen_ceiling=None, extra=None):
        """Importance-weighted log p(x) per row, in the units of X's columns.

        A category that fit did not see adds its ``unseen_log_prob``; with an
        ``unseen_ceiling``, a row holding one scores at most that ceiling plus
        those terms. ``extra``, a function of the rows' dataset that returns
        a float64 array, adds its terms to the scores before the ceiling.
        """
        X, dataset = self._inference_data(X, support=True)
        log_px = self._importance_sampled(log_marginal_likelihood, dataset)
        log_px = to_numpy(self._finite(log_px, "score_samples"), np.float64)
        if extra is not None:
            log_px = log_px + extra(dataset)
        if not self._schema.identity:
            # Densities of transformed columns, back in their own units.
            log_px = log_px + self._schema.log_jacobian(X)
            unseen = self._schema.unseen_terms(X).sum(axis=1)
            log_px = log_px + unseen
            if unseen_ceiling is not None:
                capped = np.minimum(log_px, unseen_ceiling + unseen)
                log_px = np.where(unseen < 0, capped, log_px)
        return log_px.astype(self._out_dtype(X), copy=False)

    def _importance_sampled(self, fn, dataset, n_draws=None, **kwargs):
        """``fn`` of the importance draws of the rows of ``dataset`` (see
        ``_importance``): ``n_draws`` per row (default ``_score_draws``),
        drawn from each row's own values and the seed of ``fit``."""
        return self.net_.importance_sampled(
            fn,
            dataset,
            self._score_draws if n_draws is None else n_draws,
            self._score_seed,
            self._inference_rows,
            **kwargs,
        )

    def _decode(self, encoded, dtype=None):
        """Data-space rows from encoded means or draws (a tensor)."""
        if self._schema.identity and not self._schema.dataframe:
            return to_numpy(encoded, dtype or self._schema.dtype)
        decoded = self._schema.decode(encoded.numpy())
        if dtype is not None and isinstance(decoded, np.ndarray):
            if decoded.dtype.kind == "f":  # not the object array of categories
                decoded = decoded.astype(dtype, copy=False)
        return decoded

    def _sample(self, n_samples, random_state, return_mean, given=None, missing=True):
        check_is_fitted(self)
        conditions = None
        if given is not None:
            conditions = read_conditions(given, n_samples, self._schema)
            n_samples = len(conditions.given)
        else:
            n_samples = check_n_samples(n_samples)
        seed = draw_seed(check_random_state(random_state))
        rows = self._inference_rows
        if conditions is None:
            X, z = self.net_.sample(
                n_samples, self.n_components, seed, rows, return_mean=return_mean
            )
            X = self._decode(X)
        else:
            X, z = conditional_draws(self.net_, conditions, seed, rows, return_mean)
            X = restore_given(self._decode(X), conditions)
        gap_model = getattr(self, "_gap_model", None)
        if missing and gap_model is not None and not return_mean:
            gaps = draw_gaps(gap_model, z.numpy(), len(self._schema.columns), seed)
            if conditions is not None:
                gaps &= ~conditions.given
            X = add_gaps(X, gaps, self._schema, self.missing_values)
        return X

    # ---------------------------------------------------------------- meta
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = self.missing_values is not None
        return tags


def _add_to_message(exc, sentence):
    """Append ``sentence`` to the message of the exception ``exc``."""
    exc.args = (f"{exc.args[0]} {sentence}", *exc.args[1:])


def _silent(*args, **kwargs):
    """A print sink that prints nothing."""
