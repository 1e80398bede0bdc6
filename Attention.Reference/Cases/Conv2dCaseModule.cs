using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Cases;

/// <summary>
/// <c>"module": "conv2d"</c>: PyTorch's <c>nn.Conv2d</c> (docs/derivations/conv2d.md). Keys <c>in_channels</c>,
/// <c>out_channels</c>, <c>kernel_size</c> (required), <c>stride</c> (1), <c>padding</c> (0), <c>dilation</c> (1),
/// <c>groups</c> (1), <c>bias</c> (true); each size an int or an [h, w] pair. Parameters <c>weight</c>
/// [O, I/groups, kh, kw] and <c>bias</c> [O] (iff bias). The tree is one <see cref="Conv2dLayer{T}"/>: in float64 and
/// float32 alike the deterministic blocked kernel <see cref="Conv2d"/>, whose summation order docs/derivations/conv2d.md
/// defines; <see cref="Conv2dSpec"/> is the teaching reference, held against it in the tests.
/// </summary>
public sealed class Conv2dCaseModule : LayerCaseModule
{
    /// <inheritdoc />
    public override string Name => "conv2d";

    /// <inheritdoc />
    public override IReadOnlyList<string> ConfigKeys { get; } =
        ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"];

    /// <summary>Reads and validates the geometry and the bias flag from a case config.</summary>
    /// <exception cref="CaseFormatException">An unknown key, a missing or ill-typed value, or an invalid geometry.</exception>
    public Conv2dGeometry ReadGeometry(CaseConfig config, out bool hasBias)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.RejectUnknownKeys(ConfigKeys);
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
    public override Layer<T> Build<T>(CaseConfig config) => new Conv2dLayer<T>(ReadGeometry(config, out bool hasBias), hasBias);

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
            inputs.Set("x", Random(rng, 1.0, n, cin, h, w));
            inputs.Set("y.grad", Random(rng, 1.0, n, cout, ho, wo));
            var parameters = new TensorSet<double>("params.safetensors");
            double bound = 1.0 / Math.Sqrt(g.ReductionLength); // nn.Conv2d's default init range
            parameters.Set("weight", Random(rng, bound, g.WeightShape));
            if (bias) parameters.Set("bias", Random(rng, bound, cout));
            yield return new GeneratedCase(name, config, inputs, parameters);
        }
    }

    private static DenseTensor<double> Random(Random rng, double bound, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (2 * rng.NextDouble() - 1) * bound;
        return t;
    }
}
