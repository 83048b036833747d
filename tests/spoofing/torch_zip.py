"""Writes PyTorch's zip checkpoint format without PyTorch, pickle opcode by opcode.

The layout is the one documented in darts_jax/spoofing/torch_checkpoint.py; it is written here
independently of that reader so the tests check the reader against the format, not against itself.
"""
import struct
import zipfile

import numpy as np

STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                 np.dtype(np.int64): "LongStorage", np.dtype(np.float16): "HalfStorage"}

PROTO_2, STOP, MARK, TUPLE, EMPTY_TUPLE, REDUCE = b"\x80\x02", b".", b"(", b"t", b")", b"R"
BINPERSID, NEWFALSE, SETITEMS = b"Q", b"\x89", b"u"


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_text(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def op_tuple(items) -> bytes:
    return MARK + b"".join(items) + TUPLE


def _empty_ordered_dict() -> bytes:
    return op_global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE


def tensor_pickle(storage_key: str, dtype, numel: int, offset: int, size, stride) -> bytes:
    """`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`."""
    storage = op_tuple([op_text("storage"), op_global("torch", STORAGE_NAMES[np.dtype(dtype)]),
                        op_text(storage_key), op_text("cpu"), op_int(numel)]) + BINPERSID
    arguments = op_tuple([storage, op_int(offset), op_tuple(map(op_int, size)), op_tuple(map(op_int, stride)),
                          NEWFALSE, _empty_ordered_dict()])
    return op_global("torch._utils", "_rebuild_tensor_v2") + arguments + REDUCE


def write_checkpoint(path, tensors: dict, storages: dict, root: str = "archive") -> None:
    """`tensors`: name -> (storage key, offset, size, stride) in elements; `storages`: key -> 1-D array."""
    items = b"".join(op_text(name) + tensor_pickle(key, storages[key].dtype, storages[key].size, offset, size, stride)
                     for name, (key, offset, size, stride) in tensors.items())
    write_archive(path, PROTO_2 + _empty_ordered_dict() + MARK + items + SETITEMS + STOP,
                  {key: array.astype(array.dtype.newbyteorder("<")).tobytes() for key, array in storages.items()},
                  root)


def write_archive(path, data_pkl: bytes, records: dict, root: str = "archive") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/data.pkl", data_pkl)
        for key, data in records.items():
            archive.writestr(f"{root}/data/{key}", data)
        archive.writestr(f"{root}/version", "3\n")


def write_state_dict(path, state: dict) -> None:
    """Each array in its own contiguous storage, as torch.save writes a state dict."""
    tensors, storages = {}, {}
    for index, (name, array) in enumerate(state.items()):
        array = np.asarray(array, order="C")  # ascontiguousarray would make a 0-d array 1-d
        strides = tuple(s // array.itemsize for s in array.strides)
        tensors[name] = (str(index), 0, array.shape, strides)
        storages[str(index)] = array.reshape(-1)
    write_checkpoint(path, tensors, storages)
