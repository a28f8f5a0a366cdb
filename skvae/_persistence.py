"""Saving and loading fitted models without pickle.

One ``.safetensors`` file holds the tensors (model weights and optimizer
state) and, in its header metadata, a JSON document with the parameters, the
fitted attributes, the library versions and a SHA-256 digest of everything.
Loading parses tensors and JSON only: it never executes code from the file.
"""

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import skorch
import torch

from ._utils import resolve_device, torch_seeded

FORMAT = "skvae.VAETransformer"
FORMAT_VERSION = 1
_META_KEY = "skvae"
_FITTED = ("n_iter_", "loss_curve_", "validation_scores_", "best_epoch_")


def _digest(document, tensors):
    """SHA-256 over the JSON document and every tensor, in name order."""
    sha = hashlib.sha256(document.encode())
    for name in sorted(tensors):
        sha.update(name.encode())
        sha.update(tensors[name].numpy().tobytes())
    return sha.hexdigest()


def _optimizer_tensors(optimizer):
    """Split an optimizer's state into named tensors and a JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, slots in state["state"].items():
        for slot, value in slots.items():
            key = f"{param_id}.{slot}"
            if torch.is_tensor(value):
                tensors[f"optimizer.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _jsonable_params(estimator):
    params = estimator.get_params()
    dropped = []
    if params["callbacks"] is not None:
        params["callbacks"] = None
        dropped.append("callbacks")
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None
        dropped.append("random_state")
    if dropped:
        warnings.warn(
            f"save() stores {', '.join(dropped)} as None: these objects are not "
            "plain data. Use pickle or joblib to keep them.",
            UserWarning,
            stacklevel=3,
        )
    params["hidden_layer_sizes"] = list(np.atleast_1d(params["hidden_layer_sizes"]))
    params["module"] = _qualified_name(params["module"])
    return json.loads(json.dumps(params, default=int))


def _qualified_name(cls):
    return None if cls is None else f"{cls.__module__}.{cls.__qualname__}"


def _check_module(saved_name, module):
    """The class to rebuild a model with; the file only names it."""
    if _qualified_name(module) == saved_name:
        return module
    if module is None:
        raise ValueError(
            f"This model was saved with the custom module {saved_name}. Loading "
            "never imports code named by a file: pass the class yourself, "
            f"VAETransformer.load(path, module={saved_name.rsplit('.', 1)[-1]})."
        )
    raise ValueError(
        f"module={_qualified_name(module)} does not match the module the model "
        f"was saved with ({saved_name})."
    )


def save_model(estimator, path):
    """Write a fitted ``VAETransformer`` to ``path`` (see module docstring)."""
    net = estimator.net_
    tensors = {
        f"module.{k}": v.detach().cpu().contiguous()
        for k, v in net.module_.state_dict().items()
    }
    optimizer_tensors, optimizer_rest = _optimizer_tensors(net.optimizer_)
    tensors.update(optimizer_tensors)
    fitted = {name: getattr(estimator, name) for name in _FITTED}
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = list(estimator.feature_names_in_)
    document = json.dumps(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "versions": _versions(),
            "params": _jsonable_params(estimator),
            "fitted": fitted,
            "n_features_in_": int(estimator.n_features_in_),
            "private": {
                "dtype": np.dtype(estimator._dtype).name,
                "score_seed": int(estimator._score_seed),
                "trained_on": str(estimator._device),
                "rng_state": _rng_state(estimator._rng),
            },
            "optimizer": optimizer_rest,
            "history": net.history.to_list(),
        }
    )
    metadata = {_META_KEY: document, "sha256": _digest(document, tensors)}
    _atomic_write(path, safetensors.torch.save(tensors, metadata=metadata))


def _rng_state(random_state):
    """The state of a ``RandomState`` as JSON-able lists."""
    name, keys, pos, has_gauss, cached = random_state.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _atomic_write(path, data):
    """Write ``data`` to ``path`` so that a failure never leaves half a file."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _versions():
    from . import __version__

    return {
        "skvae": __version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
    }


def _read(path):
    """Tensors and the parsed JSON document of a model file, verified."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a readable safetensors file (truncated or not "
            f"written by VAETransformer.save): {exc}"
        ) from exc
    if _META_KEY not in metadata:
        raise ValueError(
            f"{str(path)!r} is a safetensors file but not a skvae model: it has no "
            f"'{_META_KEY}' metadata. Save models with VAETransformer.save."
        )
    document = metadata[_META_KEY]
    if metadata.get("sha256") != _digest(document, tensors):
        raise ValueError(
            f"{str(path)!r} failed its integrity check: its contents changed after "
            "it was saved (corrupted or edited). Re-save the model from its source."
        )
    return tensors, _parse(document, path)


def _parse(document, path):
    info = json.loads(document)
    if info.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} holds {info.get('format')!r}, not {FORMAT}.")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} uses model file format version {version}, but this "
            f"skvae ({_versions()['skvae']}) reads version {FORMAT_VERSION}. Load "
            f"it with the skvae version that wrote it ({info['versions']['skvae']}) "
            "and re-save it, or refit."
        )
    return info


def _load_device(device, trained_on):
    if device is not None:
        return resolve_device(device)
    if trained_on.startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return trained_on


def load_model(cls, path, device=None, module=None):
    """Rebuild a fitted estimator of class ``cls`` from a file of ``save_model``."""
    tensors, info = _read(path)
    params = info["params"]
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    params["module"] = _check_module(params["module"], module)
    estimator = cls(**params)
    private = info["private"]
    estimator._device = _load_device(device, private["trained_on"])
    if device is not None or estimator._device != private["trained_on"]:
        estimator.device = estimator._device
    estimator._dtype = np.dtype(private["dtype"])
    estimator._score_seed = private["score_seed"]
    name, keys, pos, has_gauss, cached = private["rng_state"]
    estimator._rng = np.random.RandomState()
    estimator._rng.set_state(
        (name, np.asarray(keys, np.uint32), pos, has_gauss, cached)
    )
    estimator.n_features_in_ = info["n_features_in_"]
    fitted = info["fitted"]
    if "feature_names_in_" in fitted:
        estimator.feature_names_in_ = np.asarray(
            fitted.pop("feature_names_in_"), dtype=object
        )
    for name, value in fitted.items():
        setattr(estimator, name, value)
    net = _restore_net(estimator, tensors, info)
    estimator.net_, estimator.history_ = net, net.history
    return estimator


def _restore_net(estimator, tensors, info):
    from ._estimator import _check_hidden_layer_sizes

    hidden = _check_hidden_layer_sizes(estimator.hidden_layer_sizes)
    net = estimator._build_net(estimator.n_features_in_, hidden)
    with torch_seeded(0, estimator._device):  # initial weights are overwritten
        net.initialize()
    prefix = "module."
    module_state = {
        k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)
    }
    try:
        net.module_.load_state_dict(module_state)
        state = _optimizer_state(tensors, info["optimizer"])
        # Keep this machine's kernel choice (fused or not), not the saver's.
        for saved, current in zip(state["param_groups"], net.optimizer_.param_groups):
            for key in ("fused", "foreach"):
                if key in current:
                    saved[key] = current[key]
        net.optimizer_.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ValueError(
            f"The model file does not match its parameters: {exc}"
        ) from exc
    net.module_.to(estimator._device)
    net.history = skorch.history.History(info["history"])
    return net


def _optimizer_state(tensors, rest):
    state = {}
    for key, value in rest["scalars"].items():
        param_id, slot = key.split(".", 1)
        state.setdefault(int(param_id), {})[slot] = value
    prefix = "optimizer."
    for name, value in tensors.items():
        if name.startswith(prefix):
            param_id, slot = name[len(prefix) :].split(".", 1)
            state.setdefault(int(param_id), {})[slot] = value
    return {"state": state, "param_groups": rest["param_groups"]}
