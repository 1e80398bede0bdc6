# Validation for maintainers (never run by the tests): legacy_seresnet50 (timm senet.py) and gct_resnet50
# (z-x-yang/GCT PyTorch/resnet.py and GCT.py) transcribed from the reference sources, run by PyTorch 1.13 in float64
# with autograd and forward hooks; writes four case folders (eval and training mode, with expected_dump) under
# /tmp/val/pack for `attention-ref verify /tmp/val/pack`. These networks have no constructor arguments that shrink
# them, so their float64 state_dicts (~225 MB each) are not bundled. Needs Debian's python3-torch.
import json, struct, math, collections, sys, os
import torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)

def save_st(path, tensors, metadata=None):
    header = {}; off = 0; blobs = []
    if metadata: header["__metadata__"] = metadata
    for k, t in tensors.items():
        t = t.detach().contiguous()
        dt = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        b = t.numpy().tobytes(); header[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f: f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]

# ---- legacy SENet (timm senet.py) ----
class SEModule(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1); self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1); self.sigmoid = nn.Sigmoid()
    def forward(self, x):
        m = x; x = x.mean((2, 3), keepdim=True); x = self.fc1(x); x = self.relu(x); x = self.fc2(x); x = self.sigmoid(x)
        return m * x
class SEResNetBottleneck(nn.Module):
    expansion = 4
    def __init__(self, inplanes, planes, groups, reduction, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False, stride=stride); self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, groups=groups, bias=False); self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False); self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True); self.se_module = SEModule(planes * 4, reduction=reduction)
        self.downsample = downsample; self.stride = stride
    def forward(self, x):
        shortcut = x
        out = self.conv1(x); out = self.bn1(out); out = self.relu(out)
        out = self.conv2(out); out = self.bn2(out); out = self.relu(out)
        out = self.conv3(out); out = self.bn3(out)
        if self.downsample is not None: shortcut = self.downsample(x)
        out = self.se_module(out) + shortcut
        out = self.relu(out)
        return out
class SelectAdaptivePool2d(nn.Module):
    def __init__(self):
        super().__init__(); self.pool = nn.AdaptiveAvgPool2d(1); self.flatten = nn.Flatten(1)
    def forward(self, x): return self.flatten(self.pool(x))
class SENet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.layer0 = nn.Sequential(collections.OrderedDict([('conv1', nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
            ('bn1', nn.BatchNorm2d(64)), ('relu1', nn.ReLU(inplace=True))]))
        self.pool0 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.layer1 = self._make_layer(64, layers[0]); self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2); self.layer4 = self._make_layer(512, layers[3], 2)
        self.global_pool = SelectAdaptivePool2d(); self.last_linear = nn.Linear(2048, num_classes)
    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, padding=0, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [SEResNetBottleneck(self.inplanes, planes, 1, 16, stride, downsample)]
        self.inplanes = planes * 4
        for i in range(1, blocks): layers.append(SEResNetBottleneck(self.inplanes, planes, 1, 16))
        return nn.Sequential(*layers)
    def forward(self, x):
        x = self.layer0(x); x = self.pool0(x); x = self.layer1(x); x = self.layer2(x); x = self.layer3(x); x = self.layer4(x)
        x = self.global_pool(x); return self.last_linear(x)

# ---- GCT ResNet (z-x-yang/GCT PyTorch/resnet.py, GCT.py) ----
class GCT(nn.Module):
    def __init__(self, num_channels, epsilon=1e-5, mode='l2', after_relu=False):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, num_channels, 1, 1)); self.gamma = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_channels, 1, 1)); self.epsilon = epsilon; self.mode = mode; self.after_relu = after_relu
    def forward(self, x):
        embedding = (x.pow(2).sum((2,3), keepdim=True) + self.epsilon).pow(0.5) * self.alpha
        norm = self.gamma / (embedding.pow(2).mean(dim=1, keepdim=True) + self.epsilon).pow(0.5)
        gate = 1. + torch.tanh(embedding * norm + self.beta)
        return x * gate
class Bottleneck(nn.Module):
    def __init__(self, in_channels, bottleneck_channels, out_channels, stride):
        super().__init__()
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(GCT(in_channels), nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
        self.conv1 = nn.Sequential(GCT(in_channels), nn.Conv2d(in_channels, bottleneck_channels, kernel_size=1, stride=stride, bias=False))
        self.bn1 = nn.BatchNorm2d(bottleneck_channels)
        self.conv2 = nn.Sequential(GCT(bottleneck_channels), nn.Conv2d(bottleneck_channels, bottleneck_channels, 3, stride=1, padding=1, bias=False))
        self.bn2 = nn.BatchNorm2d(bottleneck_channels)
        self.conv3 = nn.Sequential(GCT(bottleneck_channels), nn.Conv2d(bottleneck_channels, out_channels, kernel_size=1, bias=False))
        self.bn3 = nn.BatchNorm2d(out_channels)
    def forward(self, x):
        identity = x
        out = self.conv1(x); out = self.bn1(out); out = F.relu_(out)
        out = self.conv2(out); out = self.bn2(out); out = F.relu_(out)
        out0 = self.conv3(out); out = self.bn3(out0)
        if self.downsample is not None: identity = self.downsample(x)
        out += identity; out = F.relu_(out)
        return out
class Stem(nn.Module):
    def __init__(self):
        super().__init__(); self.conv1 = nn.Sequential(GCT(3), nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)); self.bn1 = nn.BatchNorm2d(64)
    def forward(self, x):
        x = self.conv1(x); x = self.bn1(x); x = F.relu_(x); return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
class GctResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(); in_c = 64
        for idx, n in zip((1, 2, 3, 4), (3, 4, 6, 3)):
            f = 2 ** (idx - 1); blocks = []; stride = int(idx > 1) + 1
            for _ in range(n):
                blocks.append(Bottleneck(in_c, 64 * f, 256 * f, stride)); stride = 1; in_c = 256 * f
            self.add_module("layer%d" % idx, nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)); self.fc = nn.Linear(2048, 1000)
    def forward(self, x):
        x = self.stem(x)
        for i in (1, 2, 3, 4): x = getattr(self, "layer%d" % i)(x)
        x = self.avgpool(x); x = x.view(x.size(0), -1); return self.fc(x)

def randomise(model):
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None: m.bias.normal_(0, 0.05)
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5); m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.05); m.running_var.uniform_(0.5, 1.5); m.num_batches_tracked.fill_(7)
            if isinstance(m, GCT):
                m.alpha.uniform_(0.5, 1.5); m.gamma.normal_(0, 0.5); m.beta.normal_(0, 0.3)

def make(case, module, model, training, size, n, kw):
    os.makedirs(case, exist_ok=True)
    model = model.double(); randomise(model)
    # calibrate BN so activations stay normal: one train pass with momentum 1
    moms = {}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d): moms[m] = m.momentum; m.momentum = 1.0
    model.train();
    with torch.no_grad(): model(torch.randn(max(8, n), 3, size, size, dtype=torch.float64))
    for m, mo in moms.items(): m.momentum = mo; m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
    sd = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    torch.save(sd, os.path.join(case, "params.pth"))
    json.dump(dict(module=module, training=training, **kw), open(os.path.join(case, "case.json"), "w"))
    x = torch.randn(n, 3, size, size, dtype=torch.float64, requires_grad=True)
    model.train(training)
    dump, order, count = {}, [], {}
    def hook(name):
        def f(mod, inp, out):
            k = count.get(name, 0); count[name] = k + 1; key = name if k == 0 else "%s#%d" % (name, k)
            dump[key] = out.detach().clone(); order.append(key)
        return f
    for name, m in model.named_modules():
        if name: m.register_forward_hook(hook(name))
    y = model(x); g = torch.randn_like(y)
    (y * g).sum().backward()
    exp = collections.OrderedDict(y=y.detach(), **{"x.grad": x.grad})
    for k, p in model.named_parameters(): exp[k + ".grad"] = p.grad
    if training:
        for k, v in model.state_dict().items():
            if k.endswith("running_mean") or k.endswith("running_var"): exp[k] = v
    save_st(os.path.join(case, "inputs.safetensors"), {"x": x.detach(), "y.grad": g})
    save_st(os.path.join(case, "expected.safetensors"), exp)
    save_st(os.path.join(case, "expected_dump.safetensors"), dump, {"order": ",".join(order)})
    print(case, len(sd), "state_dict entries")

make("/tmp/val/pack/legacy_eval", "legacy_seresnet50", SENet(num_classes=10), False, 65, 1, {"num_classes": 10})
make("/tmp/val/pack/legacy_train", "legacy_seresnet50", SENet(num_classes=10), True, 64, 2, {"num_classes": 10})
make("/tmp/val/pack/gct_eval", "gct_resnet50", GctResNet(), False, 64, 1, {})
make("/tmp/val/pack/gct_train", "gct_resnet50", GctResNet(), True, 64, 2, {})
