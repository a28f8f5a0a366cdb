"""skorch callbacks of ``VAENet``: progress, roll-back, data-parallel
averaging and convergence.
"""

import sys
import textwrap
import warnings
from copy import deepcopy
from numbers import Integral, Number

import torch
from skorch.callbacks import Callback, EarlyStopping
from skorch.callbacks.logging import filter_log_keys
from tqdm import tqdm

from ._utils import process_group


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
