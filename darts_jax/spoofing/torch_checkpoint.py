"""PyTorch checkpoints read without PyTorch: a restricted unpickler for `torch.save`'s zip format.

A checkpoint is untrusted input. `pickle.load` on it would import and call any global the file names
(`os.system`, say), so this reader resolves only the handful of globals a state dict needs and
refuses every other one before anything runs.

The format (`torch.save` since PyTorch 1.6, `_use_new_zipfile_serialization=True`):

- A zip archive whose entries all sit under one top folder `<root>/` (`archive/` from recent
  versions, the file's stem from older ones). Entries are stored uncompressed.
- `<root>/data.pkl`: a pickle (protocol 2) of the object saved; for a state dict a
  `collections.OrderedDict` {name: tensor}.
- Each tensor is pickled as a call of `torch._utils._rebuild_tensor_v2(storage, storage_offset,
  size, stride, requires_grad, backward_hooks[, metadata])`, where `backward_hooks` is an empty
  `collections.OrderedDict` and `size`, `stride` count elements. (`torch._utils._rebuild_parameter(
  tensor, requires_grad, backward_hooks)` wraps one when an `nn.Parameter` itself was saved.)
- `storage` is a *persistent id* (pickle's BINPERSID), the tuple `("storage", storage_type, key,
  location, numel)`: `storage_type` a global such as `torch.FloatStorage` (it fixes the dtype),
  `key` a string naming the entry `<root>/data/<key>` that holds the storage's raw bytes, `location`
  the device it was saved from (`cpu`, `cuda:0`; ignored here) and `numel` its length in elements.
- `<root>/byteorder` (optional, `little` or `big`; absent means little-endian) and `<root>/version`.

Tensors come back as NumPy arrays in PyTorch's own layout (e.g. conv weights (out, in, kh, kw)).
The legacy pre-1.6 format (a bare pickle stream, no zip) is refused with a clear message.
"""
from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

# torch.<Name>Storage -> NumPy dtype. BFloat16 has no NumPy dtype and is refused by name.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError, ValueError):
    """The checkpoint's pickle names a global that a state dict never needs."""


class _StorageType:
    """Stands in for `torch.<Name>Storage` in the persistent ids: carries only the dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])

    def __call__(self, *args):
        # A state dict only names storage types in persistent ids; building one is not a tensor load.
        raise UnsafeCheckpointError(f"the pickle calls torch.{self.name}(...), which a state dict never does")


def _rebuild_tensor(storage: np.ndarray, storage_offset: int, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None) -> np.ndarray:
    """`torch._utils._rebuild_tensor_v2` on a NumPy storage, bounds checked, as a fresh contiguous array."""
    size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
    if len(size) != len(stride) or min(size + stride + (storage_offset,), default=0) < 0:
        raise pickle.UnpicklingError(f"tensor with size {size}, stride {stride}, offset {storage_offset} is malformed")
    if 0 not in size:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.size:
            raise pickle.UnpicklingError(f"tensor with size {size}, stride {stride}, offset {storage_offset} "
                                         f"reads past its storage of {storage.size} elements")
    # as_strided over a read-only buffer, then a copy, so no array aliases the zip's bytes.
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], size,
                                           tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)


def _rebuild_parameter(tensor, requires_grad=False, backward_hooks=None) -> np.ndarray:
    return tensor


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, root: str, byteorder: str, where: str):
        super().__init__(file)
        self._archive, self._root, self._byteorder, self._where = archive, root, byteorder, where

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self._where}: the pickle asks for the global {module}.{name}, which a state dict never needs; "
            f"refusing to load it (only tensors, storages and OrderedDict are allowed)")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage"):
            raise UnsafeCheckpointError(f"{self._where}: unknown persistent id {saved_id!r}")
        _, storage_type, key, _location, numel = saved_id
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"{self._where}: persistent id names {storage_type!r}, not a storage type")
        entry = f"{self._root}/data/{key}"
        try:
            raw = self._archive.read(entry)
        except KeyError:
            raise pickle.UnpicklingError(f"{self._where}: storage {entry} is missing from the archive") from None
        dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        if len(raw) != numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"{self._where}: storage {entry} has {len(raw)} bytes, expected "
                                         f"{numel} x {dtype.itemsize}")
        return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """{name: array} of a `torch.save`d state dict, reading nothing but tensors (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a zip-format PyTorch checkpoint (the legacy pre-1.6 format is not read); "
                         f"re-save it with torch.save(state_dict, file) from PyTorch >= 1.6")
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one <root>/data.pkl entry in the archive, found {pickles}")
        root = pickles[0].split("/")[0]
        names = set(archive.namelist())
        byteorder = archive.read(f"{root}/byteorder").decode().strip() if f"{root}/byteorder" in names else "little"
        if byteorder not in ("little", "big"):
            raise ValueError(f"{path}: {root}/byteorder says {byteorder!r}, expected little or big")
        with archive.open(pickles[0]) as stream:
            try:
                state = _RestrictedUnpickler(stream, archive, root, byteorder, str(path)).load()
            except UnsafeCheckpointError:
                raise
            except (pickle.UnpicklingError, TypeError, IndexError, EOFError, AttributeError) as err:
                raise ValueError(f"{path}: malformed checkpoint ({err})") from None
    if not isinstance(state, dict):  # a ValueError, like every other bad-input error of this reader
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    bad = [name for name, value in state.items() if not isinstance(name, str) or not isinstance(value, np.ndarray)]
    if bad:
        raise ValueError(f"{path}: entries {bad[:5]} are not tensors; save model.state_dict() itself")
    return dict(state)
