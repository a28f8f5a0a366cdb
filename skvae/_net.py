"""``VAENet``: the skorch ``NeuralNet`` that trains a ``VAEModule`` and runs
its batched inference."""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer
from skorch.utils import TeeGenerator

from ._callbacks import (
    AverageEpochScores,
    AverageGradients,
    RollBackInterruptedEpoch,
    TrainingProgress,
)
from ._data import BatchIterator, InMemoryDataset, block_rows, padded_batches
from ._losses import NegativeELBO
from ._threads import choose_threads, thread_count
from ._utils import process_group, row_keyed_normal


def _divergence_error(net, training, reconstruction, kl):
    phase = "training" if training else "validation"
    return FloatingPointError(
        f"The {phase} loss is not finite in epoch {len(net.history)} "
        f"(reconstruction term {reconstruction}, KL term {kl}): the model "
        "diverged. Lower learning_rate, scale X (for example with StandardScaler "
        "or MinMaxScaler), or pick a likelihood that matches the data."
    )


def _lr_scales(module):
    """``{id(parameter): lr_scale}`` of the parameters of the parts of
    ``module.likelihood`` whose ``lr_scale`` is not 1."""
    likelihood = getattr(module, "likelihood", None)
    if not isinstance(likelihood, torch.nn.Module):
        return {}
    return {
        id(p): part.lr_scale
        for part in likelihood.modules()
        if getattr(part, "lr_scale", 1.0) != 1.0
        for p in part.parameters(recurse=False)
    }


class VAENet(NeuralNet):
    """skorch ``NeuralNet`` whose loss is the negative ELBO of a ``VAEModule``.

    Parameters
    ----------
    module : type
        ``VAEModule`` (or a compatible class), built from ``module__*``.
    kl_warmup_epochs : int, default=0
        The KL weight grows linearly from 0 to ``criterion__beta`` over this
        many epochs. Validation always uses the full weight.
    train_draws : int, default=1
        Draws of z per row in the loss: 1 gives the ELBO, more the
        importance-weighted bound (IWAE, or MIWAE with missing values).
    **kwargs
        Passed to ``skorch.NeuralNet``.
    """

    def __init__(
        self,
        module,
        *args,
        criterion=NegativeELBO,
        kl_warmup_epochs=0,
        train_draws=1,
        **kw,
    ):
        super().__init__(module, criterion, *args, **kw)
        self.kl_warmup_epochs = kl_warmup_epochs
        self.train_draws = train_draws

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's, with the parameters of each part of the likelihood whose
        ``lr_scale`` is not 1 in a group of their own, at that multiple of the
        learning rate (a learning-rate schedule scales every group alike)."""
        named_parameters = list(named_parameters)
        scales = _lr_scales(self.module_)
        rest = [(name, p) for name, p in named_parameters if id(p) not in scales]
        (groups,), kwargs = super().get_params_for_optimizer(prefix, rest)
        scaled = {}
        for _, p in named_parameters:
            if id(p) in scales:
                scaled.setdefault(scales[id(p)], []).append(p)
        groups = list(groups) + [
            {"params": params, "lr": kwargs["lr"] * scale}
            for scale, params in scaled.items()
        ]
        return (groups,), kwargs

    def infer(self, x, **fit_params):
        # K > 1 draws per row train on the importance-weighted bound (IWAE).
        if self.train_draws > 1:
            fit_params = {"n_draws": self.train_draws, **fit_params}
        return super().infer(x, **fit_params)

    def get_default_callbacks(self):
        # The epoch's losses are recorded by run_single_epoch itself; the
        # table only when verbose.
        callbacks = [("epoch_timer", EpochTimer())]
        if process_group()[1] > 1:
            callbacks.append(("average_gradients", AverageGradients()))
            callbacks.append(("average_epoch_scores", AverageEpochScores()))
        if self.verbose:
            # Before the roll-back, whose warning should not cut into the bar.
            callbacks.append(("progress", TrainingProgress()))
        callbacks.append(("roll_back_interrupted_epoch", RollBackInterruptedEpoch()))
        return callbacks

    def _batch_hooks(self, name):
        """The callbacks that implement the batch-level method ``name``.

        skorch notifies every callback of every batch; calling only those that
        do something saves that walk on each batch.
        """
        default = getattr(Callback, name)
        return [
            callback
            for _, callback in self.callbacks_
            if getattr(type(callback), name, default) is not default
        ]

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch and record the means of the loss and its two terms.

        Replaces skorch's loop, which records every batch in the history and
        reads every loss back (``.item()``, a GPU synchronisation each): the
        terms are summed on the device and read once, at the end of the epoch.
        A loss that is not finite is then an error that names the epoch, and
        ``partial_fit`` goes back to the last completed one.
        """
        if iterator is None:
            return
        begin = self._batch_hooks("on_batch_begin")
        end = self._batch_hooks("on_batch_end")
        self._grad_hooks = self._batch_hooks("on_grad_computed")
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        rows, batches = 0, 0
        for batch in iterator:
            for callback in begin:
                callback.on_batch_begin(self, batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[0]["x"] if isinstance(batch[0], dict) else batch[0])
            sums.add_(torch.stack([step["loss"].detach(), *self._terms]), alpha=size)
            rows, batches = rows + size, batches + 1
            for callback in end:
                callback.on_batch_end(self, batch=batch, training=training, **step)
        loss, reconstruction, kl = (sums / max(rows, 1)).tolist()
        if not self._all_finite(loss, reconstruction, kl):
            raise _divergence_error(self, training, reconstruction, kl)
        for term, value in zip(
            ("loss", "reconstruction", "kl"), (loss, reconstruction, kl)
        ):
            self.history.record(f"{prefix}_{term}", value)
        self.history.record(f"{prefix}_batch_count", batches)
        self.history.record(f"{prefix}_rows", rows)

    def _all_finite(self, *values):
        """Whether all values are finite, in every process of a group (which
        must stop together, or the others would wait for this one forever)."""
        finite = all(math.isfinite(value) for value in values)
        if process_group()[1] > 1:
            flag = torch.tensor([0.0 if finite else 1.0], device=self.device)
            torch.distributed.all_reduce(flag)
            finite = flag.item() == 0.0
        return finite

    def train_step(self, batch, **fit_params):
        """One optimizer step on a batch: skorch's, without the closure.

        The estimators' optimizers (Adam, AdamW, RMSprop, SGD) evaluate the
        loss once per step, so the gradients are computed first and the step
        taken after, as in a plain loop; ``on_grad_computed`` goes to the
        callbacks that implement it (gradient averaging across processes,
        gradient clipping) in between.
        """
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        for callback in getattr(self, "_grad_hooks", ()):
            parameters = TeeGenerator(self.get_all_learnable_params())
            callback.on_grad_computed(
                self, named_parameters=parameters, batch=batch, training=True
            )
        self._step_optimizer(None)
        return step

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking all submodules only
        # when the mode changes saves that walk on all the other batches.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train on ``X`` from the current state (skorch's ``partial_fit``).

        When the loss stops being finite, the model goes back to the last
        completed epoch before the error propagates.
        """
        self.epochs_planned_ = fit_params.get("epochs") or self.max_epochs
        if not self.initialized_:
            self.initialize()
        try:
            with self._threads(self.batch_size, training=True):
                return super().partial_fit(X, y, classes, **fit_params)
        except FloatingPointError:
            dict(self.callbacks_)["roll_back_interrupted_epoch"].roll_back(self)
            raise
        finally:
            # Also after an error, which skips on_train_end: no bar left behind.
            for _, callback in getattr(self, "callbacks_", []):
                if isinstance(callback, TrainingProgress):
                    callback.close()

    def get_iterator(self, dataset, training=False):
        """skorch's iterator, sending batches to wherever the net is now.

        The net's device can change after it was built: a model pickled on a
        GPU machine and loaded on a CPU-only one lives on the CPU.
        """
        iterator = super().get_iterator(dataset, training=training)
        iterator.device = self.device
        iterator.mask_in_x = getattr(self.module_, "mask_input", False)
        return iterator

    def _warmup(self, training):
        if not training or not self.kl_warmup_epochs:
            return 1.0
        epoch = len(self.history) - 1  # the running epoch is already recorded
        return min(1.0, epoch / self.kl_warmup_epochs)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        warmup = self._warmup(training)
        if isinstance(X, dict):  # {"x": x, "mask": ...} for a mask-aware encoder
            X = X["x"]
        # y_true is the batch's observation mask (None without missing values).
        terms = self.criterion_(y_pred, X, self.module_.likelihood, warmup, y_true)
        # Kept on the device for run_single_epoch to sum, not read per batch.
        self._terms = (terms.reconstruction.detach(), terms.kl.detach())
        return terms.loss

    def _threads(self, rows, training=False):
        """Scope the CPU thread count to steps of ``rows`` rows (``_threads``)."""
        weights = [
            p.shape[0] * p.shape[1] for p in self.module_.parameters() if p.dim() == 2
        ]
        macs = rows * max(weights, default=1)
        return thread_count(choose_threads(macs, self.device, training))

    # -- inference: no_grad, eval mode, batches moved to the net's device --
    def _batches(self, dataset, batch_size):
        iterator = BatchIterator(dataset, batch_size, device=self.device)
        return padded_batches(iterator)

    @torch.no_grad()
    def encode(self, dataset, batch_size):
        """Posterior means and log-variances of the rows of a dataset."""
        self._set_training(False)
        with self._threads(min(len(dataset), batch_size)):
            parts = [
                [t[:n].cpu() for t in self.module_.encode(x, mask)]
                for n, x, mask in self._batches(dataset, batch_size)
            ]
        return tuple(torch.cat([p[i] for p in parts]) for i in range(2))

    @torch.no_grad()
    def decode_mean(self, Z, batch_size):
        """Likelihood means for the latent codes in the tensor ``Z``."""
        self._set_training(False)
        module = self.module_
        with self._threads(min(len(Z), batch_size)):
            means = [
                module.likelihood.mean(module.decoder(z))[:n].cpu()
                for n, z, _ in self._batches(InMemoryDataset(Z), batch_size)
            ]
        return torch.cat(means)

    @torch.no_grad()
    def sample(self, n_samples, n_components, seed, batch_size, return_mean=False):
        """Draw z from the prior and x from the likelihood, on the net's device.

        With ``return_mean=True``, x is the likelihood's mean instead of a draw.

        Returns
        -------
        x : Tensor of shape (n_samples, n_features), on the host
        z : Tensor of shape (n_samples, n_components), on the host
            The codes that x was drawn from.
        """
        self._set_training(False)
        module = self.module_
        generator = torch.Generator(device=self.device).manual_seed(seed)
        xs, zs = [], []
        with self._threads(min(n_samples, batch_size)):
            for start in range(0, n_samples, batch_size):
                n = min(batch_size, n_samples - start)
                z = torch.randn(
                    n, n_components, generator=generator, device=self.device
                )
                params = module.decoder(z)
                if return_mean:
                    x = module.likelihood.mean(params)
                else:
                    x = module.likelihood.sample(params, generator=generator)
                xs.append(x.cpu())
                zs.append(z.cpu())
        return torch.cat(xs), torch.cat(zs)

    @torch.no_grad()
    def importance_sampled(
        self, fn, dataset, n_draws, seed, batch_size, fresh_draws=None, **kwargs
    ):
        """Apply an importance-sampling function (``log_marginal_likelihood``,
        ``posterior_mean``, ...) to the rows of a dataset, in batches.

        The draws of each row are keyed by its values and ``seed``
        (``row_keyed_normal``): a row's result does not depend on the other
        rows or the batching, repeated calls agree, and the errors of
        different rows are independent, so averages over rows are precise.
        With ``fresh_draws``, a generator on the net's device, the draws come
        from it instead: fresh for every row, as samples need, equal rows
        included.

        Returns
        -------
        out : Tensor on the host, rows of ``fn`` concatenated (a tuple of
            them when ``fn`` returns a tuple)
        """
        self._set_training(False)
        module = self.module_
        # K draws per row: shrink the batch so the decoder sees ~batch_size rows.
        rows = block_rows(batch_size // n_draws)
        out = []
        with self._threads(min(len(dataset), rows) * n_draws):
            for n, x, mask in padded_batches(BatchIterator(dataset, rows)):  # host
                x = x.to(self.device, non_blocking=True)
                if fresh_draws is None:
                    eps = row_keyed_normal(x, n_draws, module.n_components, seed)
                else:
                    shape = (n_draws, len(x), module.n_components)
                    eps = torch.randn(shape, generator=fresh_draws, device=self.device)
                mask = None if mask is None else mask.to(self.device)
                result = fn(module, x, eps, mask, **kwargs)
                if isinstance(result, tuple):
                    out.append(tuple(part[:n].cpu() for part in result))
                else:
                    out.append(result[:n].cpu())
        if out and isinstance(out[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*out))
        return torch.cat(out)
