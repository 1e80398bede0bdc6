using Attention.Reference.Layers;
using Attention.Reference.Ops;
using static Attention.Reference.Models.RandomWeights;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Models;

/// <summary>
/// The <c>"se_resnet_block"</c> case module: an SE-ResNet bottleneck block in eval mode. Keys: <c>inplanes</c>,
/// <c>planes</c>, <c>stride</c> (default 1), <c>expansion</c> (default 4), <c>placement</c> (<c>"standard"</c>, default,
/// <c>"pre"</c>, <c>"post"</c>, <c>"identity"</c>), the SE hidden width as <c>reduction</c> (default 16; hidden =
/// SE channels // reduction) or <c>se_hidden</c> (not both), <c>se_bias</c> (default true), <c>se_gate</c> (default
/// <c>"sigmoid"</c>), <c>se_pool</c> (default <c>"avg"</c>), <c>eps</c> (BatchNorm ε, default 1e-5),
/// <c>stride_in_1x1</c> (default false: the stride is on conv2 as timm's ResNet; true puts it on conv1 as the
/// original Caffe SE-ResNet). Parameters as timm's SE-ResNet Bottleneck; the SE channels are inplanes for "pre",
/// planes · expansion otherwise.
/// </summary>
public sealed class SeResNetBlockFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "se_resnet_block";

    /// <inheritdoc />
    public override string Source => "timm's SE-ResNet Bottleneck with the SENet paper's placements (Fig. 5)";

    private static readonly string[] Keys =
        ["inplanes", "planes", "stride", "expansion", "placement", "reduction", "se_hidden", "se_bias", "se_gate", "se_pool", "eps", "stride_in_1x1"];

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs => Keys;

    /// <summary>Parses and validates a block config.</summary>
    /// <exception cref="CaseFormatException">Unknown keys or bad values.</exception>
    public static SeResNetBlockOptions ParseOptions(CaseConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(Keys);
        int inplanes = Kw.Positive(config, "inplanes", config.GetInt("inplanes"));
        int planes = Kw.Positive(config, "planes", config.GetInt("planes"));
        int stride = Kw.Positive(config, "stride", config.GetInt("stride", 1));
        int expansion = Kw.Positive(config, "expansion", config.GetInt("expansion", 4));
        var placement = config.GetString("placement", "standard") switch
        {
            "standard" => SePlacement.Standard,
            "pre" => SePlacement.Pre,
            "post" => SePlacement.Post,
            "identity" => SePlacement.Identity,
            var s => throw new CaseFormatException(
                $"{config.Source}: unknown placement '{s}'; expected \"standard\", \"pre\", \"post\" or \"identity\"."),
        };
        int seChannels = placement == SePlacement.Pre ? inplanes : planes * expansion;
        var se = SeFactory.ParseOptions(config, seChannels, placement == SePlacement.Pre ? "inplanes" : "planes·expansion",
            "se_hidden", "reduction", "se_bias", "se_gate", "se_pool", 16);
        double eps = config.GetDouble("eps", 1e-5);
        if (!(eps > 0) || !double.IsFinite(eps)) throw new CaseFormatException($"{config.Source}: 'eps' must be positive, got {eps}.");
        return new SeResNetBlockOptions(inplanes, planes, stride, expansion, placement, se, eps, config.GetBool("stride_in_1x1", false));
    }

    /// <summary>
    /// The block as a tree (docs/derivations/se.md, Eqs. (block.1)–(block.19)): children conv1, bn1, conv2, bn2, conv3,
    /// bn3, se and, when the shape changes, downsample (0: 1x1 conv, 1: BN); the ReLU is a functional. The SE module
    /// sits where the placement says: on the branch before the sum (standard), before the residual unit on the branch
    /// only (pre), after the sum's ReLU (post), or on the shortcut (identity).
    /// </summary>
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        var o = ParseOptions(kwargs);
        var conv1 = new Conv2dLayer<T>(o.Conv1, false);
        var bn1 = new BatchNorm2dLayer<T>(o.Planes, o.Eps);
        var conv2 = new Conv2dLayer<T>(o.Conv2, false);
        var bn2 = new BatchNorm2dLayer<T>(o.Planes, o.Eps);
        var conv3 = new Conv2dLayer<T>(o.Conv3, false);
        var bn3 = new BatchNorm2dLayer<T>(o.OutPlanes, o.Eps);
        var se = SqueezeExcite<T>.Paper(o.Se);
        var down = o.HasDownsample
            ? new Sequential<T>(new Conv2dLayer<T>(o.Downsample, false), new BatchNorm2dLayer<T>(o.OutPlanes, o.Eps))
            : null;
        var relu = Act.Relu<T>();
        var children = new List<(string, Layer<T>)>
        {
            ("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3), ("se", se),
        };
        if (down is not null) children.Add(("downsample", down));
        // Trace taps (functional identities) record the derivation's named intermediates where they arise.
        static TraceTap<T> Tap(string? fwdEq, string? fwd, string? bwdEq = null, string? bwd = null) =>
            new(fwd is null ? null : (fwdEq!, fwd), bwd is null ? null : (bwdEq!, bwd));
        bool pre = o.Placement == SePlacement.Pre, standard = o.Placement == SePlacement.Standard;
        Layer<T>?[] branch =
        [
            Tap(null, null, "block.18", "dx_residual"), pre ? se : null, Tap("block.1", "u", "block.17", "du"),
            conv1, bn1, relu, Tap("block.2", "a1", "block.16", "da1"),
            conv2, bn2, relu, Tap("block.3", "a2", "block.15", "da2"),
            conv3, bn3, Tap("block.4", "f0", "block.14", "df0"), standard ? se : null, Tap("block.5", "f"),
        ];
        Layer<T>?[] shortcut =
        [
            Tap(null, null, "block.13", "dx_shortcut"), down, Tap("block.6", "sc", "block.12", "dsc"),
            o.Placement == SePlacement.Identity ? se : null, Tap("block.7", "sc'"),
        ];
        Layer<T>?[] after =
        [
            Tap(null, null, "block.11", "dv"), relu, Tap("block.8", "o", "block.10", "do"),
            o.Placement == SePlacement.Post ? se : null, Tap("block.9", "y"),
        ];
        static Sequential<T> Chain(Layer<T>?[] run) => new("Chain", [], run.OfType<Layer<T>>());
        return new Residual<T>("SEResNetBottleneck", children, branch.OfType<Layer<T>>(), Chain(shortcut), Chain(after),
            inputGradientTrace: ("block.19", "dx"));
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var rng = new Random(seed);
        foreach (var placement in new[] { "standard", "pre", "post", "identity" })
        {
            // Identity shortcut: inplanes = planes · expansion, stride 1.
            yield return Make(rng, $"se_resnet_block_{placement}", placement, inplanes: 8, planes: 4, stride: 1, expansion: 2, n: 2, h: 5, w: 5, reduction: 4);
            // Downsampled shortcut: stride 2 and a channel change.
            yield return Make(rng, $"se_resnet_block_{placement}_down_s2", placement, inplanes: 6, planes: 4, stride: 2, expansion: 2, n: 2, h: 6, w: 5, reduction: 4);
        }
        // The SE options plumbed through: explicit hidden width, no biases, hard-sigmoid gate, max squeeze; stride on conv1.
        yield return Make(rng, "se_resnet_block_post_se_variants", "post", inplanes: 4, planes: 2, stride: 2, expansion: 4, n: 2, h: 5, w: 4,
            reduction: null, extra: [("se_hidden", 3), ("se_bias", false), ("se_gate", "hard_sigmoid"), ("se_pool", "max"), ("stride_in_1x1", true)]);
    }

    private GeneratedCase Make(Random rng, string name, string placement, int inplanes, int planes, int stride, int expansion, int n, int h, int w,
        int? reduction, (string, object)[]? extra = null)
    {
        var entries = new List<(string, object)>
        {
            ("inplanes", inplanes), ("planes", planes), ("stride", stride), ("expansion", expansion), ("placement", placement),
        };
        if (reduction is { } rv) entries.Add(("reduction", rv));
        if (extra is not null) entries.AddRange(extra);
        var config = CaseConfig.Create(Name, entries.ToArray());
        var o = ParseOptions(config);
        var inputs = new TensorSet<double>("inputs.safetensors");
        var x = Normal(rng, 1, 0, n, inplanes, h, w);
        inputs.Set("x", x);
        var ps = new TensorSet<double>("params.safetensors");
        void Conv(string key, Conv2dGeometry g) => ps.Set(key, Uniform(rng, -1, 1, g.WeightShape, Math.Sqrt(3.0 / g.ReductionLength)));
        void Bn(string prefix, int c)
        {
            ps.Set(prefix + ".weight", Uniform(rng, 0.5, 1.5, [c]));
            ps.Set(prefix + ".bias", Uniform(rng, -0.3, 0.3, [c]));
            ps.Set(prefix + ".running_mean", Uniform(rng, -0.2, 0.2, [c]));
            ps.Set(prefix + ".running_var", Uniform(rng, 0.5, 1.5, [c]));
        }
        Conv("conv1.weight", o.Conv1);
        Bn("bn1", o.Planes);
        Conv("conv2.weight", o.Conv2);
        Bn("bn2", o.Planes);
        Conv("conv3.weight", o.Conv3);
        Bn("bn3", o.OutPlanes);
        int c0 = o.Se.Channels, hid = o.Se.Hidden;
        ps.Set("se.fc1.weight", Uniform(rng, -1, 1, [hid, c0, 1, 1], 1 / Math.Sqrt(c0)));
        if (o.Se.Bias) ps.Set("se.fc1.bias", Uniform(rng, -1, 1, [hid], 1 / Math.Sqrt(c0)));
        ps.Set("se.fc2.weight", Uniform(rng, -1, 1, [c0, hid, 1, 1], 1 / Math.Sqrt(hid)));
        if (o.Se.Bias) ps.Set("se.fc2.bias", Uniform(rng, -1, 1, [c0], 1 / Math.Sqrt(hid)));
        if (o.HasDownsample)
        {
            Conv("downsample.0.weight", o.Downsample);
            Bn("downsample.1", o.OutPlanes);
        }
        var probe = new TensorSet<double>("inputs");
        probe.Set("x", x);
        var y = Run(config, probe, ps, RunOptions.Default).Get("y");
        inputs.Set("y.grad", Normal(rng, 1, 0, y.ShapeArray()));
        return new GeneratedCase(name, config, inputs, ps);
    }
}

/// <summary>Where the SE module sits in the bottleneck block (the paper's Fig. 5).</summary>
public enum SePlacement
{
    /// <summary>SE on the residual branch, before the sum: relu(SE(F(x)) + shortcut(x)).</summary>
    Standard,

    /// <summary>SE-PRE, before the residual unit: relu(F(SE(x)) + shortcut(x)).</summary>
    Pre,

    /// <summary>SE-POST, after the sum and its ReLU: SE(relu(F(x) + shortcut(x))).</summary>
    Post,

    /// <summary>SE-Identity, on the identity branch: relu(F(x) + SE(shortcut(x))).</summary>
    Identity,
}

/// <summary>Hyper-parameters of an SE-ResNet bottleneck block.</summary>
/// <param name="Inplanes">Input channels.</param>
/// <param name="Planes">Bottleneck width (conv1/conv2 output channels).</param>
/// <param name="Stride">Stride of the block (on conv2, timm's ResNet v1.5; on conv1 when <paramref name="StrideIn1x1"/>).</param>
/// <param name="Expansion">Output channels = planes · expansion (4 in ResNet-50).</param>
/// <param name="Placement">Where the SE module sits.</param>
/// <param name="Se">The SE module's options; its channels must be inplanes for <see cref="SePlacement.Pre"/>, else planes · expansion.</param>
/// <param name="Eps">BatchNorm ε (eval mode).</param>
/// <param name="StrideIn1x1">Put the stride on conv1 (the original Caffe SE-ResNet, timm's legacy senet.py) instead of conv2.</param>
public sealed record SeResNetBlockOptions(int Inplanes, int Planes, int Stride, int Expansion, SePlacement Placement, SeOptions Se,
    double Eps = 1e-5, bool StrideIn1x1 = false)
{
    /// <summary>planes · expansion.</summary>
    public int OutPlanes => Planes * Expansion;

    /// <summary>Whether the shortcut is a 1x1 conv + BN (stride ≠ 1 or inplanes ≠ planes · expansion), as timm.</summary>
    public bool HasDownsample => Stride != 1 || Inplanes != OutPlanes;

    /// <summary>The SE module's channel count for this placement.</summary>
    public int SeChannels => Placement == SePlacement.Pre ? Inplanes : OutPlanes;

    /// <summary>conv1: 1x1, inplanes → planes.</summary>
    public Conv2dGeometry Conv1 => Conv2dGeometry.Square(Inplanes, Planes, 1, StrideIn1x1 ? Stride : 1);

    /// <summary>conv2: 3x3, padding 1, planes → planes.</summary>
    public Conv2dGeometry Conv2 => Conv2dGeometry.Square(Planes, Planes, 3, StrideIn1x1 ? 1 : Stride, 1);

    /// <summary>conv3: 1x1, planes → planes · expansion.</summary>
    public Conv2dGeometry Conv3 => Conv2dGeometry.Square(Planes, OutPlanes, 1);

    /// <summary>downsample.0: 1x1, stride, inplanes → planes · expansion.</summary>
    public Conv2dGeometry Downsample => Conv2dGeometry.Square(Inplanes, OutPlanes, 1, Stride);

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad value.</summary>
    public void Validate()
    {
        if (Inplanes < 1) throw new ArgumentException($"se_resnet_block: inplanes must be at least 1, got {Inplanes}.");
        if (Planes < 1) throw new ArgumentException($"se_resnet_block: planes must be at least 1, got {Planes}.");
        if (Stride < 1) throw new ArgumentException($"se_resnet_block: stride must be at least 1, got {Stride}.");
        if (Expansion < 1) throw new ArgumentException($"se_resnet_block: expansion must be at least 1, got {Expansion}.");
        if (!(Eps > 0) || !double.IsFinite(Eps)) throw new ArgumentException($"se_resnet_block: eps must be positive and finite, got {Eps}.");
        if (!Enum.IsDefined(Placement)) throw new ArgumentException($"se_resnet_block: unknown placement {Placement}.");
        if (Se.Channels != SeChannels)
            throw new ArgumentException($"se_resnet_block: the SE module has {Se.Channels} channels, the {Placement} placement needs {SeChannels}.");
    }
}
