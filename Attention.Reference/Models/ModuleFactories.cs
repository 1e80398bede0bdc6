using Attention.Reference.Layers;
using Attention.Reference.Ops;
using static Attention.Reference.Models.RandomWeights;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Models;

/// <summary>
/// <c>"module": "conv2d"</c>: PyTorch's <c>nn.Conv2d</c> (docs/derivations/conv2d.md). Keys <c>in_channels</c>,
/// <c>out_channels</c>, <c>kernel_size</c> (required), <c>stride</c> (1), <c>padding</c> (0), <c>dilation</c> (1),
/// <c>groups</c> (1), <c>bias</c> (true); each size an int or an [h, w] pair. Parameters <c>weight</c>
/// [O, I/groups, kh, kw] and <c>bias</c> [O] (iff bias). The tree is one <see cref="Conv2dLayer{T}"/>.
/// </summary>
public sealed class Conv2dFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "conv2d";

    /// <inheritdoc />
    public override string Source => "torch.nn.Conv2d";

    private static readonly string[] Keys = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"];

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs => Keys;

    /// <summary>Reads and validates the geometry and the bias flag from a case config.</summary>
    /// <exception cref="CaseFormatException">An unknown key, a missing or ill-typed value, or an invalid geometry.</exception>
    public static Conv2dGeometry ReadGeometry(CaseConfig config, out bool hasBias)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(Keys);
        var g = new Conv2dGeometry(
            config.GetInt("in_channels"), config.GetInt("out_channels"), config.GetPair("kernel_size"),
            config.GetPair("stride", (1, 1)), config.GetPair("padding", (0, 0)), config.GetPair("dilation", (1, 1)),
            config.GetInt("groups", 1));
        hasBias = config.GetBool("bias", true);
        try
        {
            g.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CaseFormatException($"{config.Source}: {e.Message}", e);
        }
        return g;
    }

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs) => new Conv2dLayer<T>(ReadGeometry(kwargs, out bool hasBias), hasBias);

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var rng = new Random(seed);
        // name, in, out, kernel, stride, padding, dilation, groups, bias, (N, H, W)
        (string, int, int, int[], int[], int[], int[], int, bool, int, int, int)[] variants =
        [
            ("conv2d_3x3_p1_bias", 4, 6, [3, 3], [1, 1], [1, 1], [1, 1], 1, true, 2, 7, 6),
            ("conv2d_3x3_s2_nobias", 5, 3, [3, 3], [2, 2], [0, 0], [1, 1], 1, false, 2, 9, 8),
            ("conv2d_3x3_d2_p2", 3, 4, [3, 3], [1, 1], [2, 2], [2, 2], 1, true, 1, 8, 7),
            ("conv2d_1x3_dilated_grouped", 4, 6, [1, 3], [1, 1], [0, 2], [1, 2], 2, true, 2, 5, 7),
            ("conv2d_depthwise_3x3", 8, 8, [3, 3], [1, 1], [1, 1], [1, 1], 8, true, 2, 6, 5),
            ("conv2d_depthwise_mult2_s2", 3, 6, [3, 3], [2, 2], [1, 1], [1, 1], 3, false, 1, 7, 7),
            ("conv2d_pointwise_1x1", 6, 5, [1, 1], [1, 1], [0, 0], [1, 1], 1, true, 2, 4, 5),
            ("conv2d_pointwise_1x1_s2_nobias", 7, 4, [1, 1], [2, 2], [0, 0], [1, 1], 1, false, 1, 7, 6),
            ("conv2d_nonsquare_3x5_s2x1", 3, 4, [3, 5], [2, 1], [1, 2], [1, 1], 1, true, 2, 7, 8),
            ("conv2d_2x3_s1x3_d2x1_g3", 6, 9, [2, 3], [1, 3], [0, 1], [2, 1], 3, true, 1, 6, 10),
            ("conv2d_stem_7x7_s2_p3", 3, 4, [7, 7], [2, 2], [3, 3], [1, 1], 1, false, 1, 11, 10),
        ];
        foreach (var (name, cin, cout, k, s, p, d, groups, bias, n, h, w) in variants)
        {
            var config = CaseConfig.Create("conv2d", ("in_channels", cin), ("out_channels", cout), ("kernel_size", k),
                ("stride", s), ("padding", p), ("dilation", d), ("groups", groups), ("bias", bias));
            var g = new Conv2dGeometry(cin, cout, (k[0], k[1]), (s[0], s[1]), (p[0], p[1]), (d[0], d[1]), groups);
            var (ho, wo) = g.OutputSize(h, w);
            var inputs = new TensorSet<double>("inputs.safetensors");
            inputs.Set("x", Uniform(rng, -1, 1, [n, cin, h, w]));
            inputs.Set("y.grad", Uniform(rng, -1, 1, [n, cout, ho, wo]));
            var parameters = new TensorSet<double>("params.safetensors");
            double bound = 1.0 / Math.Sqrt(g.ReductionLength); // nn.Conv2d's default init range
            parameters.Set("weight", Uniform(rng, -1, 1, g.WeightShape, bound));
            if (bias) parameters.Set("bias", Uniform(rng, -1, 1, [cout], bound));
            yield return new GeneratedCase(name, config, inputs, parameters);
        }
    }
}

/// <summary>
/// <c>"module": "se"</c>: the SENet paper's Squeeze-and-Excitation (<see cref="SqueezeExcite{T}.Paper"/>). Keys:
/// <c>channels</c>; exactly one of <c>hidden</c> and <c>reduction</c> (hidden = channels // reduction); <c>bias</c>
/// (true); <c>gate</c> (<c>"sigmoid"</c>, <c>"hard_sigmoid"</c>, <c>"tanh"</c>, <c>"relu"</c>); <c>pool</c>
/// (<c>"avg"</c> or <c>"max"</c>). Parameters <c>fc1.weight</c>, <c>fc2.weight</c> as [out, in] or [out, in, 1, 1],
/// and <c>fc1.bias</c>, <c>fc2.bias</c> when bias is true.
/// </summary>
public sealed class SeFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "se";

    /// <inheritdoc />
    public override string Source => "SENet (Hu et al.), Fig. 2 and Table 13's gates";

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs { get; } = ["channels", "reduction", "hidden", "bias", "gate", "pool"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        int channels = kwargs.GetInt("channels");
        if (channels < 1) throw new CaseFormatException($"{kwargs.Source}: 'channels' must be at least 1, got {channels}.");
        return SqueezeExcite<T>.Paper(ParseOptions(kwargs, channels, "channels", "hidden", "reduction", "bias", "gate", "pool", null));
    }

    /// <summary>Reads SE options from the given keys (shared with the SE-ResNet block).</summary>
    internal static SeOptions ParseOptions(CaseConfig config, int channels, string channelsKey, string? hiddenKey, string reductionKey,
        string? biasKey, string? gateKey, string? poolKey, int? defaultReduction)
    {
        int? hidden = hiddenKey is null ? null : config.GetOptionalInt(hiddenKey);
        int? reduction = config.GetOptionalInt(reductionKey);
        if (hidden is not null && reduction is not null)
            throw new CaseFormatException(
                $"{config.Source}: give exactly one of '{hiddenKey}' and '{reductionKey}', not both (hidden = {hidden}, reduction = {reduction}).");
        if (hidden is null && reduction is null)
        {
            if (defaultReduction is null)
                throw new CaseFormatException(
                    $"{config.Source}: module '{config.Module}' needs exactly one of '{hiddenKey}' (the hidden width) and '{reductionKey}' (hidden = {channelsKey} // {reductionKey}); neither is given.");
            reduction = defaultReduction;
        }
        int width;
        if (hidden is { } hv)
        {
            if (hv < 1) throw new CaseFormatException($"{config.Source}: '{hiddenKey}' (the SE hidden width) must be at least 1, got {hv}.");
            width = hv;
        }
        else
        {
            int r = reduction!.Value;
            if (r < 1) throw new CaseFormatException($"{config.Source}: '{reductionKey}' must be at least 1, got {r}.");
            width = channels / r;
            if (width < 1)
                throw new CaseFormatException(
                    $"{config.Source}: the SE hidden width {channelsKey} // {reductionKey} = {channels} // {r} = {width} is below 1.");
        }
        bool bias = biasKey is null || config.GetBool(biasKey, true);
        var gate = (gateKey is null ? "sigmoid" : config.GetString(gateKey, "sigmoid")) switch
        {
            "sigmoid" => SeGate.Sigmoid,
            "hard_sigmoid" => SeGate.HardSigmoid,
            "tanh" => SeGate.Tanh,
            "relu" => SeGate.Relu,
            var g => throw new CaseFormatException($"{config.Source}: unknown gate '{g}'; expected \"sigmoid\", \"hard_sigmoid\", \"tanh\" or \"relu\"."),
        };
        var pool = (poolKey is null ? "avg" : config.GetString(poolKey, "avg")) switch
        {
            "avg" => SePool.Avg,
            "max" => SePool.Max,
            var p => throw new CaseFormatException($"{config.Source}: unknown pool '{p}'; expected \"avg\" or \"max\"."),
        };
        return new SeOptions(channels, width, bias, gate, pool);
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var rng = new Random(seed);
        // (name, channels, hidden or null, reduction or null, bias, gate, pool, conv-shaped weights, N, H, W)
        yield return Make(rng, "se_avg_sigmoid_bias_r4", 16, null, 4, true, "sigmoid", "avg", false, 2, 5, 4);
        yield return Make(rng, "se_avg_sigmoid_nobias_h3_conv", 12, 3, null, false, "sigmoid", "avg", true, 3, 3, 3);
        yield return Make(rng, "se_max_hardsigmoid_bias_h4", 8, 4, null, true, "hard_sigmoid", "max", false, 2, 4, 5);
        yield return Make(rng, "se_max_sigmoid_nobias_r2_conv", 10, null, 2, false, "sigmoid", "max", true, 2, 3, 4);
        yield return Make(rng, "se_avg_hardsigmoid_bias_h5_conv", 10, 5, null, true, "hard_sigmoid", "avg", true, 2, 4, 4);
        yield return Make(rng, "se_avg_hardsigmoid_nobias_r3", 9, null, 3, false, "hard_sigmoid", "avg", false, 2, 2, 5);
        yield return Make(rng, "se_max_ties_hardsigmoid_kinks", 6, 3, null, true, "hard_sigmoid", "max", false, 2, 3, 3, kinks: true);
        // The SENet paper's excitation ablation (Table 13): tanh and ReLU as the gate.
        yield return Make(rng, "se_avg_tanh_bias_h4", 12, 4, null, true, "tanh", "avg", false, 2, 4, 3);
        yield return Make(rng, "se_max_relu_bias_r2_conv", 8, null, 2, true, "relu", "max", true, 2, 3, 4);
    }

    private GeneratedCase Make(Random rng, string name, int channels, int? hidden, int? reduction, bool bias, string gate,
        string pool, bool convShaped, int n, int h, int w, bool kinks = false)
    {
        var entries = new List<(string, object)> { ("channels", channels) };
        if (hidden is { } hv) entries.Add(("hidden", hv));
        if (reduction is { } rv) entries.Add(("reduction", rv));
        entries.AddRange([("bias", bias), ("gate", gate), ("pool", pool)]);
        var config = CaseConfig.Create(Name, [.. entries]);
        int hid = hidden ?? channels / reduction!.Value;

        var inputs = new TensorSet<double>("inputs.safetensors");
        var x = Normal(rng, 1, 0, n, channels, h, w);
        if (kinks)
            for (int i = 0; i < x.Length; i++) x.Data[i] = Math.Round(x.Data[i] * 2); // small integers: ties in every plane
        inputs.Set("x", x);
        inputs.Set("y.grad", Normal(rng, 1, 0, n, channels, h, w));

        var parameters = new TensorSet<double>("params.safetensors");
        int[] s1 = convShaped ? [hid, channels, 1, 1] : [hid, channels];
        int[] s2 = convShaped ? [channels, hid, 1, 1] : [channels, hid];
        double a1 = 1 / Math.Sqrt(channels), a2 = 1 / Math.Sqrt(hid);
        var w1 = Uniform(rng, -1, 1, s1, a1);
        var w2 = Uniform(rng, -1, 1, s2, a2);
        DenseTensor<double>? b1 = bias ? Uniform(rng, -1, 1, [hid], a1) : null;
        DenseTensor<double>? b2 = bias ? Uniform(rng, -1, 1, [channels], a2) : null;
        if (kinks)
        {
            // fc1 = 0 and b1 = [0, 1, -1]: h hits relu's kink at 0; fc2 = 0 and b2 cycling -3, 3, 0, -4, 4, 1.5:
            // e hits both of hard-sigmoid's kinks exactly.
            Array.Clear(w1.Data);
            Array.Clear(w2.Data);
            double[] hb = [0, 1, -1];
            double[] eb = [-3, 3, 0, -4, 4, 1.5];
            for (int j = 0; j < hid; j++) b1!.Data[j] = hb[j % hb.Length];
            for (int c = 0; c < channels; c++) b2!.Data[c] = eb[c % eb.Length];
        }
        parameters.Set("fc1.weight", w1);
        if (bias) parameters.Set("fc1.bias", b1!);
        parameters.Set("fc2.weight", w2);
        if (bias) parameters.Set("fc2.bias", b2!);
        return new GeneratedCase(name, config, inputs, parameters);
    }
}

/// <summary>
/// <c>"module": "torchvision_se"</c>: torchvision's <c>ops.SqueezeExcitation(input_channels, squeeze_channels,
/// activation, scale_activation)</c> as MobileNetV3 and EfficientNet use it. Keys <c>input_channels</c>,
/// <c>squeeze_channels</c>, <c>activation</c> (<c>relu</c> default, or <c>silu</c>), <c>scale_activation</c>
/// (<c>sigmoid</c> default, or <c>hard_sigmoid</c>). Parameters <c>fc1.weight</c> [squeeze, C, 1, 1], <c>fc1.bias</c>,
/// <c>fc2.weight</c>, <c>fc2.bias</c>.
/// </summary>
public sealed class TorchvisionSeFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "torchvision_se";

    /// <inheritdoc />
    public override string Source => "torchvision.ops.SqueezeExcitation";

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs { get; } = ["input_channels", "squeeze_channels", "activation", "scale_activation"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        int c = Kw.Positive(kwargs, "input_channels", kwargs.GetInt("input_channels"));
        int s = Kw.Positive(kwargs, "squeeze_channels", kwargs.GetInt("squeeze_channels"));
        return SqueezeExcite<T>.Torchvision(c, s, Kw.Activation<T>(kwargs, "activation", "relu", "relu", "silu"),
            Kw.Activation<T>(kwargs, "scale_activation", "sigmoid", "sigmoid", "hard_sigmoid"));
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        foreach (var (act, gate, name) in new[] { ("relu", "sigmoid", "torchvision_se_relu_sigmoid"), ("silu", "sigmoid", "torchvision_se_silu"),
                     ("relu", "hard_sigmoid", "torchvision_se_hardsigmoid") })
            yield return Kw.RandomCase(this, name, seed, CaseConfig.Create(Name, ("input_channels", 16), ("squeeze_channels", 8),
                ("activation", act), ("scale_activation", gate)), 16);
    }
}

/// <summary>
/// <c>"module": "timm_se"</c>: timm's <c>SEModule(channels, rd_ratio=1/16, rd_channels=None, rd_divisor=8, bias=True,
/// act_layer, norm_layer, gate_layer)</c>. Keys <c>channels</c>, <c>rd_ratio</c> (0.0625), <c>rd_channels</c>
/// (default <c>make_divisible(channels · rd_ratio, rd_divisor, round_limit=0)</c>), <c>rd_divisor</c> (8),
/// <c>bias</c> (true), <c>act_layer</c> (<c>relu</c>, <c>silu</c>, <c>relu6</c>, <c>hard_swish</c>), <c>gate_layer</c>
/// (<c>sigmoid</c>, <c>hard_sigmoid</c>, <c>tanh</c>), <c>norm</c> (false: a BatchNorm2d between fc1 and the activation
/// when true, as <c>norm_layer=nn.BatchNorm2d</c>), <c>training</c> (false; the norm's mode).
/// </summary>
public sealed class TimmSeFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "timm_se";

    /// <inheritdoc />
    public override string Source => "timm.layers.squeeze_excite.SEModule";

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs { get; } =
        ["channels", "rd_ratio", "rd_channels", "rd_divisor", "bias", "act_layer", "gate_layer", "norm", "training"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        int c = Kw.Positive(kwargs, "channels", kwargs.GetInt("channels"));
        double ratio = kwargs.GetDouble("rd_ratio", 1.0 / 16);
        int divisor = Kw.Positive(kwargs, "rd_divisor", kwargs.GetInt("rd_divisor", 8));
        if (!(ratio > 0) || double.IsInfinity(ratio)) throw new CaseFormatException($"{kwargs.Source}: 'rd_ratio' must be positive, got {ratio}.");
        int rd = kwargs.GetOptionalInt("rd_channels") ?? SqueezeExcite<T>.MakeDivisible(c * ratio, divisor, 0);
        Kw.Positive(kwargs, "rd_channels", rd);
        bool bias = kwargs.GetBool("bias", true);
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(c, rd, bias, convForm: true)),
            ("bn", kwargs.GetBool("norm", false) ? new BatchNorm2dLayer<T>(rd) : new Identity<T>()),
            ("act", Kw.Activation<T>(kwargs, "act_layer", "relu", "relu", "silu", "relu6", "hard_swish")),
            ("fc2", new Linear<T>(rd, c, bias, convForm: true)),
            ("gate", Kw.Activation<T>(kwargs, "gate_layer", "sigmoid", "sigmoid", "hard_sigmoid", "tanh")),
        ]);
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        yield return Kw.RandomCase(this, "timm_se_default", seed, CaseConfig.Create(Name, ("channels", 32)), 32);
        yield return Kw.RandomCase(this, "timm_se_silu_hardsigmoid_nobias", seed, CaseConfig.Create(Name, ("channels", 24),
            ("rd_ratio", 0.25), ("rd_divisor", 4), ("bias", false), ("act_layer", "silu"), ("gate_layer", "hard_sigmoid")), 24);
        yield return Kw.RandomCase(this, "timm_se_norm_tanh_train", seed, CaseConfig.Create(Name, ("channels", 16),
            ("rd_channels", 6), ("norm", true), ("gate_layer", "tanh"), ("training", true)), 16, n: 4);
    }
}

/// <summary>
/// <c>"module": "ca"</c>: the authors' <c>CoordAtt(inp, oup, reduction)</c> (coordatt.py) with BatchNorm in training or
/// eval mode. Keys: <c>channels</c>, <c>out_channels</c> (must equal <c>channels</c>), <c>mip</c> (default
/// max(8, channels // reduction)), <c>reduction</c> (32), <c>training</c> (required), <c>eps</c> (1e-5),
/// <c>momentum</c> (0.1).
/// </summary>
public sealed class CaFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "ca";

    /// <inheritdoc />
    public override string Source => "houqb/CoordAttention coordatt.py CoordAtt(inp, oup, reduction)";

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs { get; } = ["channels", "out_channels", "mip", "reduction", "training", "eps", "momentum"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        int channels = Kw.Positive(kwargs, "channels", kwargs.GetInt("channels"));
        int outChannels = kwargs.GetInt("out_channels", channels);
        if (outChannels != channels)
            throw new CaseFormatException(
                $"{kwargs.Source}: 'out_channels' ({outChannels}) must equal 'channels' ({channels}): CoordAtt multiplies the input " +
                "by gates with out_channels channels (out = identity * a_w * a_h), which only broadcasts when they are equal.");
        int reduction = Kw.Positive(kwargs, "reduction", kwargs.GetInt("reduction", 32));
        int mip = Kw.Positive(kwargs, "mip", kwargs.GetOptionalInt("mip") ?? CoordAtt<T>.DefaultMip(channels, reduction));
        IsTraining(kwargs);
        double eps = kwargs.GetDouble("eps", 1e-5);
        if (!(eps >= 0) || double.IsInfinity(eps)) throw new CaseFormatException($"{kwargs.Source}: 'eps' must be a finite number ≥ 0, got {eps}.");
        double momentum = kwargs.GetDouble("momentum", 0.1);
        if (!(momentum >= 0 && momentum <= 1)) throw new CaseFormatException($"{kwargs.Source}: 'momentum' must be in [0, 1], got {momentum}.");
        return CoordAtt<T>.CoordAttPy(channels, mip, eps, momentum);
    }

    /// <summary>Training is required: the two modes are different computations.</summary>
    public override bool IsTraining(CaseConfig kwargs)
    {
        ArgumentNullException.ThrowIfNull(kwargs);
        return kwargs.GetBool("training");
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        // (name, N, C, H, W, mip or null → reduction default, training, conv weights 4-D)
        var variants = new (string Name, int N, int C, int H, int W, int? Mip, int Reduction, bool Training, bool Conv4D)[]
        {
            ("ca_c12_h4_w6_train", 2, 12, 4, 6, 8, 32, true, true),
            ("ca_c24_h5_w8_eval", 2, 24, 5, 8, 8, 32, false, true),
            ("ca_c13_h3_w7_n1_train", 1, 13, 3, 7, null, 32, true, true),
            ("ca_c20_h6_w2_train_mip5_linear", 3, 20, 6, 2, 5, 32, true, false),
            ("ca_c64_h3_w3_eval_r4", 2, 64, 3, 3, null, 4, false, true),
        };
        int k = 0;
        foreach (var v in variants)
        {
            var rng = new Random(seed + 7919 * k++);
            int mip = v.Mip ?? CoordAtt<double>.DefaultMip(v.C, v.Reduction);
            var entries = new List<(string, object)> { ("channels", v.C), ("out_channels", v.C) };
            entries.Add(v.Mip is { } m ? ("mip", m) : ("reduction", v.Reduction));
            entries.Add(("training", v.Training));
            var config = CaseConfig.Create(Name, [.. entries]);
            var inputs = new TensorSet<double>("inputs.safetensors");
            inputs.Set("x", Normal(rng, 1.0, 0, v.N, v.C, v.H, v.W));
            inputs.Set("y.grad", Normal(rng, 1.0, 0, v.N, v.C, v.H, v.W));
            var ps = new TensorSet<double>("params.safetensors");
            int[] W(int o, int i) => v.Conv4D ? [o, i, 1, 1] : [o, i];
            ps.Set("conv1.weight", Normal(rng, 1.0 / Math.Sqrt(v.C), 0, W(mip, v.C)));
            ps.Set("conv1.bias", Normal(rng, 0.3, 0, mip));
            ps.Set("bn1.weight", Normal(rng, 0.3, 1.0, mip));
            ps.Set("bn1.bias", Normal(rng, 0.5, 0, mip));
            ps.Set("bn1.running_mean", Normal(rng, 0.2, 0, mip));
            var rv = Normal(rng, 0.02, 0, mip);
            for (int i = 0; i < rv.Length; i++) rv.Data[i] = 0.05 + Math.Abs(rv.Data[i]) * 10;
            ps.Set("bn1.running_var", rv);
            ps.Set("conv_h.weight", Normal(rng, 1.0 / Math.Sqrt(mip), 0, W(v.C, mip)));
            ps.Set("conv_h.bias", Normal(rng, 0.3, 0, v.C));
            ps.Set("conv_w.weight", Normal(rng, 1.0 / Math.Sqrt(mip), 0, W(v.C, mip)));
            ps.Set("conv_w.bias", Normal(rng, 0.3, 0, v.C));
            yield return new GeneratedCase(v.Name, config, inputs, ps);
        }
    }
}

/// <summary>
/// <c>"module": "coordatt"</c>: Coordinate Attention as mbv2_ca.py names it, <c>CoordAtt(inp, oup, groups=32)</c>
/// (the pretrained MobileNetV2-CA checkpoint's naming): keys <c>inp</c>, <c>oup</c> (must equal inp), <c>groups</c>
/// (32; mip = max(8, inp // groups)), <c>training</c> (required). Parameters <c>conv1.*</c>, <c>bn1.*</c>,
/// <c>conv2.*</c> (→ a_h), <c>conv3.*</c> (→ a_w). The <c>ca</c> module is the same computation under coordatt.py's
/// names (conv_h, conv_w, reduction).
/// </summary>
public sealed class CoordAttFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "coordatt";

    /// <inheritdoc />
    public override string Source => "houqb/CoordAttention mbv2_ca.py CoordAtt(inp, oup, groups)";

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs { get; } = ["inp", "oup", "groups", "training"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        int inp = Kw.Positive(kwargs, "inp", kwargs.GetInt("inp"));
        int oup = kwargs.GetInt("oup", inp);
        if (oup != inp) throw new CaseFormatException($"{kwargs.Source}: 'oup' ({oup}) must equal 'inp' ({inp}): y = x · a_w · a_h only broadcasts then.");
        kwargs.GetBool("training");
        return CoordAtt<T>.Mbv2Ca(inp, oup, Kw.Positive(kwargs, "groups", kwargs.GetInt("groups", 32)));
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        yield return Kw.RandomCase(this, "coordatt_eval", seed, CaseConfig.Create(Name, ("inp", 24), ("groups", 4), ("training", false)), 24);
        yield return Kw.RandomCase(this, "coordatt_train", seed, CaseConfig.Create(Name, ("inp", 16), ("training", true)), 16);
    }
}

/// <summary>
/// <c>"module": "gct"</c>: Gated Channel Transformation. Keys <c>channels</c>, <c>mode</c> (<c>"l2"</c> default, or
/// <c>"l1"</c>), <c>epsilon</c> (default 1e-5, must be ≥ 0), <c>after_relu</c> (default false; only l1 reads it).
/// Parameters <c>alpha</c>, <c>gamma</c>, <c>beta</c>, each <c>[1, C, 1, 1]</c>.
/// </summary>
public sealed class GctFactory : ModelFactory
{
    /// <inheritdoc />
    public override string Name => "gct";

    /// <inheritdoc />
    public override string Source => "z-x-yang/GCT PyTorch/GCT.py GCT(num_channels, epsilon, mode, after_relu)";

    private static readonly string[] Keys = ["channels", "mode", "epsilon", "after_relu"];

    /// <inheritdoc />
    public override IReadOnlyList<string> Kwargs => Keys;

    /// <summary>Reads and validates the hyper-parameters of a case.</summary>
    /// <exception cref="CaseFormatException">Unknown keys, unknown mode, negative channels or ε.</exception>
    public static (int Channels, double Epsilon, GctMode Mode, bool AfterRelu) ParseOptions(CaseConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(Keys);
        int channels = config.GetInt("channels");
        if (channels < 0)
            throw new CaseFormatException($"{config.Source}: 'channels' must be >= 0, got {channels}.");
        string modeName = config.GetString("mode", "l2");
        if (!GctModes.Allowed.Contains(modeName))
            throw new CaseFormatException(
                $"{config.Source}: unknown GCT mode '{modeName}'; allowed modes: {string.Join(", ", GctModes.Allowed.Select(m => $"'{m}'"))}.");
        double epsilon = config.GetDouble("epsilon", Gct.DefaultEpsilon);
        if (!double.IsFinite(epsilon) || epsilon < 0)
            throw new CaseFormatException($"{config.Source}: 'epsilon' must be a finite number >= 0, got {CaseConfig.Invariant(epsilon)}.");
        return (channels, epsilon, GctModes.Parse(modeName), config.GetBool("after_relu", false));
    }

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig kwargs)
    {
        var (channels, epsilon, mode, afterRelu) = ParseOptions(kwargs);
        return new GctLayer<T>(channels, epsilon, mode, afterRelu);
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        var rng = new Random(seed);
        // (name, mode, after_relu, N, C, H, W, epsilon, zero channel, non-negative input)
        var variants = new (string Name, string Mode, bool AfterRelu, int N, int C, int H, int W, double Eps, bool ZeroChannel, bool NonNegative)[]
        {
            ("gct_l2_c6", "l2", false, 2, 6, 4, 5, 1e-5, false, false),
            ("gct_l2_c5_zero_channel", "l2", false, 2, 5, 3, 3, 1e-5, true, false),
            ("gct_l2_c4_eps1e-3", "l2", false, 3, 4, 2, 3, 1e-3, false, false),
            ("gct_l1_c6", "l1", false, 2, 6, 4, 5, 1e-5, false, false),
            ("gct_l1_c5_zero_channel", "l1", false, 2, 5, 3, 3, 1e-5, true, false),
            ("gct_l1_after_relu_c4", "l1", true, 2, 4, 3, 4, 1e-5, false, true),
            ("gct_l2_c3_saturated", "l2", false, 2, 3, 2, 3, 1e-5, false, false),
        };
        foreach (var v in variants)
        {
            var config = CaseConfig.Create("gct", ("channels", v.C), ("mode", v.Mode), ("epsilon", v.Eps), ("after_relu", v.AfterRelu));
            var x = Uniform(rng, -1, 1, [v.N, v.C, v.H, v.W]);
            if (v.NonNegative)
                for (int i = 0; i < x.Length; i++) x.Data[i] = Math.Max(x.Data[i], 0);
            if (v.ZeroChannel)
                for (int n = 0; n < v.N; n++)
                    x.Data.AsSpan((n * v.C + 1) * v.H * v.W, v.H * v.W).Clear();
            var inputs = new TensorSet<double>("inputs.safetensors");
            inputs.Set("x", x);
            inputs.Set("y.grad", Uniform(rng, -1, 1, [v.N, v.C, v.H, v.W]));
            var parameters = new TensorSet<double>("params.safetensors");
            parameters.Set("alpha", Uniform(rng, 0.5, 1.5, [1, v.C, 1, 1]));
            parameters.Set("gamma", Uniform(rng, -1.5, 1.5, [1, v.C, 1, 1]));
            parameters.Set("beta", Uniform(rng, -0.5, 0.5, [1, v.C, 1, 1]));
            if (v.Name.EndsWith("_saturated", StringComparison.Ordinal))
            {
                // β = ±25 on the first two channels: tanh rounds to ±1, the literal 1 + tanh u gives a gate of
                // exactly 2 and exactly 0, and ∂u = 0 there (as PyTorch computes it).
                parameters.Get("beta").Data[0] = 25;
                parameters.Get("beta").Data[1] = -25;
            }
            yield return new GeneratedCase(v.Name, config, inputs, parameters);
        }
    }
}

/// <summary>Keyword-argument helpers shared by the module factories.</summary>
internal static class Kw
{
    /// <summary>An activation named by <paramref name="key"/>, one of <paramref name="allowed"/>.</summary>
    public static Layer<T> Activation<T>(CaseConfig config, string key, string fallback, params string[] allowed)
        where T : IFloatingPointIeee754<T>
    {
        string name = config.GetString(key, fallback);
        if (!allowed.Contains(name))
            throw new CaseFormatException($"{config.Source}: unknown {key} '{name}'; expected one of {string.Join(", ", allowed.Select(a => $"\"{a}\""))}.");
        return name switch
        {
            "relu" => Act.Relu<T>(),
            "silu" => Act.Silu<T>(),
            "sigmoid" => Act.Sigmoid<T>(),
            "hard_sigmoid" => Act.Hardsigmoid<T>(),
            "tanh" => Act.Tanh<T>(),
            "hard_swish" => Act.Hardswish<T>(),
            _ => Act.Relu6<T>(),
        };
    }

    /// <summary><paramref name="value"/> when at least 1, else an error naming the key.</summary>
    public static int Positive(CaseConfig config, string key, int value) =>
        value >= 1 ? value : throw new CaseFormatException($"{config.Source}: '{key}' must be at least 1, got {value}.");

    /// <summary>A case with random weights (<see cref="RandomWeights.StateDict"/>) and standard-normal x, y.grad [n, C, 5, 4].</summary>
    public static GeneratedCase RandomCase(ModelFactory factory, string name, int seed, CaseConfig config, int channels, int n = 2)
    {
        int caseSeed = seed * 7919 + name.Length * 31 + name[^1];
        var ps = StateDict(factory.Create<double>(config), caseSeed);
        var rng = new Random(caseSeed + 1);
        var x = new DenseTensor<double>(n, channels, 5, 4);
        var dy = x.ZerosLike();
        for (int i = 0; i < x.Length; i++) { x.Data[i] = Gaussian(rng); dy.Data[i] = Gaussian(rng); }
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", x);
        inputs.Set("y.grad", dy);
        return new GeneratedCase(name, config, inputs, ps);
    }
}
