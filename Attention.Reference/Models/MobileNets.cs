using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Models;

/// <summary>
/// The mobile networks as torchvision 0.14 and the Coordinate Attention authors build them, module for module:
/// MobileNetV3 (large, small: SE with a hard-sigmoid gate), EfficientNet (MBConv with SiLU and SE), MobileNetV2, and
/// MobileNetV2 with Coordinate Attention (houqb/CoordAttention mbv2_ca.py). Dropout and stochastic depth are
/// identities (docs/networks.md).
/// </summary>
public static class MobileNets
{
    /// <summary>torchvision's <c>_make_divisible(v, divisor, min_value)</c>.</summary>
    public static int MakeDivisible(double v, int divisor, int? minValue = null) =>
        SqueezeExcite<double>.MakeDivisible(v, divisor, 0.9, minValue);

    private static Conv2dLayer<T> Conv<T>(int cin, int cout, int k, int stride = 1, int padding = 0, int groups = 1,
        int dilation = 1, bool bias = false) where T : IFloatingPointIeee754<T> =>
        new(new Conv2dGeometry(cin, cout, (k, k), (stride, stride), (padding, padding), (dilation, dilation), groups), bias);

    /// <summary>
    /// torchvision's <c>Conv2dNormActivation</c>: children "0" conv (padding (k − 1) // 2 · dilation, no bias), "1"
    /// BatchNorm2d, and "2" the activation when there is one.
    /// </summary>
    public static Layer<T> ConvNormAct<T>(int cin, int cout, int k, int stride, int groups, Func<Layer<T>>? act, double eps,
        double momentum, int dilation = 1) where T : IFloatingPointIeee754<T>
    {
        var children = new List<(string, Layer<T>)>
        {
            ("0", Conv<T>(cin, cout, k, stride, (k - 1) / 2 * dilation, groups, dilation)),
            ("1", new BatchNorm2dLayer<T>(cout, eps, momentum)),
        };
        if (act is not null) children.Add(("2", act()));
        return new Sequential<T>("Conv2dNormActivation", children);
    }

    /// <summary>An inverted residual: child <paramref name="blockName"/> (the Sequential), plus optional extras run after it on the residual path.</summary>
    private static Layer<T> Inverted<T>(string kind, string blockName, Sequential<T> block, bool residual,
        params (string Name, Layer<T> Layer)[] onResidual) where T : IFloatingPointIeee754<T>
    {
        var children = new List<(string, Layer<T>)> { (blockName, block) };
        children.AddRange(onResidual);
        var branch = new List<Layer<T>> { block };
        if (residual) branch.AddRange(onResidual.Select(r => r.Layer));
        return new Residual<T>(kind, children, branch, null, null, sum: residual);
    }

    /// <summary>One row of MobileNetV3's table: input, kernel, expanded, output, SE, activation (HS or RE), stride, dilation.</summary>
    private sealed record V3Row(int In, int Kernel, int Expanded, int Out, bool Se, bool Hs, int Stride, int Dilation);

    /// <summary>
    /// torchvision's <c>mobilenet_v3_large</c> / <c>mobilenet_v3_small</c>: <c>features.N.block.M</c>, SE at the
    /// depthwise output with <c>_make_divisible(expanded // 4, 8)</c> channels and a Hardsigmoid gate, BatchNorm eps
    /// 0.001 and momentum 0.01, classifier Linear → Hardswish → Dropout → Linear.
    /// </summary>
    public static Layer<T> MobileNetV3<T>(bool large, int numClasses = 1000, double widthMult = 1.0, bool reducedTail = false,
        bool dilated = false) where T : IFloatingPointIeee754<T>
    {
        if (numClasses < 1 || !(widthMult > 0)) throw new ArgumentException($"MobileNetV3: num_classes {numClasses} and width_mult {widthMult} must be positive.");
        int rd = reducedTail ? 2 : 1, dil = dilated ? 2 : 1;
        int A(int c) => MakeDivisible(c * widthMult, 8);
        V3Row Row(int i, int k, int e, int o, bool se, string act, int s, int d) => new(A(i), k, A(e), A(o), se, act == "HS", s, d);
        V3Row[] rows = large
            ?
            [
                Row(16, 3, 16, 16, false, "RE", 1, 1), Row(16, 3, 64, 24, false, "RE", 2, 1), Row(24, 3, 72, 24, false, "RE", 1, 1),
                Row(24, 5, 72, 40, true, "RE", 2, 1), Row(40, 5, 120, 40, true, "RE", 1, 1), Row(40, 5, 120, 40, true, "RE", 1, 1),
                Row(40, 3, 240, 80, false, "HS", 2, 1), Row(80, 3, 200, 80, false, "HS", 1, 1), Row(80, 3, 184, 80, false, "HS", 1, 1),
                Row(80, 3, 184, 80, false, "HS", 1, 1), Row(80, 3, 480, 112, true, "HS", 1, 1), Row(112, 3, 672, 112, true, "HS", 1, 1),
                Row(112, 5, 672, 160 / rd, true, "HS", 2, dil), Row(160 / rd, 5, 960 / rd, 160 / rd, true, "HS", 1, dil),
                Row(160 / rd, 5, 960 / rd, 160 / rd, true, "HS", 1, dil),
            ]
            :
            [
                Row(16, 3, 16, 16, true, "RE", 2, 1), Row(16, 3, 72, 24, false, "RE", 2, 1), Row(24, 3, 88, 24, false, "RE", 1, 1),
                Row(24, 5, 96, 40, true, "HS", 2, 1), Row(40, 5, 240, 40, true, "HS", 1, 1), Row(40, 5, 240, 40, true, "HS", 1, 1),
                Row(40, 5, 120, 48, true, "HS", 1, 1), Row(48, 5, 144, 48, true, "HS", 1, 1), Row(48, 5, 288, 96 / rd, true, "HS", 2, dil),
                Row(96 / rd, 5, 576 / rd, 96 / rd, true, "HS", 1, dil), Row(96 / rd, 5, 576 / rd, 96 / rd, true, "HS", 1, dil),
            ];
        int lastChannel = A((large ? 1280 : 1024) / rd);
        const double eps = 0.001, momentum = 0.01;
        var features = new List<Layer<T>> { ConvNormAct<T>(3, rows[0].In, 3, 2, 1, Act.Hardswish<T>, eps, momentum) };
        foreach (var r in rows)
        {
            Func<Layer<T>> act = r.Hs ? Act.Hardswish<T> : Act.Relu<T>;
            var layers = new List<Layer<T>>();
            if (r.Expanded != r.In) layers.Add(ConvNormAct<T>(r.In, r.Expanded, 1, 1, 1, act, eps, momentum));
            int stride = r.Dilation > 1 ? 1 : r.Stride;
            layers.Add(ConvNormAct<T>(r.Expanded, r.Expanded, r.Kernel, stride, r.Expanded, act, eps, momentum, r.Dilation));
            if (r.Se)
                layers.Add(SqueezeExcite<T>.Torchvision(r.Expanded, MakeDivisible(r.Expanded / 4, 8), Act.Relu<T>(), Act.Hardsigmoid<T>()));
            layers.Add(ConvNormAct<T>(r.Expanded, r.Out, 1, 1, 1, null, eps, momentum));
            features.Add(Inverted("InvertedResidual", "block", new Sequential<T>(layers.ToArray()), r.Stride == 1 && r.In == r.Out));
        }
        int lastIn = rows[^1].Out, lastOut = 6 * lastIn;
        features.Add(ConvNormAct<T>(lastIn, lastOut, 1, 1, 1, Act.Hardswish<T>, eps, momentum));
        return Classifier<T>("MobileNetV3", features, new AdaptiveAvgPool2d<T>(),
            new Sequential<T>(new Linear<T>(lastOut, lastChannel), Act.Hardswish<T>(), new Identity<T>("Dropout"),
                new Linear<T>(lastChannel, numClasses)));
    }

    /// <summary>features, avgpool, torch.flatten (a functional), classifier.</summary>
    private static Layer<T> Classifier<T>(string kind, List<Layer<T>> features, Layer<T>? avgpool, Layer<T> classifier)
        where T : IFloatingPointIeee754<T>
    {
        var feats = new Sequential<T>(features.ToArray());
        var children = new List<(string, Layer<T>)> { ("features", feats) };
        var run = new List<Layer<T>> { feats };
        if (avgpool is not null)
        {
            children.Add(("avgpool", avgpool));
            run.Add(avgpool);
        }
        else run.Add(new AdaptiveAvgPool2d<T>()); // nn.functional.adaptive_avg_pool2d: not a module
        run.Add(new Flatten<T>());
        children.Add(("classifier", classifier));
        run.Add(classifier);
        return new Sequential<T>(kind, children, run);
    }

    /// <summary>
    /// torchvision's EfficientNet from <c>_efficientnet_conf("efficientnet_b0", width_mult, depth_mult)</c>: MBConv
    /// blocks (expand 1x1 → depthwise → SE with max(1, input // 4) channels, SiLU inside, sigmoid gate → project),
    /// stochastic depth (an identity here) before the residual sum, BatchNorm eps 1e-5, classifier Dropout → Linear.
    /// </summary>
    public static Layer<T> EfficientNet<T>(double widthMult = 1.0, double depthMult = 1.0, int numClasses = 1000)
        where T : IFloatingPointIeee754<T>
    {
        if (numClasses < 1 || !(widthMult > 0) || !(depthMult > 0))
            throw new ArgumentException($"EfficientNet: num_classes {numClasses}, width_mult {widthMult} and depth_mult {depthMult} must be positive.");
        int A(int c) => MakeDivisible(c * widthMult, 8);
        int D(int n) => (int)Math.Ceiling(n * depthMult);
        // (expand_ratio, kernel, stride, input, output, layers)
        (int E, int K, int S, int In, int Out, int N)[] conf =
        [
            (1, 3, 1, A(32), A(16), D(1)), (6, 3, 2, A(16), A(24), D(2)), (6, 5, 2, A(24), A(40), D(2)), (6, 3, 2, A(40), A(80), D(3)),
            (6, 5, 1, A(80), A(112), D(3)), (6, 5, 2, A(112), A(192), D(4)), (6, 3, 1, A(192), A(320), D(1)),
        ];
        const double eps = 1e-5, momentum = 0.1;
        var features = new List<Layer<T>> { ConvNormAct<T>(3, conf[0].In, 3, 2, 1, Act.Silu<T>, eps, momentum) };
        foreach (var c in conf)
        {
            var stage = new List<Layer<T>>();
            for (int b = 0; b < c.N; b++)
            {
                int input = b == 0 ? c.In : c.Out, stride = b == 0 ? c.S : 1;
                int expanded = MakeDivisible(input * (double)c.E, 8);
                var layers = new List<Layer<T>>();
                if (expanded != input) layers.Add(ConvNormAct<T>(input, expanded, 1, 1, 1, Act.Silu<T>, eps, momentum));
                layers.Add(ConvNormAct<T>(expanded, expanded, c.K, stride, expanded, Act.Silu<T>, eps, momentum));
                layers.Add(SqueezeExcite<T>.Torchvision(expanded, Math.Max(1, input / 4), Act.Silu<T>(), Act.Sigmoid<T>()));
                layers.Add(ConvNormAct<T>(expanded, c.Out, 1, 1, 1, null, eps, momentum));
                stage.Add(Inverted("MBConv", "block", new Sequential<T>(layers.ToArray()), stride == 1 && input == c.Out,
                    ("stochastic_depth", new Identity<T>("StochasticDepth"))));
            }
            features.Add(new Sequential<T>(stage.ToArray()));
        }
        int lastIn = conf[^1].Out, lastOut = 4 * lastIn;
        features.Add(ConvNormAct<T>(lastIn, lastOut, 1, 1, 1, Act.Silu<T>, eps, momentum));
        return Classifier<T>("EfficientNet", features, new AdaptiveAvgPool2d<T>(),
            new Sequential<T>(new Identity<T>("Dropout"), new Linear<T>(lastOut, numClasses)));
    }

    private static readonly (int T, int C, int N, int S)[] V2Setting =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

    /// <summary>
    /// torchvision's <c>mobilenet_v2</c>: <c>features.N.conv</c> (expand 1x1 with ReLU6, depthwise 3x3 with ReLU6,
    /// a plain 1x1 conv and BatchNorm), x + conv(x) where the shape allows, functional average pool, classifier
    /// Dropout → Linear.
    /// </summary>
    public static Layer<T> MobileNetV2<T>(int numClasses = 1000, double widthMult = 1.0) where T : IFloatingPointIeee754<T>
    {
        if (numClasses < 1 || !(widthMult > 0)) throw new ArgumentException($"MobileNetV2: num_classes {numClasses} and width_mult {widthMult} must be positive.");
        const double eps = 1e-5, momentum = 0.1;
        int input = MakeDivisible(32 * widthMult, 8), last = MakeDivisible(1280 * Math.Max(1.0, widthMult), 8);
        var features = new List<Layer<T>> { ConvNormAct<T>(3, input, 3, 2, 1, Act.Relu6<T>, eps, momentum) };
        foreach (var (t, c, n, s) in V2Setting)
        {
            int output = MakeDivisible(c * widthMult, 8);
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1, hidden = (int)Math.Round(input * (double)t, MidpointRounding.ToEven);
                var layers = new List<Layer<T>>();
                if (t != 1) layers.Add(ConvNormAct<T>(input, hidden, 1, 1, 1, Act.Relu6<T>, eps, momentum));
                layers.Add(ConvNormAct<T>(hidden, hidden, 3, stride, hidden, Act.Relu6<T>, eps, momentum));
                layers.Add(Conv<T>(hidden, output, 1));
                layers.Add(new BatchNorm2dLayer<T>(output, eps, momentum));
                features.Add(Inverted("InvertedResidual", "conv", new Sequential<T>(layers.ToArray()), stride == 1 && input == output));
                input = output;
            }
        }
        features.Add(ConvNormAct<T>(input, last, 1, 1, 1, Act.Relu6<T>, eps, momentum));
        return Classifier<T>("MobileNetV2", features, null,
            new Sequential<T>(new Identity<T>("Dropout"), new Linear<T>(last, numClasses)));
    }

    /// <summary>
    /// houqb/CoordAttention <c>mbv2_ca(num_classes, width_mult)</c>: MobileNetV2 with a <c>CoordAtt</c> after the
    /// depthwise conv of every expanding block (<c>features.K.conv.6</c>), stem <c>features.0</c> = conv, BN, ReLU6,
    /// head <c>conv</c> (1x1, BN, ReLU6), <c>avgpool</c>, <c>x.view(N, -1)</c>, classifier Dropout(0.1) → Linear.
    /// </summary>
    public static Layer<T> Mbv2Ca<T>(int numClasses = 1000, double widthMult = 1.0) where T : IFloatingPointIeee754<T>
    {
        if (numClasses < 1 || !(widthMult > 0)) throw new ArgumentException($"MBV2_CA: num_classes {numClasses} and width_mult {widthMult} must be positive.");
        const double eps = 1e-5, momentum = 0.1;
        int divisor = widthMult == 0.1 ? 4 : 8;
        Sequential<T> ConvBn(int cin, int cout, int k, int stride, int groups, bool relu)
        {
            var layers = new List<Layer<T>> { Conv<T>(cin, cout, k, stride, (k - 1) / 2, groups), new BatchNorm2dLayer<T>(cout, eps, momentum) };
            if (relu) layers.Add(Act.Relu6<T>());
            return new Sequential<T>(layers.ToArray());
        }
        int input = MakeDivisible(32 * widthMult, divisor);
        var features = new List<Layer<T>> { ConvBn(3, input, 3, 2, 1, true) };
        foreach (var (t, c, n, s) in V2Setting)
        {
            int output = MakeDivisible(c * widthMult, divisor);
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1, hidden = (int)Math.Round(input * (double)t, MidpointRounding.ToEven);
                Layer<T>[] layers = t == 1
                    ?
                    [
                        Conv<T>(hidden, hidden, 3, stride, 1, hidden), new BatchNorm2dLayer<T>(hidden, eps, momentum), Act.Relu6<T>(),
                        Conv<T>(hidden, output, 1), new BatchNorm2dLayer<T>(output, eps, momentum),
                    ]
                    :
                    [
                        Conv<T>(input, hidden, 1), new BatchNorm2dLayer<T>(hidden, eps, momentum), Act.Relu6<T>(),
                        Conv<T>(hidden, hidden, 3, stride, 1, hidden), new BatchNorm2dLayer<T>(hidden, eps, momentum), Act.Relu6<T>(),
                        CoordAtt<T>.Mbv2Ca(hidden, hidden),
                        Conv<T>(hidden, output, 1), new BatchNorm2dLayer<T>(output, eps, momentum),
                    ];
                features.Add(Inverted("InvertedResidual", "conv", new Sequential<T>(layers), stride == 1 && input == output));
                input = output;
            }
        }
        int last = widthMult > 1.0 ? MakeDivisible(1280 * widthMult, divisor) : 1280;
        var feats = new Sequential<T>(features.ToArray());
        var head = ConvBn(input, last, 1, 1, 1, true);
        var avgpool = new AdaptiveAvgPool2d<T>();
        var classifier = new Sequential<T>(new Identity<T>("Dropout"), new Linear<T>(last, numClasses));
        return new Sequential<T>("MBV2_CA",
            [("features", feats), ("conv", head), ("avgpool", avgpool), ("classifier", classifier)],
            [feats, head, avgpool, new Flatten<T>(), classifier]);
    }
}
