"""Training settings that follow the size of the data.

``max_epochs``, ``batch_size`` and ``early_stopping`` take ``"auto"``: on up
to ``SMALL_DATA`` rows they are the estimator's fixed small-data settings
(the classic MNIST model's 100 epochs of 128 rows for ``VAETransformer``);
beyond, an epoch holds more of the data's information, so fewer of them are
needed, and a held-out share is worth its rows:

- epochs shrink as the square root of the rows (``small_epochs *
  sqrt(SMALL_DATA / n)``, at least ``MIN_EPOCHS``), so that time to a model
  grows as sqrt(n) rather than n;
- batches keep their small-data size below ``BATCH_GROWTH_START`` rows and
  double each time the rows grow fourfold beyond (at most
  ``MAX_BATCH_GROWTH``-fold): more rows per step cost little more time per
  step, and a million rows leave enough steps per epoch;
- early stopping holds out ``validation_fraction`` of the rows and keeps the
  best epoch (as scikit-learn's histogram gradient boosting does above
  10,000 rows), and the learning rate follows a cosine from
  ``learning_rate`` down to 0 over ``max_epochs``, so that the last epochs
  are not the noisy ones of a constant rate.

On diamonds (53,940 rows, ``VAETransformer``), SDMetrics' quality of the
samples was 0.945 after 40 epochs and 0.964-0.966 after 60 or 100 (held-out
share, cosine or constant rate), and batches of 256 or 512 rows for 60 epochs
gave 0.945 and 0.941: the plan gives diamonds 61 epochs of 128 rows.

An explicit value of any parameter is used as given. ``partial_fit`` trains
one epoch per call, without a held-out share or a schedule. The figures
behind the constants are in benchmarks/README.md ("Big tables").
"""

import math
from dataclasses import dataclass

AUTO = "auto"
SMALL_DATA = 20_000
MIN_EPOCHS = 10
BATCH_GROWTH_START = 100_000
MAX_BATCH_GROWTH = 8


@dataclass(frozen=True)
class TrainingPlan:
    """What a fit runs: epochs, rows per step, hold-out and schedule."""

    max_epochs: int
    batch_size: int
    early_stopping: bool
    lr_schedule: str | None


def plan_training(
    n_samples, max_epochs, batch_size, early_stopping, small_data, incremental=False
):
    """The ``TrainingPlan`` of a fit on ``n_samples`` rows.

    ``max_epochs``, ``batch_size`` and ``early_stopping`` are the estimator's
    parameters (each an explicit value or ``"auto"``); ``small_data`` is its
    plan on small data (epochs, batch size and its own learning-rate
    schedule, kept on any data). ``incremental`` is for ``partial_fit``.
    """
    big = n_samples > SMALL_DATA and not incremental
    epochs = max_epochs
    if epochs == AUTO:
        epochs = small_data.max_epochs
        if big:
            shrink = math.sqrt(SMALL_DATA / n_samples)
            epochs = max(MIN_EPOCHS, min(epochs, round(epochs * shrink)))
    if batch_size == AUTO:
        batch_size = small_data.batch_size * _batch_growth(n_samples)
    if early_stopping == AUTO:
        early_stopping = big
    elif incremental:
        early_stopping = False
    schedule = small_data.lr_schedule
    if schedule is None and big and max_epochs == AUTO:
        schedule = "cosine"
    return TrainingPlan(int(epochs), int(batch_size), bool(early_stopping), schedule)


def _batch_growth(n_samples):
    """1 below ``BATCH_GROWTH_START`` rows, then x2 per fourfold growth."""
    if n_samples < BATCH_GROWTH_START:
        return 1
    doublings = math.floor(math.log(n_samples / BATCH_GROWTH_START, 4))
    return min(MAX_BATCH_GROWTH, 2**doublings)
