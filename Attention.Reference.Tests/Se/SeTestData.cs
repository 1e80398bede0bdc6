using Attention.Reference.Cases;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Reference.Tests.Se;

/// <summary>Random SE cases for the tests.</summary>
internal static class SeTestData
{
    internal static readonly SeCaseModule Module = new();

    internal static DenseTensor<double> Normal(Random rng, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            t.Data[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }
        return t;
    }

    internal static DenseTensor<double> Uniform(Random rng, double bound, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (2 * rng.NextDouble() - 1) * bound;
        return t;
    }

    /// <summary>A random SE configuration with its inputs and parameters.</summary>
    internal static (SeOptions Options, DenseTensor<double> X, DenseTensor<double> Dy, SeParameters<double> P) Random(
        int seed, int n, int c, int hidden, int h, int w, bool bias, SeGate gate, SePool pool, double weightScale = 1.0)
    {
        var rng = new Random(seed);
        var o = new SeOptions(c, hidden, bias, gate, pool);
        var x = Normal(rng, n, c, h, w);
        var dy = Normal(rng, n, c, h, w);
        var p = new SeParameters<double>(o,
            Uniform(rng, weightScale / Math.Sqrt(c), hidden, c), bias ? Uniform(rng, 1 / Math.Sqrt(c), hidden) : null,
            Uniform(rng, weightScale / Math.Sqrt(hidden), c, hidden), bias ? Uniform(rng, 1 / Math.Sqrt(hidden), c) : null);
        return (o, x, dy, p);
    }

    /// <summary>Builds case-module inputs from tensors.</summary>
    internal static (CaseConfig Config, TensorSet<double> Inputs, TensorSet<double> Params) AsCase(
        SeOptions o, DenseTensor<double> x, DenseTensor<double>? dy, SeParameters<double> p)
    {
        var config = CaseConfig.Create("se", ("channels", o.Channels), ("hidden", o.Hidden), ("bias", o.Bias),
            ("gate", o.Gate == SeGate.Sigmoid ? "sigmoid" : "hard_sigmoid"), ("pool", o.Pool == SePool.Avg ? "avg" : "max"));
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", x);
        if (dy is not null) inputs.Set("y.grad", dy);
        var ps = new TensorSet<double>("params");
        ps.Set("fc1.weight", p.W1);
        if (p.B1 is not null) ps.Set("fc1.bias", p.B1);
        ps.Set("fc2.weight", p.W2);
        if (p.B2 is not null) ps.Set("fc2.bias", p.B2);
        return (config, inputs, ps);
    }

    internal static SeParameters<float> ToFloat(SeOptions o, SeParameters<double> p) =>
        new(o, p.W1.Cast<float>(), p.B1?.Cast<float>(), p.W2.Cast<float>(), p.B2?.Cast<float>());

    internal static double MaxAbs(DenseTensor<double> t) => t.Data.Select(Math.Abs).DefaultIfEmpty(0).Max();

    /// <summary>max_i |a_i − e_i| / max_i |e_i| (the relative error on the tensor's scale).</summary>
    internal static double ScaledError<TA>(DenseTensor<TA> actual, DenseTensor<double> expected)
        where TA : System.Numerics.IFloatingPointIeee754<TA>
    {
        Assert.True(actual.HasShape(expected.Shape), $"shape {actual.ShapeString} vs {expected.ShapeString}");
        double scale = Math.Max(MaxAbs(expected), double.Epsilon);
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
            worst = Math.Max(worst, Math.Abs(double.CreateChecked(actual.Data[i]) - expected.Data[i]) / scale);
        return worst;
    }
}
