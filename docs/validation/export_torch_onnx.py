# Validation for maintainers (never run by the tests): exports four eval-mode cases of
# testdata/pytorch-1.13-networks to ONNX with PyTorch 1.13's own exporter (torch.onnx.export, opset 17) and writes
# them, with their input and PyTorch's float64 output, to testdata/onnx/torch-1.13/<case>/ in the ONNX
# test-data layout (model.onnx, model_float32.onnx, test_data_set_0/input_0.pb, output_0.pb).
#
#   /usr/bin/python3 docs/validation/export_torch_onnx.py        (from the repository root)
#
# Needs Debian's python3-torch / python3-torchvision (1.13 / 0.14) and onnx 1.12 (numpy_helper, checker,
# shape_inference). For mbv2_ca: download the authors' mbv2_ca.py (https://github.com/houqb/CoordAttention, MIT;
# not shipped here) and put its folder in MBV2_CA_DIR (default: next to this script).
# Prints, per model: the check of PyTorch's output against expected.safetensors, the same check for the exported
# graphs run by a small interpreter (run_onnx), the op types with counts and the attribute sets of Conv and of the
# ops listed in OPS_OF_INTEREST (the README of testdata/onnx/torch-1.13 quotes them).
import collections, copy, json, os, struct, sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(ROOT, "testdata", "pytorch-1.13-networks")
DST = os.path.join(ROOT, "testdata", "onnx", "torch-1.13")
CASES = ["04_mobilenet_v3_large_eval", "06_mbv2_ca_eval", "08_efficientnet_eval", "09_mobilenet_v2_eval"]
OPSET = 17
OPS_OF_INTEREST = ["HardSigmoid", "HardSwish", "Clip", "AveragePool", "GlobalAveragePool", "ReduceMean", "Gemm",
                   "Flatten", "Reshape", "Concat", "Split", "Slice", "Transpose", "Expand", "Squeeze", "Unsqueeze"]
BROADCAST_OPS = ["Mul", "Add", "Div", "Sub"]


def load_safetensors(path):
    """Reads a .safetensors file by hand: u64 LE header length, JSON header, raw little-endian data."""
    dtypes = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.dtype(dtypes[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(dtypes[info["dtype"]]).reshape(info["shape"]).copy())
    return out


def build(case):
    """The network of case.json, built by its reference constructor (see testdata/pytorch-1.13-networks/README.md)."""
    with open(os.path.join(SRC, case, "case.json")) as f:
        cfg = json.load(f)
    module = cfg.pop("module")
    training = cfg.pop("training")
    assert not training, "only eval-mode cases are exported"
    if module in ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v2", "efficientnet_b0"):
        return getattr(torchvision.models, module)(**cfg)
    if module == "efficientnet":
        from torchvision.models.efficientnet import _efficientnet_conf, _efficientnet
        setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=cfg.pop("width_mult"),
                                                   depth_mult=cfg.pop("depth_mult"))
        return _efficientnet(setting, cfg.pop("dropout", 0.2), last_channel, None, True, **cfg)
    if module == "mbv2_ca":
        sys.dont_write_bytecode = True  # no __pycache__ in docs/validation
        sys.path.insert(0, os.environ.get("MBV2_CA_DIR", HERE))
        from mbv2_ca import mbv2_ca
        return mbv2_ca(**cfg)
    raise ValueError(module)


def export(model, x, path):
    torch.onnx.export(model, x, path, opset_version=OPSET, do_constant_folding=True,
                      input_names=["x"], output_names=["y"])
    onnx.checker.check_model(onnx.load(path))


def const_value(graph, name):
    """Value of an initializer or Constant-node output, else None."""
    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


def describe(path):
    """Op counts, attribute sets of OPS_OF_INTEREST, broadcasting shapes of element-wise binary ops."""
    m = shape_inference.infer_shapes(onnx.load(path))
    g = m.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else "?" for d in vi.type.tensor_type.shape.dim]
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    for n in g.node:
        if n.op_type == "Constant":
            shapes[n.output[0]] = list(n.attribute[0].t.dims)
    counts = collections.Counter(n.op_type for n in g.node)
    attrs = collections.defaultdict(collections.Counter)
    for n in g.node:
        if n.op_type in OPS_OF_INTEREST:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            a = {k: (v.decode() if isinstance(v, bytes) else list(v) if isinstance(v, (list, tuple)) else v)
                 for k, v in a.items()}
            if n.op_type in ("Clip", "Reshape", "Split", "Slice", "Expand", "Squeeze", "Unsqueeze", "ReduceMean"):
                # inputs beyond the first: show constant values (Clip min/max, shapes, split sizes, axes)
                extra = []
                for i in n.input[1:]:
                    v = const_value(g, i) if i else None
                    extra.append("''" if not i else (v.tolist() if v is not None else "dynamic"))
                a["inputs[1:]"] = extra
            if n.op_type in ("Gemm", "Transpose", "Concat", "Split", "Flatten", "Reshape", "Expand"):
                a["in_shapes"] = [shapes.get(i) for i in n.input]
            attrs[n.op_type][json.dumps(a, sort_keys=True, default=str)] += 1
        if n.op_type == "Conv":
            a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            w = shapes[n.input[1]]
            a["group"] = "1" if a.get("group", 1) == 1 else "depthwise" if w[1] == 1 else a["group"]
            a["bias"] = len(n.input) > 2 and n.input[2] != ""
            attrs["Conv"][json.dumps(a, sort_keys=True, default=str)] += 1
        if n.op_type in BROADCAST_OPS:
            s = [shapes.get(i) for i in n.input]
            if s[0] != s[1]:
                attrs[n.op_type + " (broadcast)"][json.dumps({"in_shapes": s})] += 1
    init_dtypes = collections.Counter(onnx.TensorProto.DataType.Name(t.data_type) for t in g.initializer)
    return counts, attrs, init_dtypes, os.path.getsize(path)


def run_onnx(path, x, hardsigmoid_alpha=None):
    """Minimal interpreter for the ops these exports use, in the dtype of x (torch kernels, ONNX semantics), to
    check that the exported graph computes the stored output. onnx 1.12 has no onnx.reference.ReferenceEvaluator
    and onnxruntime is not installed. HardSigmoid takes its alpha attribute literally (a float32 in ONNX) unless
    hardsigmoid_alpha overrides it."""
    import torch.nn.functional as F
    g = onnx.load(path).graph
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
    env[g.input[0].name] = x
    attr = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    for n in g.node:
        a, i = attr(n), [env[k] if k else None for k in n.input]
        op = n.op_type
        if op == "Constant": r = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        elif op == "ConstantOfShape":
            v = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
            r = torch.full(i[0].tolist(), v.flatten()[0].item(), dtype=v.dtype)
        elif op == "Conv":
            p = a.get("pads", [0, 0, 0, 0]); assert p[:2] == p[2:] and a.get("auto_pad", b"NOTSET") == b"NOTSET"
            r = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, a.get("strides", 1), p[:2],
                         a.get("dilations", 1), a.get("group", 1))
        elif op == "Relu": r = torch.relu(i[0])
        elif op == "Sigmoid": r = torch.sigmoid(i[0])
        elif op == "Clip": r = torch.clamp(i[0], i[1] if len(i) > 1 else None, i[2] if len(i) > 2 else None)
        elif op == "HardSigmoid":
            al = a.get("alpha", 0.2) if hardsigmoid_alpha is None else hardsigmoid_alpha
            r = torch.clamp(al * i[0] + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish": r = i[0] * torch.clamp(i[0] * (1.0 / 6) + 0.5, 0, 1)
        elif op in ("Add", "Mul", "Div", "Sub", "Equal"):
            r = {"Add": torch.add, "Mul": torch.mul, "Div": torch.div, "Sub": torch.sub, "Equal": torch.eq}[op](*i)
        elif op == "Where": r = torch.where(*i)
        elif op == "GlobalAveragePool": r = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "AveragePool":
            assert not a.get("pads") and not a.get("ceil_mode")
            r = F.avg_pool2d(i[0], a["kernel_shape"], a.get("strides", 1))
        elif op == "Flatten": r = i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1)
        elif op == "Reshape":
            shp = [i[0].shape[k] if v == 0 and not a.get("allowzero") else v for k, v in enumerate(i[1].tolist())]
            r = i[0].reshape(shp)
        elif op == "Gemm":
            A = i[0].T if a.get("transA") else i[0]; B = i[1].T if a.get("transB") else i[1]
            r = a.get("alpha", 1.0) * (A @ B) + (a.get("beta", 1.0) * i[2] if len(i) > 2 else 0)
        elif op == "Concat": r = torch.cat(i, dim=a["axis"])
        elif op == "Transpose": r = i[0].permute(a["perm"])
        elif op == "Slice":
            r = i[0]
            axes = i[3].tolist() if len(i) > 3 else list(range(len(i[1])))
            steps = i[4].tolist() if len(i) > 4 else [1] * len(axes)
            for st, en, ax, sp in zip(i[1].tolist(), i[2].tolist(), axes, steps):
                r = r[(slice(None),) * ax + (slice(st, en, sp),)]
        elif op == "Expand": r = i[0].expand(torch.broadcast_shapes(i[0].shape, tuple(i[1].tolist())))
        else: raise NotImplementedError(op)
        env[n.output[0]] = r
    return env[g.output[0].name]


def main():
    torch.set_grad_enabled(False)
    print("torch", torch.__version__, "torchvision", torchvision.__version__, "onnx", onnx.__version__)
    for case in CASES:
        print("=" * 20, case)
        model = build(case).double()
        params = load_safetensors(os.path.join(SRC, case, "params.safetensors"))
        params = {k: (v.double() if v.is_floating_point() else v) for k, v in params.items()}
        model.load_state_dict(params, strict=True)
        model.eval()
        x = load_safetensors(os.path.join(SRC, case, "inputs.safetensors"))["x"].double()
        y_exp = load_safetensors(os.path.join(SRC, case, "expected.safetensors"))["y"].double()

        # PyTorch's float64 forward against the stored expectation.
        y = model(x)
        rel = ((y - y_exp).abs().max() / y_exp.abs().max()).item()
        print(f"max|y - expected| / max|expected| = {rel:.3e}")
        assert rel <= 1e-12, "PyTorch does not reproduce expected.safetensors"

        # Float64 and float32 exports (the float32 one from a float copy of the same model).
        out = os.path.join(DST, case)
        os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
        export(model, x, os.path.join(out, "model.onnx"))
        export(copy.deepcopy(model).float(), x.float(), os.path.join(out, "model_float32.onnx"))

        # Test data (float64 input, PyTorch float64 expected output).
        for fname, name, t in (("input_0.pb", "x", x), ("output_0.pb", "y", y_exp)):
            tp = numpy_helper.from_array(t.numpy().astype(np.float64), name)
            with open(os.path.join(out, "test_data_set_0", fname), "wb") as f:
                f.write(tp.SerializeToString())

        # The exported graphs, interpreted by run_onnx, against PyTorch's float64 output.
        rel_err = lambda y: ((y.double() - y_exp).abs().max() / y_exp.abs().max()).item()
        print(f"run_onnx(model.onnx, x)               : {rel_err(run_onnx(os.path.join(out, 'model.onnx'), x)):.3e}")
        if any(isinstance(mod, torch.nn.Hardsigmoid) for mod in model.modules()):
            y6 = run_onnx(os.path.join(out, "model.onnx"), x, hardsigmoid_alpha=1.0 / 6)
            print(f"  same, HardSigmoid alpha read as 1/6 : {rel_err(y6):.3e}")
        y32 = run_onnx(os.path.join(out, "model_float32.onnx"), x.float())
        print(f"run_onnx(model_float32.onnx, float(x)): {rel_err(y32):.3e}")
        n_bn = sum(isinstance(mod, torch.nn.BatchNorm2d) for mod in model.modules())
        n_conv = sum(isinstance(mod, torch.nn.Conv2d) for mod in model.modules())
        print(f"PyTorch modules: {n_conv} Conv2d, {n_bn} BatchNorm2d")

        # What the exporter produced.
        for fname in ("model.onnx", "model_float32.onnx"):
            counts, attrs, init_dtypes, size = describe(os.path.join(out, fname))
            print(f"--- {fname}: {size} bytes, {sum(counts.values())} nodes, initializers {dict(init_dtypes)}")
            print("ops:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            for op in sorted(attrs):
                for a, c in attrs[op].items():
                    print(f"  {op} x{c}: {a}")


if __name__ == "__main__":
    main()
