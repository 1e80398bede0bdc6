using System.Globalization;
using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Models;

/// <summary>
/// The ResNet family as the reference code builds it, module for module: timm's <c>ResNet</c> with
/// <c>Bottleneck</c> blocks (<c>resnet50</c>, <c>seresnet50</c>, <c>seresnext50_32x4d</c>), timm's legacy
/// <c>SENet</c> (<c>legacy_seresnet50</c>, the Caffe SE-ResNet-50 of the paper) and the GCT authors' ResNet-50
/// (<c>gct_resnet50</c>). Each factory returns the root layer; names, shapes and the order of operations are the
/// reference's.
/// </summary>
public static class ResNets
{
    private static string S(int i) => i.ToString(CultureInfo.InvariantCulture);

    private static Conv2dLayer<T> Conv<T>(int cin, int cout, int k, int stride = 1, int padding = 0, int groups = 1)
        where T : IFloatingPointIeee754<T> =>
        new(Conv2dGeometry.Square(cin, cout, k, stride, padding, 1, groups), bias: false);

    /// <summary>timm's <c>ResNet(block=Bottleneck, layers, channels, cardinality, base_width, num_classes, block_args=dict(attn_layer))</c>.</summary>
    /// <param name="layers">Blocks per stage (ResNet-50: 3, 4, 6, 3).</param>
    /// <param name="channels">Stage widths (planes; 64, 128, 256, 512).</param>
    /// <param name="numClasses">Classifier outputs.</param>
    /// <param name="cardinality">Groups of the 3x3 convolution.</param>
    /// <param name="baseWidth">Width per group.</param>
    /// <param name="se">Whether each block has timm's SEModule after bn3 (<c>attn_layer='se'</c>).</param>
    public static Layer<T> Timm<T>(int[] layers, int[] channels, int numClasses, int cardinality = 1, int baseWidth = 64, bool se = false)
        where T : IFloatingPointIeee754<T>
    {
        if (layers.Length != channels.Length || layers.Length == 0)
            throw new ArgumentException($"ResNet: layers ({layers.Length} stages) and channels ({channels.Length} stages) must have the same non-zero length.");
        if (layers.Any(l => l < 1) || channels.Any(c => c < 1) || numClasses < 1)
            throw new ArgumentException("ResNet: layers, channels and num_classes must be positive.");
        const int stemWidth = 64, expansion = 4;
        var children = new List<(string, Layer<T>)>
        {
            ("conv1", Conv<T>(3, stemWidth, 7, 2, 3)),
            ("bn1", new BatchNorm2dLayer<T>(stemWidth)),
            ("act1", Act.Relu<T>()),
            ("maxpool", new MaxPool2d<T>(3, 2, 1)),
        };
        int inplanes = stemWidth;
        for (int s = 0; s < layers.Length; s++)
        {
            int planes = channels[s], outplanes = planes * expansion;
            int stride = s == 0 ? 1 : 2;
            var blocks = new List<Layer<T>>();
            for (int b = 0; b < layers[s]; b++)
            {
                int st = b == 0 ? stride : 1;
                Layer<T>? down = b == 0 && (stride != 1 || inplanes != outplanes)
                    ? new Sequential<T>(Conv<T>(inplanes, outplanes, 1, stride), new BatchNorm2dLayer<T>(outplanes))
                    : null;
                blocks.Add(TimmBottleneck<T>(inplanes, planes, st, down, cardinality, baseWidth, se));
                inplanes = outplanes;
            }
            children.Add(($"layer{s + 1}", new Sequential<T>(blocks.ToArray())));
        }
        children.Add(("global_pool", GlobalPool<T>()));
        children.Add(("fc", new Linear<T>(inplanes, numClasses)));
        return new Sequential<T>("ResNet", children);
    }

    /// <summary>timm's <c>SelectAdaptivePool2d(pool_type='avg', flatten=True)</c>: children <c>pool</c>, <c>flatten</c>.</summary>
    public static Layer<T> GlobalPool<T>() where T : IFloatingPointIeee754<T> =>
        new Sequential<T>("SelectAdaptivePool2d", [("pool", new AdaptiveAvgPool2d<T>()), ("flatten", new Flatten<T>())]);

    private static Layer<T> TimmBottleneck<T>(int inplanes, int planes, int stride, Layer<T>? downsample, int cardinality,
        int baseWidth, bool se) where T : IFloatingPointIeee754<T>
    {
        // width = int(floor(planes * (base_width / 64)) * cardinality); first_planes = width (reduce_first 1).
        int width = (int)Math.Floor(planes * (baseWidth / 64.0)) * cardinality;
        int outplanes = planes * 4;
        if (width < 1) throw new ArgumentException($"ResNet: bottleneck width is {width} for planes {planes}, base_width {baseWidth}, cardinality {cardinality}.");
        var conv1 = Conv<T>(inplanes, width, 1);
        var bn1 = new BatchNorm2dLayer<T>(width);
        var act1 = Act.Relu<T>();
        var conv2 = Conv<T>(width, width, 3, stride, 1, cardinality);
        var bn2 = new BatchNorm2dLayer<T>(width);
        var dropBlock = new Identity<T>();
        var act2 = Act.Relu<T>();
        var aa = new Identity<T>();
        var conv3 = Conv<T>(width, outplanes, 1);
        var bn3 = new BatchNorm2dLayer<T>(outplanes);
        var seModule = se ? SqueezeExcite<T>.Timm(outplanes) : null;
        var act3 = Act.Relu<T>();
        var children = new List<(string, Layer<T>)>
        {
            ("conv1", conv1), ("bn1", bn1), ("act1", act1), ("conv2", conv2), ("bn2", bn2), ("drop_block", dropBlock),
            ("act2", act2), ("aa", aa), ("conv3", conv3), ("bn3", bn3),
        };
        var branch = new List<Layer<T>> { conv1, bn1, act1, conv2, bn2, dropBlock, act2, aa, conv3, bn3 };
        if (seModule is not null)
        {
            children.Add(("se", seModule));
            branch.Add(seModule);
        }
        children.Add(("act3", act3));
        if (downsample is not null) children.Add(("downsample", downsample));
        return new Residual<T>("Bottleneck", children, branch, downsample, act3);
    }

    /// <summary>
    /// timm senet.py's <c>SENet(SEResNetBottleneck, layers=[3, 4, 6, 3], groups=1, reduction=16)</c>: <c>layer0</c>
    /// (conv1 7x7/2, bn1, relu1), <c>pool0</c> (3x3/2, ceil_mode), stride in each block's 1x1 conv1, one shared
    /// <c>relu</c> called three times per block, <c>se_module</c> with hidden C // 16, <c>last_linear</c>. Dropout
    /// (drop_rate 0.2, training only) is an identity here.
    /// </summary>
    public static Layer<T> LegacySeResNet<T>(int numClasses, int[]? layers = null) where T : IFloatingPointIeee754<T>
    {
        layers ??= [3, 4, 6, 3];
        if (numClasses < 1) throw new ArgumentException($"SENet: num_classes must be positive, got {numClasses}.");
        const int reduction = 16, expansion = 4;
        var children = new List<(string, Layer<T>)>
        {
            ("layer0", new Sequential<T>("Sequential",
            [
                ("conv1", Conv<T>(3, 64, 7, 2, 3)), ("bn1", new BatchNorm2dLayer<T>(64)), ("relu1", Act.Relu<T>()),
            ])),
            ("pool0", new MaxPool2d<T>(3, 2, 0, 1, ceilMode: true)),
        };
        int inplanes = 64;
        int[] planesPerStage = [64, 128, 256, 512];
        for (int s = 0; s < layers.Length; s++)
        {
            int planes = planesPerStage[s], outplanes = planes * expansion, stride = s == 0 ? 1 : 2;
            var blocks = new List<Layer<T>>();
            for (int b = 0; b < layers[s]; b++)
            {
                Layer<T>? down = b == 0 && (stride != 1 || inplanes != outplanes)
                    ? new Sequential<T>(Conv<T>(inplanes, outplanes, 1, stride), new BatchNorm2dLayer<T>(outplanes))
                    : null;
                blocks.Add(LegacyBottleneck<T>(inplanes, planes, b == 0 ? stride : 1, down, reduction));
                inplanes = outplanes;
            }
            children.Add(($"layer{s + 1}", new Sequential<T>(blocks.ToArray())));
        }
        children.Add(("global_pool", GlobalPool<T>()));
        children.Add(("last_linear", new Linear<T>(inplanes, numClasses)));
        return new Sequential<T>("SENet", children);
    }

    private static Layer<T> LegacyBottleneck<T>(int inplanes, int planes, int stride, Layer<T>? downsample, int reduction)
        where T : IFloatingPointIeee754<T>
    {
        var conv1 = Conv<T>(inplanes, planes, 1, stride);
        var bn1 = new BatchNorm2dLayer<T>(planes);
        var conv2 = Conv<T>(planes, planes, 3, 1, 1);
        var bn2 = new BatchNorm2dLayer<T>(planes);
        var conv3 = Conv<T>(planes, planes * 4, 1);
        var bn3 = new BatchNorm2dLayer<T>(planes * 4);
        var relu = Act.Relu<T>();
        var se = SqueezeExcite<T>.Legacy(planes * 4, reduction);
        var children = new List<(string, Layer<T>)>
        {
            ("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3), ("relu", relu),
            ("se_module", se),
        };
        if (downsample is not null) children.Add(("downsample", downsample));
        // forward: ... bn3; shortcut = downsample(x); out = se_module(out) + shortcut; relu.
        Layer<T>[] branch = [conv1, bn1, relu, conv2, bn2, relu, conv3, bn3, se];
        return new Residual<T>("SEResNetBottleneck", children, branch, downsample, relu, shortcutAt: branch.Length - 1);
    }

    /// <summary>
    /// The GCT authors' <c>ResNet(cfg)</c> (z-x-yang/GCT, PyTorch/resnet.py): ResNet-50 with a GCT before every
    /// convolution (<c>stem.conv1.0</c>, <c>layerK.B.conv1.0</c>, ..., <c>downsample.0</c>), the stride in the
    /// first 1x1 convolution, a downsample (GCT, 1x1 conv, BN) wherever in ≠ out, functional ReLU and max pool,
    /// <c>avgpool</c>, <c>fc</c> 2048 → 1000.
    /// </summary>
    public static Layer<T> GctResNet50<T>(int[]? layers = null, int numClasses = 1000) where T : IFloatingPointIeee754<T>
    {
        layers ??= [3, 4, 6, 3];
        var stemConv = new Sequential<T>(new GctLayer<T>(3), Conv<T>(3, 64, 7, 2, 3));
        var stemBn = new BatchNorm2dLayer<T>(64);
        var stem = new Sequential<T>("StemWithFixedBatchNorm", [("conv1", stemConv), ("bn1", stemBn)],
            [stemConv, stemBn, Act.Relu<T>(), new MaxPool2d<T>(3, 2, 1)]);
        var children = new List<(string, Layer<T>)> { ("stem", stem) };
        int inC = 64;
        for (int s = 0; s < layers.Length; s++)
        {
            int factor = 1 << s, bottleneck = 64 * factor, outC = 256 * factor;
            var blocks = new List<Layer<T>>();
            for (int b = 0; b < layers[s]; b++)
            {
                int stride = b == 0 && s > 0 ? 2 : 1;
                blocks.Add(GctBottleneck<T>(inC, bottleneck, outC, stride));
                inC = outC;
            }
            children.Add(($"layer{s + 1}", new Sequential<T>(blocks.ToArray())));
        }
        var avgpool = new AdaptiveAvgPool2d<T>();
        var fc = new Linear<T>(inC, numClasses);
        children.Add(("avgpool", avgpool));
        children.Add(("fc", fc));
        var run = children.Select(c => c.Item2).ToList();
        run.Insert(run.Count - 1, new Flatten<T>()); // x.view(x.size(0), -1)
        return new Sequential<T>("ResNet", children, run);
    }

    private static Layer<T> GctBottleneck<T>(int inC, int bottleneck, int outC, int stride) where T : IFloatingPointIeee754<T>
    {
        var children = new List<(string, Layer<T>)>();
        Layer<T>? down = null;
        if (inC != outC)
        {
            down = new Sequential<T>(new GctLayer<T>(inC), Conv<T>(inC, outC, 1, stride), new BatchNorm2dLayer<T>(outC));
            children.Add(("downsample", down));
        }
        var conv1 = new Sequential<T>(new GctLayer<T>(inC), Conv<T>(inC, bottleneck, 1, stride));
        var bn1 = new BatchNorm2dLayer<T>(bottleneck);
        var conv2 = new Sequential<T>(new GctLayer<T>(bottleneck), Conv<T>(bottleneck, bottleneck, 3, 1, 1));
        var bn2 = new BatchNorm2dLayer<T>(bottleneck);
        var conv3 = new Sequential<T>(new GctLayer<T>(bottleneck), Conv<T>(bottleneck, outC, 1));
        var bn3 = new BatchNorm2dLayer<T>(outC);
        children.AddRange([("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3)]);
        var relu = Act.Relu<T>(); // F.relu_: a functional, not a registered module
        return new Residual<T>("BottleneckWithFixedBatchNorm", children, [conv1, bn1, relu, conv2, bn2, relu, conv3, bn3], down, relu);
    }
}
