"""Writes seresnet50_01_params.pth: the state_dict of testdata/pytorch-1.13-networks/01_seresnet50_eval saved with
torch.save (the values of its params.safetensors, same names, dtypes and order, num_batches_tracked as int64).
For the maintainers, with Debian's python3-torch; the tests only read the file it wrote."""
import json, struct, collections, sys
import numpy as np, torch

src = "testdata/pytorch-1.13-networks/01_seresnet50_eval/params.safetensors"
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
header.pop("__metadata__", None)
types = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}
sd = collections.OrderedDict()
for name, e in header.items():
    b, end = e["data_offsets"]
    arr = np.frombuffer(data[b:end], dtype=types[e["dtype"]]).reshape(e["shape"])
    sd[name] = torch.from_numpy(arr.copy())
torch.save(sd, "testdata/pth/seresnet50_01_params.pth")
print(len(sd), "tensors")
