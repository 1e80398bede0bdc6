using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// The <c>"se"</c> case module: Squeeze-and-Excitation. Keys: <c>channels</c>; exactly one of <c>hidden</c> and
/// <c>reduction</c> (hidden = channels // reduction); <c>bias</c> (default true); <c>gate</c> (<c>"sigmoid"</c>,
/// default, or <c>"hard_sigmoid"</c>); <c>pool</c> (<c>"avg"</c>, default, or <c>"max"</c>). Parameters
/// <c>fc1.weight</c>, <c>fc2.weight</c> as [out, in] or [out, in, 1, 1], and <c>fc1.bias</c>, <c>fc2.bias</c> when
/// bias is true. The tree is the paper's <see cref="SqueezeExcite{T}"/> (<see cref="SqueezeExcite{T}.Paper"/>).
/// </summary>
public sealed class SeCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "se";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } = ["channels", "reduction", "hidden", "bias", "gate", "pool"];

    /// <summary>Parses and validates the options of an <c>"se"</c> case.</summary>
    /// <exception cref="CaseFormatException">Unknown keys, both or neither of hidden/reduction, hidden &lt; 1, an unknown gate or pool.</exception>
    public SeOptions ParseOptions(CaseConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(ConfigKeys);
        int channels = config.GetInt("channels");
        if (channels < 1) throw new CaseFormatException($"{config.Source}: 'channels' must be at least 1, got {channels}.");
        return ParseOptions(config, channels, "channels", "hidden", "reduction", "bias", "gate", "pool", null);
    }

    /// <summary>Shared with the SE-ResNet block: reads SE options from the given keys.</summary>
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
    public override Layer<T> Build<T>(CaseConfig config) => SqueezeExcite<T>.Paper(ParseOptions(config));

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
        entries.Add(("bias", bias));
        entries.Add(("gate", gate));
        entries.Add(("pool", pool));
        var config = CaseConfig.Create(Name, entries.ToArray());
        int hid = hidden ?? channels / reduction!.Value;

        var inputs = new TensorSet<double>("inputs.safetensors");
        var x = Random(rng, n, channels, h, w);
        if (kinks)
            for (int i = 0; i < x.Length; i++) x.Data[i] = Math.Round(x.Data[i] * 2); // small integers: ties in every plane
        inputs.Set("x", x);
        inputs.Set("y.grad", Random(rng, n, channels, h, w));

        var parameters = new TensorSet<double>("params.safetensors");
        int[] s1 = convShaped ? [hid, channels, 1, 1] : [hid, channels];
        int[] s2 = convShaped ? [channels, hid, 1, 1] : [channels, hid];
        double a1 = 1 / Math.Sqrt(channels), a2 = 1 / Math.Sqrt(hid);
        var w1 = Uniform(rng, a1, s1);
        var w2 = Uniform(rng, a2, s2);
        DenseTensor<double>? b1 = bias ? Uniform(rng, a1, hid) : null;
        DenseTensor<double>? b2 = bias ? Uniform(rng, a2, channels) : null;
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

    private static DenseTensor<double> Random(Random rng, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++)
        {
            // Box–Muller standard normal.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            t.Data[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }
        return t;
    }

    private static DenseTensor<double> Uniform(Random rng, double bound, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (2 * rng.NextDouble() - 1) * bound;
        return t;
    }
}
