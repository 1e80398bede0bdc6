using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Layers;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers.Gct;

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

    public static GctModule<T> Module<T>(GeneratedCase c) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var (_, epsilon, mode, afterRelu) = GctFactory.ParseOptions(c.Config);
        var ps = c.Parameters.Cast<T>();
        return new GctModule<T>(ps.Get("alpha"), ps.Get("gamma"), ps.Get("beta"), epsilon, mode, afterRelu);
    }

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

/// <summary>A GCT's parameters and hyper-parameters with the spec op (<see cref="Reference.Ops.Gct"/>) as methods, for the tests.</summary>
internal sealed class GctModule<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    /// <summary>The authors' initialisation (α = 1, γ = 0, β = 0), validated as the layer validates it.</summary>
    public GctModule(int channels, double epsilon = Reference.Ops.Gct.DefaultEpsilon, GctMode mode = GctMode.L2, bool afterRelu = false)
    {
        var layer = new GctLayer<T>(channels, epsilon, mode, afterRelu);
        (Alpha, Gamma, Beta, Epsilon, Mode, AfterRelu) = (layer.Alpha.Value, layer.Gamma.Value, layer.Beta.Value, epsilon, mode, afterRelu);
    }

    public GctModule(DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta, double epsilon = Reference.Ops.Gct.DefaultEpsilon,
        GctMode mode = GctMode.L2, bool afterRelu = false) =>
        (Alpha, Gamma, Beta, Epsilon, Mode, AfterRelu) = (alpha, gamma, beta, epsilon, mode, afterRelu);

    public DenseTensor<T> Alpha { get; }
    public DenseTensor<T> Gamma { get; }
    public DenseTensor<T> Beta { get; }
    public double Epsilon { get; }
    public GctMode Mode { get; }
    public bool AfterRelu { get; }

    public GctForward<T> Forward(DenseTensor<T> x, TraceLog? trace = null) =>
        Reference.Ops.Gct.Forward(x, Alpha, Gamma, Beta, Epsilon, Mode, AfterRelu, null, trace);

    public GctGradients<T> Backward(GctForward<T> fw, DenseTensor<T> dy, TraceLog? trace = null) => Reference.Ops.Gct.Backward(fw, dy, null, trace);
}
