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


def _is_count(value):
    # bool is an int, but no size, stride or offset torch writes.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_view(storage, offset, size, stride):
    """Refuses a view that is malformed or reads outside its storage:
    `as_strided` does not check, so a crafted file could read memory."""
    if not isinstance(storage, np.ndarray):
        raise ValueError(
            f"A tensor is built on {type(storage).__name__}, not on a storage "
            "record; the file is corrupt or crafted."
        )
    if (
        not _is_count(offset)
        or not isinstance(size, tuple)
        or not isinstance(stride, tuple)
        or len(size) != len(stride)
        or not all(_is_count(n) for n in size + stride)
    ):
        raise ValueError(
            f"Malformed tensor view: offset {offset!r}, size {size!r}, stride "
            f"{stride!r}; expected a non-negative offset and as many "
            "non-negative sizes as strides. The file is corrupt or crafted."
        )
    if 0 in size:
        return  # reads nothing
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if needed > len(storage):
        raise ValueError(
            f"A tensor view reads past its storage: offset {offset}, size "
            f"{size}, stride {stride} needs {needed} elements, the storage has "
            f"{len(storage)}; the file is corrupt or crafted."
        )


def _rebuild_tensor(storage, offset, size, stride, *unused):
    _check_view(storage, offset, size, stride)
    if not size:
        return storage[offset].copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * itemsize for s in stride]
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
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unknown persistent id {pid!r}.")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not _is_count(numel):
            raise pickle.UnpicklingError(f"Malformed storage record {pid!r}.")
        name = f"{self._prefix}/data/{key}"
        try:
            data = self._archive.read(name)
        except KeyError:
            raise ValueError(
                f"The checkpoint refers to storage {name}, which the archive "
                "lacks; the file is truncated or corrupt."
            ) from None
        dtype = storage_type.dtype
        if len(data) != numel * dtype.itemsize:
            raise ValueError(
                f"Storage {name} holds {len(data)} bytes, but its record "
                f"claims {numel} torch.{storage_type.name} elements "
                f"({numel * dtype.itemsize} bytes); the file is corrupt or "
                "crafted."
            )
        return np.frombuffer(data, dtype=dtype)


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
