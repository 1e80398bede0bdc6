using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// Module <c>"ca"</c>: the authors' <c>CoordAtt(inp, oup, reduction)</c> with BatchNorm in training or eval mode.
/// Keys: <c>channels</c>, <c>out_channels</c> (must equal <c>channels</c>), <c>mip</c> (default max(8, channels // reduction)),
/// <c>reduction</c> (32), <c>training</c> (required), <c>eps</c> (1e-5), <c>momentum</c> (0.1).
/// </summary>
public sealed class CaCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "ca";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } = ["channels", "out_channels", "mip", "reduction", "training", "eps", "momentum"];

    /// <summary>The hyper-parameters of a case, validated.</summary>
    /// <param name="Channels">C.</param>
    /// <param name="Mip">The hidden width.</param>
    /// <param name="Training">BatchNorm mode.</param>
    /// <param name="Eps">BatchNorm ε.</param>
    /// <param name="Momentum">BatchNorm momentum.</param>
    public sealed record Settings(int Channels, int Mip, bool Training, double Eps, double Momentum);

    /// <summary>Reads and validates the config.</summary>
    /// <exception cref="CaseFormatException">Unknown keys, non-positive sizes, out_channels ≠ channels, bad eps/momentum.</exception>
    public Settings Parse(CaseConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(ConfigKeys);
        int channels = config.GetInt("channels");
        if (channels < 1) throw new CaseFormatException($"{config.Source}: 'channels' must be at least 1, got {channels}.");
        int outChannels = config.GetInt("out_channels", channels);
        if (outChannels != channels)
            throw new CaseFormatException(
                $"{config.Source}: 'out_channels' ({outChannels}) must equal 'channels' ({channels}): CoordAtt multiplies the input " +
                "by gates with out_channels channels (out = identity * a_w * a_h), which only broadcasts when they are equal.");
        int reduction = config.GetInt("reduction", 32);
        if (reduction < 1) throw new CaseFormatException($"{config.Source}: 'reduction' must be at least 1, got {reduction}.");
        int mip = config.GetOptionalInt("mip") ?? CoordAtt<double>.DefaultMip(channels, reduction);
        if (mip < 1) throw new CaseFormatException($"{config.Source}: 'mip' must be at least 1, got {mip}.");
        bool training = config.GetBool("training");
        double eps = config.GetDouble("eps", 1e-5);
        if (!(eps >= 0) || double.IsInfinity(eps)) throw new CaseFormatException($"{config.Source}: 'eps' must be a finite number ≥ 0, got {eps}.");
        double momentum = config.GetDouble("momentum", 0.1);
        if (!(momentum >= 0 && momentum <= 1)) throw new CaseFormatException($"{config.Source}: 'momentum' must be in [0, 1], got {momentum}.");
        return new Settings(channels, mip, training, eps, momentum);
    }

    /// <inheritdoc />
    public override Layer<T> Build<T>(CaseConfig config)
    {
        var s = Parse(config);
        return CoordAtt<T>.CoordAttPy(s.Channels, s.Mip, s.Eps, s.Momentum);
    }

    /// <inheritdoc />
    protected override bool IsTraining(CaseConfig config) => Parse(config).Training;

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
            if (v.Mip is { } m) entries.Add(("mip", m));
            else entries.Add(("reduction", v.Reduction));
            entries.Add(("training", v.Training));
            var config = CaseConfig.Create(Name, [.. entries]);
            var inputs = new TensorSet<double>("inputs.safetensors");
            inputs.Set("x", Random(rng, 1.0, 0, v.N, v.C, v.H, v.W));
            inputs.Set("y.grad", Random(rng, 1.0, 0, v.N, v.C, v.H, v.W));
            var ps = new TensorSet<double>("params.safetensors");
            int[] W(int o, int i) => v.Conv4D ? [o, i, 1, 1] : [o, i];
            ps.Set("conv1.weight", Random(rng, 1.0 / Math.Sqrt(v.C), 0, W(mip, v.C)));
            ps.Set("conv1.bias", Random(rng, 0.3, 0, mip));
            ps.Set("bn1.weight", Random(rng, 0.3, 1.0, mip));
            ps.Set("bn1.bias", Random(rng, 0.5, 0, mip));
            ps.Set("bn1.running_mean", Random(rng, 0.2, 0, mip));
            var rv = Random(rng, 0.02, 0, mip);
            for (int i = 0; i < rv.Length; i++) rv.Data[i] = 0.05 + Math.Abs(rv.Data[i]) * 10;
            ps.Set("bn1.running_var", rv);
            ps.Set("conv_h.weight", Random(rng, 1.0 / Math.Sqrt(mip), 0, W(v.C, mip)));
            ps.Set("conv_h.bias", Random(rng, 0.3, 0, v.C));
            ps.Set("conv_w.weight", Random(rng, 1.0 / Math.Sqrt(mip), 0, W(v.C, mip)));
            ps.Set("conv_w.bias", Random(rng, 0.3, 0, v.C));
            yield return new GeneratedCase(v.Name, config, inputs, ps);
        }
    }

    private static DenseTensor<double> Random(Random rng, double scale, double offset, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++)
        {
            // Box–Muller normal.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            t.Data[i] = offset + scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return t;
    }
}
