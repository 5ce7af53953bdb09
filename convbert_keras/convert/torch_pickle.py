"""Reads `torch.save` files (the zip format of torch >= 1.6) without torch.

Only plain tensors in (nested) dicts are accepted: the unpickler refuses any
other class, so loading a checkpoint cannot run code from it.
"""

import collections
import pickle
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def _bfloat16():
    import ml_dtypes

    return ml_dtypes.bfloat16


class _StorageType:
    def __init__(self, name):
        self.name = name

    @property
    def dtype(self):
        if self.name == "BFloat16Storage":
            return np.dtype(_bfloat16())
        if self.name not in _STORAGE_DTYPES:
            raise ValueError(f"Unsupported tensor storage type torch.{self.name}.")
        return np.dtype(_STORAGE_DTYPES[self.name])


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if not size:
        return storage[offset].copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=[s * itemsize for s in stride]
    )
    return np.array(view)


def _rebuild_parameter(tensor, *unused):
    return tensor


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"The checkpoint contains `{module}.{name}`, which is not a plain "
            "tensor; only state dicts of tensors can be read without torch."
        )

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"Unknown persistent id {kind!r}.")
        data = self._archive.read(f"{self._prefix}/data/{key}")
        return np.frombuffer(data, dtype=storage_type.dtype)


def load_torch_state_dict(path):
    """Returns `{name: np.ndarray}` from a `pytorch_model.bin` file."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a zip-format torch checkpoint. Files written by "
            "torch < 1.6 are not supported: re-save the model with a current "
            "torch, or use model.safetensors."
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path} has no single data.pkl record.")
        prefix = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as file:
            state = _Unpickler(file, archive, prefix).load()
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict.")
    return dict(state)
