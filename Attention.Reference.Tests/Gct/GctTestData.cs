using Attention.Reference.Cases;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Reference.Tests.Gct;

/// <summary>Small random GCT problems shared by the GCT test classes.</summary>
internal static class GctTestData
{
    public static DenseTensor<double> Uniform(Random rng, double lo, double hi, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = lo + (hi - lo) * rng.NextDouble();
        return t;
    }

    /// <summary>A case with random x (non-negative for after_relu), y.grad and parameters that make the gate non-trivial.</summary>
    public static GeneratedCase Case(int seed, string mode, bool afterRelu, int n, int c, int h, int w, double eps = 1e-5,
        int zeroChannel = -1)
    {
        var rng = new Random(seed);
        var x = Uniform(rng, afterRelu ? 0 : -1, 1, n, c, h, w);
        if (zeroChannel >= 0)
            for (int ni = 0; ni < n; ni++)
                for (int hi = 0; hi < h; hi++)
                    for (int wi = 0; wi < w; wi++)
                        x[ni, zeroChannel, hi, wi] = 0;
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", x);
        inputs.Set("y.grad", Uniform(rng, -1, 1, n, c, h, w));
        var ps = new TensorSet<double>("params");
        ps.Set("alpha", Uniform(rng, 0.5, 1.5, 1, c, 1, 1));
        ps.Set("gamma", Uniform(rng, -1.5, 1.5, 1, c, 1, 1));
        ps.Set("beta", Uniform(rng, -0.5, 0.5, 1, c, 1, 1));
        var config = CaseConfig.Create("gct", ("channels", c), ("mode", mode), ("epsilon", eps), ("after_relu", afterRelu));
        return new GeneratedCase($"gct_{mode}{(afterRelu ? "_after_relu" : "")}_{n}x{c}x{h}x{w}", config, inputs, ps);
    }

    public static GatedChannelTransformation<T> Module<T>(GeneratedCase c) where T : System.Numerics.IFloatingPointIeee754<T> =>
        GctCaseModule.Build(c.Config, c.Parameters.Cast<T>());

    /// <summary>max |a − e| / max |e| over a tensor (0 when both are zero).</summary>
    public static double RelMaxError(DenseTensor<double> expected, DenseTensor<float> actual)
    {
        Assert.True(expected.HasShape(actual.Shape), $"shape {actual.ShapeString} vs {expected.ShapeString}");
        double maxE = 0, maxD = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxE = Math.Max(maxE, Math.Abs(expected.Data[i]));
            maxD = Math.Max(maxD, Math.Abs(expected.Data[i] - actual.Data[i]));
        }
        return maxE == 0 ? maxD : maxD / maxE;
    }
}
