using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// The <c>"gct"</c> case module: Gated Channel Transformation. Keys <c>channels</c>, <c>mode</c> (<c>"l2"</c> default,
/// or <c>"l1"</c>), <c>epsilon</c> (default 1e-5, must be ≥ 0), <c>after_relu</c> (default false; only l1 reads it).
/// Parameters <c>alpha</c>, <c>gamma</c>, <c>beta</c>, each <c>[1, C, 1, 1]</c>.
/// </summary>
public sealed class GctCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "gct";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } = ["channels", "mode", "epsilon", "after_relu"];

    /// <summary>Reads and validates the hyper-parameters of a case.</summary>
    /// <exception cref="CaseFormatException">Unknown keys, unknown mode, negative channels or ε.</exception>
    public static (int Channels, double Epsilon, GctMode Mode, bool AfterRelu) ParseOptions(CaseConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(["channels", "mode", "epsilon", "after_relu"]);
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
    public override Layer<T> Build<T>(CaseConfig config)
    {
        var (channels, epsilon, mode, afterRelu) = ParseOptions(config);
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
            var x = new DenseTensor<double>(v.N, v.C, v.H, v.W);
            for (int i = 0; i < x.Length; i++)
            {
                double value = rng.NextDouble() * 2 - 1;
                x.Data[i] = v.NonNegative ? Math.Max(value, 0) : value;
            }
            if (v.ZeroChannel)
                for (int n = 0; n < v.N; n++)
                    for (int h = 0; h < v.H; h++)
                        for (int w = 0; w < v.W; w++)
                            x[n, 1, h, w] = 0;
            var dy = x.ZerosLike();
            for (int i = 0; i < dy.Length; i++) dy.Data[i] = rng.NextDouble() * 2 - 1;
            var inputs = new TensorSet<double>("inputs.safetensors");
            inputs.Set("x", x);
            inputs.Set("y.grad", dy);
            var parameters = new TensorSet<double>("params.safetensors");
            parameters.Set("alpha", Random(rng, v.C, 0.5, 1.5));
            parameters.Set("gamma", Random(rng, v.C, -1.5, 1.5));
            parameters.Set("beta", Random(rng, v.C, -0.5, 0.5));
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

    private static DenseTensor<double> Random(Random rng, int c, double lo, double hi)
    {
        var t = new DenseTensor<double>(1, c, 1, 1);
        for (int i = 0; i < c; i++) t.Data[i] = lo + (hi - lo) * rng.NextDouble();
        return t;
    }
}
