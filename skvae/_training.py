"""Losses, data iteration and the skorch net that trains a ``VAEModule``."""

import math
import sys
import textwrap
import warnings
from copy import deepcopy
from numbers import Integral, Number
from typing import NamedTuple

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer
from skorch.callbacks.logging import filter_log_keys
from skorch.utils import TeeGenerator
from torch import nn
from tqdm import tqdm

from ._data import BatchIterator, InMemoryDataset
from ._threads import choose_threads, thread_count
from ._utils import process_group, row_keyed_normal

_LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------
# Pure losses
# --------------------------------------------------------------------------
def gaussian_kl(z_mean, z_logvar):
    """KL divergence from N(z_mean, exp(z_logvar)) to N(0, I), per sample.

    Parameters
    ----------
    z_mean, z_logvar : Tensor of shape (batch, n_components)

    Returns
    -------
    kl : Tensor of shape (batch,)
    """
    # expm1(v) - v equals exp(v) - 1 - v without the cancellation near v = 0.
    return 0.5 * (z_mean.square() + torch.expm1(z_logvar) - z_logvar).sum(dim=-1)


class ELBOTerms(NamedTuple):
    """Batch means of the loss and of its two terms."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def negative_elbo(output, x, likelihood, kl_weight=1.0, mask=None):
    """Negative evidence lower bound of a batch.

    The reconstruction term is the negative log-likelihood summed over
    features, the KL term is summed over latent dimensions, and both are
    averaged over the batch, so the loss is in nats per sample.

    Parameters
    ----------
    output : VAEOutput
        Result of ``VAEModule.forward(x)``.
    x : Tensor of shape (batch, n_features)
    likelihood : Likelihood
    kl_weight : float, default=1.0
        Multiplier of the KL term (``beta`` times the warm-up factor).
    mask : bool Tensor of shape (batch, n_features) or None
        Observed entries; missing ones do not enter the reconstruction term.

    Returns
    -------
    terms : ELBOTerms
    """
    reconstruction = likelihood.negative_log_prob(x, output.x_params, mask).mean()
    kl = gaussian_kl(output.z_mean, output.z_logvar).mean()
    return ELBOTerms(reconstruction + kl_weight * kl, reconstruction, kl)


def log_prior_ratio(z, z_mean, z_logvar):
    """``log p(z) - log q(z | x)`` for each draw of z, shape (K, batch).

    ``z`` (K, batch, n_components) are draws from q(z | x) = N(z_mean,
    exp(z_logvar)), with ``z_mean`` and ``z_logvar`` of shape (batch,
    n_components); p(z) is the standard normal prior. Adding ``log p(x | z)``
    gives the log importance weights ``log p(x, z) / q(z | x)``.
    """
    eps = (z - z_mean) * torch.exp(-0.5 * z_logvar)
    log_pz = -0.5 * (z.square() + _LOG_2PI).sum(dim=-1)
    log_qz = -0.5 * (eps.square() + _LOG_2PI + z_logvar).sum(dim=-1)
    return log_pz - log_qz


def negative_iwae(output, x, likelihood, kl_weight=1.0, mask=None):
    """Negative importance-weighted bound of a batch, from K draws per row.

    ``-log mean_k p(x, z_k) / q(z_k | x)`` averaged over the batch (with the
    prior and posterior terms weighted by ``kl_weight``); with a mask, of the
    observed entries only (the MIWAE bound). The reported terms are the
    average reconstruction term and the sampled KL term over the draws.

    Parameters
    ----------
    output : VAEOutput
        Result of ``VAEModule.forward(x, n_draws=K)``.
    x : Tensor of shape (batch, n_features)
    likelihood : Likelihood
    kl_weight : float, default=1.0
    mask : bool Tensor of shape (batch, n_features) or None

    Returns
    -------
    terms : ELBOTerms
    """
    n_draws = output.z.shape[0]
    x_rep = x.expand(n_draws, *x.shape)
    mask = None if mask is None else mask.expand(n_draws, *mask.shape)
    log_px_z = likelihood.log_prob(x_rep, output.x_params, mask)
    ratio = log_prior_ratio(output.z, output.z_mean, output.z_logvar)
    log_w = log_px_z + kl_weight * ratio
    bound = torch.logsumexp(log_w, dim=0) - math.log(n_draws)
    return ELBOTerms(-bound.mean(), -log_px_z.mean(), -ratio.mean())


class Draws(NamedTuple):
    """K codes drawn from q(z | x) for a batch, decoded and weighted."""

    z_mean: torch.Tensor  # (batch, n_components): the posterior means
    params: torch.Tensor  # (K, batch, n_params): decoder outputs
    log_px_z: torch.Tensor  # (K, batch): log p(x | z_k), observed entries
    log_w: torch.Tensor  # (K, batch): log p(x, z_k) / q(z_k | x)
    kl: torch.Tensor  # (batch,): closed-form KL(q(z | x) || p(z))


def importance_draws(module, x, eps, mask=None, kernel=False):
    """Draw z_k = mean + std * eps_k from q(z | x), decode and weight them.

    Parameters
    ----------
    module : VAEModule
    x : Tensor of shape (batch, n_features)
    eps : Tensor of shape (K, batch, n_components)
        Standard normal draws.
    mask : bool Tensor of shape (batch, n_features) or None
        Observed entries: the weights are then those of the observed part.
    kernel : bool, default=False
        Leave out of ``log_px_z`` and ``log_w`` the terms that no decoder
        output enters (``Likelihood.log_kernel_elements``): the weights
        normalised over the draws stay the same.

    Returns
    -------
    draws : Draws
    """
    z_mean, z_logvar = module.encode(x, mask)
    z = z_mean + torch.exp(0.5 * z_logvar) * eps  # (K, batch, n_components)
    n_draws, batch = z.shape[:2]
    params = module.decoder(z.reshape(n_draws * batch, -1)).reshape(n_draws, batch, -1)
    # Broadcast views of x (and the mask) over the K draws: no copies.
    x_rep = x.expand(n_draws, *x.shape)
    if mask is not None:
        mask = mask.expand(n_draws, *mask.shape)
    likelihood = module.likelihood
    log_density = likelihood.log_kernel if kernel else likelihood.log_prob
    log_px_z = log_density(x_rep, params, mask)
    log_w = log_px_z + log_prior_ratio(z, z_mean, z_logvar)
    return Draws(z_mean, params, log_px_z, log_w, gaussian_kl(z_mean, z_logvar))


def log_marginal_likelihood(module, x, eps, mask=None):
    """Importance-weighted estimate of log p(x) per sample.

    With K = ``len(eps)`` draws this is the IWAE bound
    ``log mean_k p(x, z_k) / q(z_k | x)``; with one draw it is the ELBO,
    using the closed-form KL term. Arguments as for ``importance_draws``.

    Returns
    -------
    log_px : Tensor of shape (batch,)
    """
    return marginal_of_draws(importance_draws(module, x, eps, mask))


def marginal_of_draws(draws):
    """``log_marginal_likelihood`` of the ``Draws`` of a batch."""
    if len(draws.log_w) == 1:
        return draws.log_px_z[0] - draws.kl
    return torch.logsumexp(draws.log_w, dim=0) - math.log(len(draws.log_w))


def posterior_mean(module, x, eps, mask=None):
    """E[x | x_observed] by self-normalised importance sampling, per entry.

    Each draw's likelihood mean, weighted by p(x_obs, z_k) / q(z_k | x_obs)
    normalised over the draws (the MIWAE imputation of Mattei and Frellsen,
    2019), for which the likelihood's kernel is enough. Arguments as for
    ``importance_draws``.

    Returns
    -------
    mean : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask, kernel=True)
    weights = torch.softmax(draws.log_w, dim=0).unsqueeze(-1)
    return (weights * module.likelihood.mean(draws.params)).sum(dim=0)


def posterior_sample(module, x, eps, mask=None, generator=None):
    """One draw of x from p(x | x_observed): z resampled by importance weight,
    then x from p(x | z). Arguments as for ``importance_draws``.

    Returns
    -------
    sample : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask, kernel=True)
    weights = torch.softmax(draws.log_w, dim=0).T  # (batch, K)
    pick = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    params = draws.params[pick, torch.arange(len(pick), device=pick.device)]
    return module.likelihood.sample(params, generator=generator)


def feature_log_likelihoods(module, x, eps, mask=None):
    """Each entry's expected log-likelihood under the posterior, per feature.

    ``sum_k w_k log p(x_j | z_k)`` with the self-normalised importance
    weights; 0 for missing entries. Arguments as for ``importance_draws``.

    Returns
    -------
    log_px : Tensor of shape (batch, n_features)
    """
    draws = importance_draws(module, x, eps, mask)
    weights = torch.softmax(draws.log_w, dim=0).unsqueeze(-1)
    x_rep = x.expand(len(draws.params), *x.shape)
    terms = module.likelihood.log_prob_elements(x_rep, draws.params)
    if mask is not None:
        terms = torch.where(mask, terms, 0.0)
    return (weights * terms).sum(dim=0)


# --------------------------------------------------------------------------
# Batches of inference
# --------------------------------------------------------------------------
# Inference runs on batches of a multiple of ROW_BLOCK rows, the last one
# padded with zero rows, so that a row's codes and scores do not depend on the
# other rows of its batch: BLAS libraries multiply a few rows with other
# kernels than many (summing in another order), and vectorised loops leave
# the last floats of a tensor to scalar code, whose exp and log round
# differently. 32 rows fill whole AVX-512 loop steps (2 x 16 floats).
ROW_BLOCK = 32


def block_rows(rows):
    """``rows`` rounded down to a multiple of ``ROW_BLOCK`` (at least one)."""
    return max(ROW_BLOCK, rows - rows % ROW_BLOCK)


def pad_rows(x, mask=None):
    """``x`` and ``mask`` with rows appended up to a multiple of ``ROW_BLOCK``:
    zeros in ``x``, observed entries in ``mask``."""
    extra = -len(x) % ROW_BLOCK
    if not extra:
        return x, mask
    x = torch.cat([x, x.new_zeros(extra, *x.shape[1:])])
    if mask is not None:
        mask = torch.cat([mask, mask.new_ones(extra, *mask.shape[1:])])
    return x, mask


def padded_batches(batches):
    """``(n_rows, x, mask)`` for each ``(x, mask)`` batch, padded by
    ``pad_rows``: the results of the first ``n_rows`` rows are the batch's."""
    for x, mask in batches:
        yield (len(x), *pad_rows(x, mask))


class NegativeELBO(nn.Module):
    """The training criterion: ``negative_elbo`` with a KL weight ``beta``."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, output, x, likelihood, warmup=1.0, mask=None):
        kl_weight = self.beta * warmup
        # Several draws per row (a leading axis on z): the importance-weighted
        # bound; one draw: the ELBO with its closed-form KL term.
        loss = negative_iwae if output.z.dim() == 3 else negative_elbo
        return loss(output, x, likelihood, kl_weight=kl_weight, mask=mask)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def _divergence_error(net, training, reconstruction, kl):
    phase = "training" if training else "validation"
    return FloatingPointError(
        f"The {phase} loss is not finite in epoch {len(net.history)} "
        f"(reconstruction term {reconstruction}, KL term {kl}): the model "
        "diverged. Lower learning_rate, scale X (for example with StandardScaler "
        "or MinMaxScaler), or pick a likelihood that matches the data."
    )


def _state_copy(net, previous=None):
    """Copies of the module's and the optimizer's state (on their device).

    With the ``previous`` copy, its tensors are refreshed in place where they
    still match (shape, dtype, device): after the first epoch, a copy costs
    no allocations.
    """
    state = {
        "module": net.module_.state_dict(),
        "optimizer": net.optimizer_.state_dict(),
    }
    return _refreshed(previous, state)


def _refreshed(old, new):
    """A copy of the nested state ``new``, reusing the tensors of ``old``."""
    if torch.is_tensor(new):
        same = (
            torch.is_tensor(old)
            and old.shape == new.shape
            and old.dtype == new.dtype
            and old.device == new.device
        )
        return old.copy_(new) if same else new.detach().clone()
    if isinstance(new, dict):
        olds = old if isinstance(old, dict) else {}
        return type(new)((key, _refreshed(olds.get(key), v)) for key, v in new.items())
    if isinstance(new, (list, tuple)):
        same = isinstance(old, (list, tuple)) and len(old) == len(new)
        olds = old if same else [None] * len(new)
        return type(new)(_refreshed(o, v) for o, v in zip(olds, new))
    return deepcopy(new)


def restore_state(net, state):
    """Load a ``_state_copy`` back into the net."""
    net.module_.load_state_dict(state["module"])
    net.optimizer_.load_state_dict(state["optimizer"])


class RollBackInterruptedEpoch(Callback):
    """On an interrupted epoch (Ctrl-C), go back to the last completed one.

    skorch stops training on ``KeyboardInterrupt`` and keeps the model as it
    is, possibly in the middle of an epoch. This callback keeps a copy of the
    state after every completed epoch and restores it, and drops the partial
    epoch from the history, so the model is always that of a whole epoch.
    """

    def on_train_begin(self, net, **kwargs):
        self.last_complete_ = _state_copy(net)

    def on_epoch_end(self, net, **kwargs):
        self.last_complete_ = _state_copy(net, self.last_complete_)

    def on_train_end(self, net, **kwargs):
        epoch = len(net.history)
        if self.roll_back(net):
            warnings.warn(
                f"Training was interrupted during epoch {epoch}; the model keeps "
                f"the weights after epoch {epoch - 1}.",
                UserWarning,
                stacklevel=2,
            )
        self.last_complete_ = None  # free the copy

    def roll_back(self, net):
        """Restore the last completed epoch if the current one is partial."""
        if not net.history or "train_loss" in net.history[-1]:
            return False
        restore_state(net, self.last_complete_)
        del net.history[-1]
        return True


class AverageGradients(Callback):
    """Data-parallel training: average the gradients over all processes.

    Each process of a ``torch.distributed`` group trains on its own share of
    every epoch; after each backward pass the gradients are summed across the
    group (``all_reduce``) and divided by its size, so every process takes the
    same optimizer step and the copies of the model stay identical.
    """

    def on_grad_computed(self, net, named_parameters, **kwargs):
        world_size = process_group()[1]
        if world_size == 1:  # e.g. a model unpickled outside the group
            return
        for _, param in named_parameters:
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad.div_(world_size)


class AverageEpochScores(Callback):
    """Data-parallel training: average each epoch's losses over all processes.

    The decisions taken on them (convergence, early stopping, the best epoch)
    are then the same in every process, as they must be for the processes to
    keep running the same steps.
    """

    keys = tuple(
        f"{prefix}_{term}"
        for prefix in ("train", "valid")
        for term in ("loss", "reconstruction", "kl")
    )

    def on_epoch_end(self, net, **kwargs):
        if process_group()[1] == 1:
            return
        row = net.history[-1]
        keys = [key for key in self.keys if key in row]
        # On the net's device: NCCL, the GPU backend, reduces GPU tensors only.
        values = torch.tensor(
            [row[key] for key in keys], dtype=torch.float64, device=net.device
        )
        torch.distributed.all_reduce(values)
        values /= torch.distributed.get_world_size()
        for key, value in zip(keys, values.tolist()):
            net.history.record(key, value)


def print_progress(text):
    """Print a line of training output to stdout, above any live progress bar.

    The sink of ``TrainingProgress`` and of the convergence messages. Only
    the first process of a ``torch.distributed`` group prints.
    """
    if process_group()[0] == 0:
        tqdm.write(text, file=sys.stdout)
        sys.stdout.flush()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class TrainingProgress(Callback):
    """What ``verbose`` shows: a table row per epoch and, in a terminal, a bar.

    Each epoch prints one row of losses (the loss and its reconstruction and
    KL terms, of training and of validation when there is a split, then any
    other scores in the history, then the duration in seconds) to stdout.
    When stdout is a terminal, a bar under the rows follows the epochs of the
    fit with the last losses and the time left, and with ``verbose >= 2`` a
    second bar follows the batches of the running epoch. Elsewhere (a pipe, a
    file, a notebook) only the rows are printed: plain lines, without carriage
    returns or colour codes.
    """

    losses = tuple(
        f"{prefix}_{term}"
        for prefix in ("train", "valid")
        for term in ("loss", "reconstruction", "kl")
    )

    def initialize(self):
        self.columns_ = None  # fixed by the first row, which prints the header
        self.epoch_bar_ = self.batch_bar_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.close()
        if process_group()[0] == 0 and _is_terminal(sys.stdout):
            epochs = getattr(net, "epochs_planned_", net.max_epochs)
            self.epoch_bar_ = self._bar(total=epochs, desc="training", unit="epoch")

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.epoch_bar_ is not None and net.verbose >= 2:
            batches = len(net.get_iterator(dataset_train, training=True))
            desc = f"epoch {len(net.history)}"
            self.batch_bar_ = self._bar(total=batches, desc=desc, unit="batch")

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if self.batch_bar_ is not None and training:
            self.batch_bar_.set_postfix(train_loss=f"{loss.item():.4f}", refresh=False)
            self.batch_bar_.update()

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if self.batch_bar_ is not None:
            self.batch_bar_.close()
            self.batch_bar_ = None
        if self.epoch_bar_ is not None:
            last = {
                k: f"{row[k]:.4f}" for k in ("train_loss", "valid_loss") if k in row
            }
            self.epoch_bar_.set_postfix(last, refresh=False)
            self.epoch_bar_.update()
        if self.columns_ is None:
            self.columns_ = self._columns(row)
            note = loss_note(net)
            if note:
                print_progress(note)
            header = "  ".join(f"{key:>{w}}" for key, w in self.columns_)
            print_progress(header + "\n" + "  ".join("-" * w for _, w in self.columns_))
        print_progress("  ".join(_cell(row.get(key), w) for key, w in self.columns_))

    def on_train_end(self, net, **kwargs):
        self.close()

    def close(self):
        """Take the bars off the screen (also when training stopped on an error)."""
        for bar in (self.batch_bar_, self.epoch_bar_):
            if bar is not None:
                bar.close()
        self.epoch_bar_ = self.batch_bar_ = None

    def _columns(self, row):
        known = (
            ("epoch",) + self.losses + ("batches", "dur", "train_rows", "valid_rows")
        )
        others = [k for k in filter_log_keys(sorted(row), known) if _number(row[k])]
        keys = ["epoch", *(k for k in self.losses if k in row), *others, "dur"]
        keys = [key for key in keys if key in row]
        # Room for 4 decimals and 4 digits before the point in the losses.
        return [(key, max(len(key), 5 if key == "epoch" else 9)) for key in keys]

    @staticmethod
    def _bar(**kwargs):
        return tqdm(file=sys.stdout, leave=False, dynamic_ncols=True, **kwargs)

    def __getstate__(self):
        # Bars are for the screen only, and do not pickle.
        return {**self.__dict__, "epoch_bar_": None, "batch_bar_": None}


def loss_note(net):
    """What the table's loss is when it is not reconstruction + kl, or None.

    With ``beta`` or a KL warm-up the KL term is weighted; with several draws
    of z per row the loss is the importance-weighted bound, which is tighter
    than the ELBO whose terms (averaged over the draws) the table shows.
    """
    beta, warmup = net.criterion_.beta, net.kl_warmup_epochs
    if net.train_draws == 1 and beta == 1 and not warmup:
        return None
    kl = "kl" if beta == 1 else f"{beta:g} x kl"
    if warmup:
        kl += f" (in training, x a factor rising from 0 to 1 over {warmup} epochs)"
    if net.train_draws == 1:
        return f"note: loss = reconstruction + {kl}"
    return textwrap.fill(
        f"note: loss is the importance-weighted bound of {net.train_draws} draws "
        "of z per row (IWAE), not the sum of its terms: the reconstruction and "
        "kl columns average the ELBO's terms over the draws, and reconstruction "
        f"+ {kl} is at least the loss",
        width=88,
    )


def _number(value):
    return isinstance(value, Number) and not isinstance(value, bool)


def _cell(value, width):
    if not _number(value):
        return " " * width
    if isinstance(value, Integral):
        return f"{value:>{width}}"
    return f"{value:>{width}.4f}"


class StopWhenConverged(EarlyStopping):
    """skorch ``EarlyStopping`` that ignores the first ``skip_epochs`` epochs.

    During a KL warm-up the training loss rises by design as the KL weight
    grows, so those epochs must not count as "no improvement".
    """

    def __init__(self, *args, skip_epochs=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_epochs = skip_epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) > self.skip_epochs:
            super().on_epoch_end(net, **kwargs)


class _VAENet(NeuralNet):
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
        """
        self._set_training(False)
        module = self.module_
        generator = torch.Generator(device=self.device).manual_seed(seed)
        out = []
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
                out.append(x.cpu())
        return torch.cat(out)

    @torch.no_grad()
    def importance_sampled(self, fn, dataset, n_draws, seed, batch_size, **kwargs):
        """Apply an importance-sampling function (``log_marginal_likelihood``,
        ``posterior_mean``, ...) to the rows of a dataset, in batches.

        The draws of each row are keyed by its values and ``seed``
        (``row_keyed_normal``): a row's result does not depend on the other
        rows or the batching, repeated calls agree, and the errors of
        different rows are independent, so averages over rows are precise.

        Returns
        -------
        out : Tensor on the host, rows of ``fn`` concatenated
        """
        self._set_training(False)
        module = self.module_
        # K draws per row: shrink the batch so the decoder sees ~batch_size rows.
        rows = block_rows(batch_size // n_draws)
        out = []
        with self._threads(min(len(dataset), rows) * n_draws):
            for n, x, mask in padded_batches(BatchIterator(dataset, rows)):  # host
                eps = row_keyed_normal(x, n_draws, module.n_components, seed)
                x, eps = x.to(self.device, non_blocking=True), eps.to(self.device)
                mask = None if mask is None else mask.to(self.device)
                out.append(fn(module, x, eps, mask, **kwargs)[:n].cpu())
        return torch.cat(out)
