"""The fitted state of the estimators: the one interface to the layers below.

``save``/``load`` (``_persistence``) and the ONNX export (``_onnx``) see a
fitted estimator only through ``_fitted_state()``, a dict of plain parts, and
``_restore_fitted_state(state)``; the ONNX export finds the estimators that
declare a graph (class attribute ``_onnx_graph``) through
``declare_exportable``. So neither imports an estimator module nor reads an
estimator's private attributes.
"""

import copy

from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._onnx import converter, declare_exportable, hook_parser, shape_calculator
from ._persistence import load_model, save_model
from ._utils import forked_rng


class FittedStateMixin:
    """The fitted state, ``save``/``load`` and the skl2onnx hooks of
    ``_BaseVAE`` (which builds the net, ``_build_net``)."""

    # Fitted attributes that save() stores, besides the network.
    _saved_attributes = (
        "n_iter_",
        "loss_curve_",
        "validation_scores_",
        "best_epoch_",
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # An estimator that declares its ONNX graph is exportable; subclasses
        # that inherit the declaration (such as users' own) are not
        # registered with skl2onnx.
        if "_onnx_graph" in vars(cls):
            declare_exportable(cls)

    # -------------------------------------------------------- fitted state
    def _fitted_state(self):
        """The fitted model in parts, as a dict: ``params`` (``get_params()``),
        ``fitted`` (the fitted attributes that ``save`` stores, by name),
        ``n_features_in``, ``schema`` (the ``ColumnSchema``), ``net`` (the
        skorch net) and ``module`` (its ``VAEModule``), ``score_seed`` and
        ``score_draws`` (the draws of ``score_samples``), ``device``, ``rng``
        (the generator of further draws) and ``training_plan`` (the
        ``TrainingPlan`` that the net was built with)."""
        check_is_fitted(self)
        fitted = {name: getattr(self, name) for name in self._saved_attributes}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = self.feature_names_in_
        return {
            "params": self.get_params(),
            "fitted": fitted,
            "n_features_in": self.n_features_in_,
            "schema": self._schema,
            "net": self.net_,
            "module": self.net_.module_,
            "score_seed": self._score_seed,
            "score_draws": self._score_draws,
            "device": self._device,
            "rng": self._rng,
            "training_plan": self._plan,
        }

    def _restore_fitted_state(self, state):
        """Become the fitted model of ``state``, as ``load`` reads it: the
        parts of ``_fitted_state`` but ``params`` (given to the constructor),
        with the net as ``module_state``, ``optimizer_state`` (state dicts)
        and ``history`` (its records) in place of ``net`` and ``module``.
        Returns the estimator."""
        self._device = state["device"]
        self._schema = state["schema"]
        self.likelihoods_ = self._schema.likelihoods_by_name
        self._score_seed = state["score_seed"]
        self._plan = state["training_plan"] or self._training_plan(0)
        self.n_features_in_ = state["n_features_in"]
        for name, value in state["fitted"].items():
            setattr(self, name, value)
        # Building the net draws from _rng (the seed of early stopping's
        # split): the saved generator comes back after it, so that the next
        # draws, such as the imputer's sample_posterior fills, are those the
        # saved model would have made.
        self._rng = copy.deepcopy(state["rng"])
        net = self._restored_net(state)
        self._rng = state["rng"]
        self.net_, self.history_ = net, net.history
        self._after_load()
        return self

    def _restored_net(self, state):
        """A net with the weights, optimizer state and history of ``state``."""
        net = self._build_net()
        with forked_rng(0, self._device):  # initial weights are overwritten
            net.initialize()
        optimizer_state = state["optimizer_state"]
        try:
            net.module_.load_state_dict(state["module_state"])
            # Keep this machine's kernel choice (fused or not), not the saver's.
            pairs = zip(optimizer_state["param_groups"], net.optimizer_.param_groups)
            for saved, current in pairs:
                for key in ("fused", "foreach"):
                    if key in current:
                        saved[key] = current[key]
            net.optimizer_.load_state_dict(optimizer_state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(
                f"The model file does not match its parameters: {exc}"
            ) from exc
        net.module_.to(self._device)
        net.history = History(state["history"])
        return net

    def _after_load(self):
        """Rebuild what a fitted estimator derives from its saved state."""

    # --------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted model to one file, without pickle.

        The weights and optimizer state are stored with safetensors; the
        parameters, fitted attributes, column schema (categories, per-column
        likelihoods and transforms), feature names, per-epoch training history
        and library versions as JSON in the file's header, with a SHA-256
        digest of it all. The file is written to a temporary name first and
        then renamed, so an existing file at ``path`` is never left
        half-written.

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
        file. A truncated, edited or foreign file, one written by another
        estimator class, or one written in an unknown format version, raises
        ``ValueError`` with the reason.

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
        estimator : object
            The fitted estimator, with the same outputs as the saved one.
        """
        return load_model(cls, path, device=device, module=module)

    # ---------------------------------------------------------------- ONNX
    # skl2onnx calls these hooks for classes that have no registered
    # converter, so that skl2onnx.to_onnx converts skvae's estimators, and
    # pipelines holding them, without a registration step (see skvae.to_onnx).
    def onnx_parser(self):
        """skl2onnx hook: declares the outputs of the ONNX graph."""
        return hook_parser(self)

    def onnx_shape_calculator(self):
        """skl2onnx hook: sets the types and shapes of the graph's outputs."""
        return shape_calculator

    def onnx_converter(self):
        """skl2onnx hook: writes the ONNX graph (see ``skvae.to_onnx``)."""
        return converter
