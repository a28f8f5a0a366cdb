"""Saving and loading fitted models without pickle.

One ``.safetensors`` file holds the tensors (model weights, optimizer state
and fitted attributes that are arrays of numbers) and, in its header
metadata, a JSON document with the parameters, the other fitted attributes,
the per-epoch training history and the library versions, plus a SHA-256
digest of the document and of every tensor's name, dtype, shape
and bytes. Loading parses tensors and JSON only: it never executes code from
the file.

This module knows the file format only: it writes what an estimator's
``_fitted_state()`` gives, and hands what it reads to
``_restore_fitted_state`` of a new estimator, without importing an
estimator module or reading an estimator's private attributes.
"""

import hashlib
import json
import math
import os
import stat
import tempfile
from dataclasses import asdict
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import skorch
import torch

from ._schema import ColumnSchema, identity_schema
from ._sizing import TrainingPlan
from ._utils import VERSION, resolve_device

# Each file names the estimator class that wrote it: "skvae.VAETransformer".
FORMAT_PREFIX = "skvae."
# Version 2: the digest covers dtypes and shapes, parameters keep their types,
# the history is per epoch. Version 1 files are still read.
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_META_KEY = "skvae"
# Tensors of the fitted attributes that are arrays: "fitted.<name>".
_FITTED_PREFIX = "fitted."


def _digest(document, tensors, version=FORMAT_VERSION):
    """SHA-256 over the JSON document and every tensor, in name order.

    Each tensor contributes its name, dtype, shape and bytes: everything that
    decides what is loaded (version 1 left out dtypes and shapes).
    """
    sha = hashlib.sha256(document.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        sha.update(name.encode())
        if version >= 2:
            sha.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        sha.update(tensor.numpy().tobytes())
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


# Parameter values are stored as JSON, with tags for what JSON cannot tell
# apart (tuples from lists, non-finite floats, dicts with non-string keys).
def _encode(value, name):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, list):
        return [_encode(v, name) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, name) for v in value]}
    if isinstance(value, dict):
        return {
            "dict": [[_encode(k, name), _encode(v, name)] for k, v in value.items()]
        }
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": _encode(value.tolist(), name), "dtype": value.dtype.str}
    if isinstance(value, np.random.RandomState):
        return {"RandomState": _rng_state(value)}
    raise ValueError(
        f"save() cannot store {name}={value!r}: the file holds plain data only "
        "(numbers, strings, None, lists, tuples, dicts, arrays of numbers). Use "
        f"pickle or joblib to keep it, or set_params({name}=None) before saving "
        "if the fitted model does not need it."
    )


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    (tag,) = set(value) - {"dtype"}
    if tag == "tuple":
        return tuple(_decode(v) for v in value["tuple"])
    if tag == "dict":
        return {_decode(k): _decode(v) for k, v in value["dict"]}
    if tag == "float":
        return float(value["float"])
    if tag == "ndarray":
        return np.asarray(_decode(value["ndarray"]), dtype=value["dtype"])
    if tag == "RandomState":
        return _rng_from_state(value["RandomState"])
    raise ValueError(f"Unknown parameter encoding {tag!r}.")


def encode_params(params):
    """JSON-able form of ``get_params()``, decoded exactly by ``decode_params``.

    Values come back equal in value and type family (NumPy scalars as Python
    ints, floats and bools); a value that is not plain data is an error that
    names the parameter.
    """
    return {name: _encode(value, name) for name, value in params.items()}


def decode_params(encoded):
    """Parameters from the output of ``encode_params`` (after a JSON trip)."""
    return {name: _decode(value) for name, value in encoded.items()}


def _jsonable_params(params):
    params = dict(params)
    params["module"] = _qualified_name(params["module"])
    return encode_params(params)


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
    """Write a fitted skvae estimator to ``path`` (see module docstring)."""
    state = estimator._fitted_state()
    tensors = {
        f"module.{k}": v.detach().cpu().contiguous()
        for k, v in state["module"].state_dict().items()
    }
    optimizer_tensors, optimizer_rest = _optimizer_tensors(state["net"].optimizer_)
    tensors.update(optimizer_tensors)
    fitted = dict(state["fitted"])
    if "feature_names_in_" in fitted:  # last, as files have always held it
        fitted["feature_names_in_"] = list(fitted.pop("feature_names_in_"))
    # Arrays of numbers (the detector's training codes) as tensors, not as
    # JSON lists: the same bytes back, in a fraction of the space.
    for name in [k for k, v in fitted.items() if isinstance(v, np.ndarray)]:
        tensors[f"{_FITTED_PREFIX}{name}"] = torch.from_numpy(
            np.ascontiguousarray(fitted.pop(name))
        )
    try:
        document = json.dumps(
            {
                "format": FORMAT_PREFIX + type(estimator).__name__,
                "format_version": FORMAT_VERSION,
                "versions": _versions(),
                "params": _jsonable_params(state["params"]),
                "fitted": fitted,
                "n_features_in_": int(state["n_features_in"]),
                "private": {
                    "schema": state["schema"].to_json(),
                    "score_seed": int(state["score_seed"]),
                    "trained_on": str(state["device"]),
                    "rng_state": _rng_state(state["rng"]),
                    "training_plan": asdict(state["training_plan"]),
                },
                "optimizer": optimizer_rest,
                "history": _epoch_history(state["net"].history),
            },
            default=_numpy_scalar,
        )
    except TypeError as exc:
        raise ValueError(
            f"save() cannot store this model: {exc}. The file holds plain data "
            "only; categories must be strings, numbers or booleans (convert "
            "other values, such as dates, before fit), or use pickle or joblib."
        ) from None
    metadata = {_META_KEY: document, "sha256": _digest(document, tensors)}
    _atomic_write(path, safetensors.torch.save(tensors, metadata=metadata))


def _numpy_scalar(value):
    """JSON form of the NumPy scalars that end up in optimizer settings."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _epoch_history(history):
    """The per-epoch records of a skorch history, without per-batch ones.

    Per-batch records grow with the data (a million rows make thousands per
    epoch) and the safetensors header is capped at 100 MB; the epoch records
    carry the means of the batch values.
    """
    return [{k: v for k, v in epoch.items() if k != "batches"} for epoch in history]


def _rng_state(random_state):
    """The state of a ``RandomState`` as JSON-able lists."""
    name, keys, pos, has_gauss, cached = random_state.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _rng_from_state(state):
    """A ``RandomState`` in the state recorded by ``_rng_state``."""
    name, keys, pos, has_gauss, cached = state
    random_state = np.random.RandomState()
    random_state.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    return random_state


def _new_file_mode(path):
    """The mode ``open(path, "w")`` would give: kept if ``path`` exists, else
    0o666 less the process's umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it back
        os.umask(umask)
        return 0o666 & ~umask


def _atomic_write(path, data):
    """Write ``data`` to ``path`` so that a failure never leaves half a file."""
    path = Path(path)
    mode = _new_file_mode(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp creates the file readable by its owner only.
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _versions():
    return {
        "skvae": VERSION,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
    }


def _read(path, cls):
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
            f"written by {cls.__name__}.save): {exc}"
        ) from exc
    if _META_KEY not in metadata:
        raise ValueError(
            f"{str(path)!r} is a safetensors file but not a skvae model: it has no "
            f"'{_META_KEY}' metadata. Save models with {cls.__name__}.save."
        )
    document = metadata[_META_KEY]
    info = _parse(document, path, cls)
    if metadata.get("sha256") != _digest(document, tensors, info["format_version"]):
        raise ValueError(
            f"{str(path)!r} failed its integrity check: its contents changed after "
            "it was saved (corrupted or edited). Re-save the model from its source."
        )
    return tensors, info


def _parse(document, path, cls):
    try:
        info = json.loads(document)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{str(path)!r} failed its integrity check: its header is not valid "
            f"JSON ({exc}). Re-save the model from its source."
        ) from exc
    expected = FORMAT_PREFIX + cls.__name__
    if not isinstance(info, dict) or info.get("format") != expected:
        found = info.get("format") if isinstance(info, dict) else None
        hint = ""
        if isinstance(found, str) and found.startswith(FORMAT_PREFIX):
            hint = f" Load it with {found[len(FORMAT_PREFIX) :]}.load."
        raise ValueError(f"{str(path)!r} holds {found!r}, not {expected}.{hint}")
    version = info.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"{str(path)!r} uses model file format version {version}, but this "
            f"skvae ({_versions()['skvae']}) reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}. Load "
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
    tensors, info = _read(path, cls)
    if info["format_version"] == 1:  # plain JSON, sizes as a list
        params = dict(info["params"])
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    else:
        params = decode_params(info["params"])
    params["module"] = _check_module(params["module"], module)
    private = info["private"]
    on = _load_device(device, private["trained_on"])
    if device is not None or on != private["trained_on"]:
        params["device"] = on
    if "schema" in private:
        schema = ColumnSchema.from_json(private["schema"])
    else:  # version 1: one likelihood over numeric columns as given
        schema = identity_schema(
            info["n_features_in_"], params["likelihood"], private["dtype"]
        )
    fitted = dict(info["fitted"])
    if "feature_names_in_" in fitted:
        names = np.asarray(fitted.pop("feature_names_in_"), dtype=object)
        fitted = {"feature_names_in_": names, **fitted}
    for name, tensor in tensors.items():
        if name.startswith(_FITTED_PREFIX):
            fitted[name[len(_FITTED_PREFIX) :]] = tensor.numpy()
    try:
        optimizer_state = _optimizer_state(tensors, info["optimizer"])
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"The model file does not match its parameters: {exc}"
        ) from exc
    prefix = "module."
    estimator = cls(**params)
    return estimator._restore_fitted_state(
        {
            "fitted": fitted,
            "n_features_in": info["n_features_in_"],
            "schema": schema,
            "score_seed": private["score_seed"],
            "device": on,
            "rng": _rng_from_state(private["rng_state"]),
            # None in files written before "auto" training settings, whose
            # parameters hold the numbers the model was trained with.
            "training_plan": (
                TrainingPlan(**private["training_plan"])
                if "training_plan" in private
                else None
            ),
            "module_state": {
                k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)
            },
            "optimizer_state": optimizer_state,
            "history": info["history"],
        }
    )


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
