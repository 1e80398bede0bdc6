#!/usr/bin/env python3
"""Writes the .pth fixtures of Attention.Reference.Tests/IO/PthTests.cs, and expected.json with their exact values.

Run from anywhere with a PyTorch installation (the committed files were made with Debian's python3-torch, 1.13):

    /usr/bin/python3 testdata/pth/make_fixtures.py

The tests never run this script; they read the files it wrote. Every file is a few KB.
"""
import collections
import io
import json
import math
import os
import pickle
import zipfile

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))

# The file the malicious pickle would create if a reader executed it; the tests assert it never appears.
PWNED_MARKER = "/tmp/attention-pth-fixture-pwned"

DTYPE_NAMES = {
    torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def path(name):
    return os.path.join(HERE, name)


def json_value(x):
    """A double as JSON: a number (Python's repr round-trips exactly), or a string for the non-finite ones."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def describe(state_dict):
    """name → dtype, shape and values in C order, widened exactly to float64."""
    return {
        name: {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "values": [json_value(v) for v in t.detach().to(torch.float64).flatten().tolist()],
        }
        for name, t in state_dict.items()
    }


def sequential():
    """A trained-for-one-step Conv2d → BatchNorm2d → Linear, so the running stats and num_batches_tracked are set."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Linear(4, 2))
    model.train()
    model(torch.randn(2, 3, 5, 6))  # conv → (2, 4, 3, 4); the Linear acts on the last axis (4)
    return model


def save_to_bytes(obj, **kwargs):
    """torch.save into memory: the archive folder is then called 'archive', as with newer PyTorch."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


class FakeStorage:
    """Stands for a storage in a hand-made pickle; the pickler below turns it into torch's persistent id."""

    def __init__(self, storage_type, key, numel):
        self.storage_type, self.key, self.numel = storage_type, key, numel


class TensorRef:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return "storage", obj.storage_type, obj.key, "cpu", obj.numel
        return None


def write_zip(name, prefix, pickle_bytes, records):
    """A zip in torch's layout: <prefix>/data.pkl, <prefix>/data/<key>, <prefix>/version, all stored uncompressed."""
    with zipfile.ZipFile(path(name), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", pickle_bytes)
        for key, data in records.items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", "3\n")


def main():
    expected = {}

    # 1. float32 state_dict, saved to a named file (PyTorch 1.13 names the archive folder after the file).
    sd = sequential().state_dict()
    torch.save(sd, path("sequential_f32.pth"))
    expected["sequential_f32.pth"] = describe(sd)

    # 2. the same model in float64, saved through memory (archive folder 'archive').
    sd64 = sequential().double().state_dict()
    with open(path("sequential_f64.pth"), "wb") as f:
        f.write(save_to_bytes(sd64))
    expected["sequential_f64.pth"] = describe(sd64)

    # 3. views: a transpose (strides (1, 3)), a slice with a storage offset, a strided slice, two views of one storage.
    base = torch.arange(12.0)
    views = collections.OrderedDict()
    views["w"] = torch.arange(6.0).reshape(2, 3).t()
    views["tail"] = torch.arange(10.0)[3:7]
    views["strided"] = base.reshape(3, 4)[:, ::2]
    views["again"] = base.reshape(4, 3)[1:, 1]
    views["scalar"] = base[5]
    torch.save(views, path("views.pth"))
    expected["views.pth"] = describe(views)

    # 4. float16 and bfloat16, with their special values.
    half = collections.OrderedDict()
    half["h"] = torch.tensor([1.5, -0.0, 2.0 ** -24, 65504.0, math.inf, -math.inf, 0.1, -3.0], dtype=torch.float16)
    half["b"] = torch.tensor([[3.140625, -2.0], [1e-30, 3e38]], dtype=torch.bfloat16)
    torch.save(half, path("half.pth"))
    expected["half.pth"] = describe(half)

    # 5. every integer type and bool.
    ints = collections.OrderedDict()
    ints["i64"] = torch.tensor([-(2 ** 53), -1, 0, 2 ** 53], dtype=torch.int64)
    ints["i32"] = torch.tensor([-(2 ** 31), 2 ** 31 - 1], dtype=torch.int32)
    ints["i16"] = torch.tensor([-(2 ** 15), 2 ** 15 - 1], dtype=torch.int16)
    ints["i8"] = torch.tensor([[-128, 127], [0, -1]], dtype=torch.int8)
    ints["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    ints["mask"] = torch.tensor([True, False, True], dtype=torch.bool)
    torch.save(ints, path("ints.pth"))
    expected["ints.pth"] = describe(ints)

    # 6. a DataParallel-style state_dict: every key has the 'module.' prefix.
    dp = nn.DataParallel(sequential()).state_dict()
    assert all(k.startswith("module.") for k in dp)
    torch.save(dp, path("dataparallel.pth"))
    expected["dataparallel.pth"] = describe(dp)

    # 7. pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL) and an nn.Parameter (_rebuild_parameter).
    p4 = collections.OrderedDict()
    p4["weight"] = nn.Parameter(torch.tensor([[0.5, -1.25], [2.0, 8.0]]))
    p4["bias"] = torch.tensor([1.0, 2.0], dtype=torch.float64)
    with open(path("protocol4.pth"), "wb") as f:
        f.write(save_to_bytes(p4, pickle_protocol=4))
    expected["protocol4.pth"] = describe(p4)

    # 8. malicious: data.pkl calls os.system. Written opcode by opcode, because pickling os.system itself would name
    #    posix.system; this is what a hostile file names. Never load it with pickle or torch.load(weights_only=False).
    evil = (b"\x80\x02"                                      # PROTO 2
            b"cos\nsystem\n"                                 # GLOBAL 'os system'
            + b"X" + len(f"echo pwned > {PWNED_MARKER}").to_bytes(4, "little")
            + f"echo pwned > {PWNED_MARKER}".encode()        # BINUNICODE the command
            + b"\x85"                                        # TUPLE1
            b"R"                                             # REDUCE: os.system(command)
            b".")                                            # STOP
    write_zip("malicious.pth", "archive", evil, {})

    # 9. a tensor of shape (4, 5) on a storage of 10 float32 (40 bytes; the tensor needs 80).
    short = io.BytesIO()
    TorchLikePickler(short, protocol=2).dump(collections.OrderedDict(
        [("fc.weight", TensorRef(FakeStorage(torch.FloatStorage, "0", 10), 0, (4, 5), (5, 1)))]))
    write_zip("short_storage.pth", "archive", short.getvalue(), {"0": torch.arange(10.0).numpy().tobytes()})

    with open(path("expected.json"), "w") as f:  # one line per tensor
        files = []
        for name, tensors in expected.items():
            lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in tensors.items()]
            files.append(f" {json.dumps(name)}: {{\n" + ",\n".join(lines) + "\n }")
        f.write("{\n" + ",\n".join(files) + "\n}\n")

    # Parity: PyTorch's own weights_only loader reads every good fixture to the same values, and refuses the evil one.
    for name, tensors in expected.items():
        if name == "protocol4.pth":
            loaded = torch.load(path(name))  # PyTorch 1.13's weights_only unpickler lacks the protocol 4 opcodes
        else:
            loaded = torch.load(path(name), weights_only=True)
        assert list(loaded) == list(tensors), name
        assert describe(loaded) == tensors, name
    try:
        torch.load(path("malicious.pth"), weights_only=True)
        raise AssertionError("torch.load(weights_only=True) accepted malicious.pth")
    except pickle.UnpicklingError:
        pass
    except RuntimeError:
        pass
    assert not os.path.exists(PWNED_MARKER)


if __name__ == "__main__":
    main()
