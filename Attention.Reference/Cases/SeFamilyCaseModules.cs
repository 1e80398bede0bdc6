using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>Activation names shared by the SE-family case modules.</summary>
internal static class ActivationNames
{
    public static Layer<T> Build<T>(CaseConfig config, string key, string fallback, params string[] allowed) where T : IFloatingPointIeee754<T>
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

    public static int Positive(CaseConfig config, string key, int value) =>
        value >= 1 ? value : throw new CaseFormatException($"{config.Source}: '{key}' must be at least 1, got {value}.");
}

/// <summary>
/// <c>"module": "torchvision_se"</c>: torchvision's <c>ops.SqueezeExcitation(input_channels, squeeze_channels,
/// activation, scale_activation)</c> as MobileNetV3 and EfficientNet use it. Keys <c>input_channels</c>,
/// <c>squeeze_channels</c>, <c>activation</c> (<c>relu</c> default, or <c>silu</c>), <c>scale_activation</c>
/// (<c>sigmoid</c> default, or <c>hard_sigmoid</c>). Parameters <c>fc1.weight</c> [squeeze, C, 1, 1], <c>fc1.bias</c>,
/// <c>fc2.weight</c>, <c>fc2.bias</c>.
/// </summary>
public sealed class TorchvisionSeCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "torchvision_se";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } = ["input_channels", "squeeze_channels", "activation", "scale_activation"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig config)
    {
        config.RejectUnknownKeys(ConfigKeys);
        int c = ActivationNames.Positive(config, "input_channels", config.GetInt("input_channels"));
        int s = ActivationNames.Positive(config, "squeeze_channels", config.GetInt("squeeze_channels"));
        return SqueezeExcite<T>.Torchvision(c, s, ActivationNames.Build<T>(config, "activation", "relu", "relu", "silu"),
            ActivationNames.Build<T>(config, "scale_activation", "sigmoid", "sigmoid", "hard_sigmoid"));
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        foreach (var (act, gate, name) in new[] { ("relu", "sigmoid", "torchvision_se_relu_sigmoid"), ("silu", "sigmoid", "torchvision_se_silu"),
                     ("relu", "hard_sigmoid", "torchvision_se_hardsigmoid") })
            yield return SeFamily.Generate(this, name, seed, CaseConfig.Create(Name, ("input_channels", 16), ("squeeze_channels", 8),
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
public sealed class TimmSeCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "timm_se";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } =
        ["channels", "rd_ratio", "rd_channels", "rd_divisor", "bias", "act_layer", "gate_layer", "norm", "training"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig config)
    {
        config.RejectUnknownKeys(ConfigKeys);
        int c = ActivationNames.Positive(config, "channels", config.GetInt("channels"));
        double ratio = config.GetDouble("rd_ratio", 1.0 / 16);
        int divisor = ActivationNames.Positive(config, "rd_divisor", config.GetInt("rd_divisor", 8));
        if (!(ratio > 0) || double.IsInfinity(ratio)) throw new CaseFormatException($"{config.Source}: 'rd_ratio' must be positive, got {ratio}.");
        int rd = config.GetOptionalInt("rd_channels") ?? SqueezeExcite<T>.MakeDivisible(c * ratio, divisor, 0);
        ActivationNames.Positive(config, "rd_channels", rd);
        bool bias = config.GetBool("bias", true);
        return new SqueezeExcite<T>("SEModule",
        [
            ("fc1", new Linear<T>(c, rd, bias, convForm: true)),
            ("bn", config.GetBool("norm", false) ? new BatchNorm2dLayer<T>(rd) : new Identity<T>()),
            ("act", ActivationNames.Build<T>(config, "act_layer", "relu", "relu", "silu", "relu6", "hard_swish")),
            ("fc2", new Linear<T>(rd, c, bias, convForm: true)),
            ("gate", ActivationNames.Build<T>(config, "gate_layer", "sigmoid", "sigmoid", "hard_sigmoid", "tanh")),
        ]);
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        yield return SeFamily.Generate(this, "timm_se_default", seed, CaseConfig.Create(Name, ("channels", 32)), 32);
        yield return SeFamily.Generate(this, "timm_se_silu_hardsigmoid_nobias", seed, CaseConfig.Create(Name, ("channels", 24),
            ("rd_ratio", 0.25), ("rd_divisor", 4), ("bias", false), ("act_layer", "silu"), ("gate_layer", "hard_sigmoid")), 24);
        yield return SeFamily.Generate(this, "timm_se_norm_tanh_train", seed, CaseConfig.Create(Name, ("channels", 16),
            ("rd_channels", 6), ("norm", true), ("gate_layer", "tanh"), ("training", true)), 16, n: 4);
    }
}

/// <summary>
/// <c>"module": "coordatt"</c>: Coordinate Attention as mbv2_ca.py names it, <c>CoordAtt(inp, oup, groups=32)</c>
/// (the pretrained MobileNetV2-CA checkpoint's naming): keys <c>inp</c>, <c>oup</c> (must equal inp), <c>groups</c>
/// (32; mip = max(8, inp // groups)), <c>training</c> (required). Parameters <c>conv1.*</c>, <c>bn1.*</c>,
/// <c>conv2.*</c> (→ a_h), <c>conv3.*</c> (→ a_w). The <c>ca</c> module is the same computation under coordatt.py's
/// names (conv_h, conv_w, reduction).
/// </summary>
public sealed class CoordAttCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "coordatt";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } = ["inp", "oup", "groups", "training"];

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig config)
    {
        config.RejectUnknownKeys(ConfigKeys);
        int inp = ActivationNames.Positive(config, "inp", config.GetInt("inp"));
        int oup = config.GetInt("oup", inp);
        if (oup != inp) throw new CaseFormatException($"{config.Source}: 'oup' ({oup}) must equal 'inp' ({inp}): y = x · a_w · a_h only broadcasts then.");
        config.GetBool("training");
        return CoordAtt<T>.Mbv2Ca(inp, oup, ActivationNames.Positive(config, "groups", config.GetInt("groups", 32)));
    }

    /// <inheritdoc />
    public override IEnumerable<GeneratedCase> Generate(int seed)
    {
        yield return SeFamily.Generate(this, "coordatt_eval", seed, CaseConfig.Create(Name, ("inp", 24), ("groups", 4), ("training", false)), 24);
        yield return SeFamily.Generate(this, "coordatt_train", seed, CaseConfig.Create(Name, ("inp", 16), ("training", true)), 16);
    }
}

/// <summary>Random cases for the SE-family modules.</summary>
internal static class SeFamily
{
    public static GeneratedCase Generate(LayerCaseModule module, string name, int seed, CaseConfig config, int channels, int n = 2)
    {
        var net = new Models.Network<double>(module.Name, module.Build<double>(config));
        int caseSeed = seed * 7919 + name.Length * 31 + name[^1];
        var ps = Models.RandomWeights.StateDict(net, caseSeed);
        var rng = new Random(caseSeed + 1);
        double Normal() => Models.RandomWeights.Gaussian(rng);
        var x = new DenseTensor<double>(n, channels, 5, 4);
        var dy = x.ZerosLike();
        for (int i = 0; i < x.Length; i++) { x.Data[i] = Normal(); dy.Data[i] = Normal(); }
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", x);
        inputs.Set("y.grad", dy);
        return new GeneratedCase(name, config, inputs, ps);
    }
}
