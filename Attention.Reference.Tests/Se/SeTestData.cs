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
            ("gate", SeGates.Name(o.Gate)), ("pool", o.Pool == SePool.Avg ? "avg" : "max"));
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

    /// <summary>
    /// The magnitudes of the terms each parameter gradient sums (the oracle's formulas with every factor replaced by its
    /// absolute value, and every squeeze/FC input by the magnitude of the terms that produced it). A float32 result's
    /// rounding error is a small multiple of u·(these magnitudes), however much the exact sum cancels, so the fast
    /// path is held to Tolerance · max(magnitude) per tensor.
    /// </summary>
    internal static (DenseTensor<double> DW1, DenseTensor<double> DW2, DenseTensor<double> DB1, DenseTensor<double> DB2) GradientMagnitudes(
        SeOptions o, SeParameters<double> p, SeForwardState<double> st, DenseTensor<double> dy)
    {
        var x = st.X;
        int n = x.Dim(0), c = o.Channels, r = o.Hidden, plane = x.Dim(2) * x.Dim(3);
        var zabs = new double[n * c];
        var dsabs = new double[n * c];
        for (int q = 0; q < n * c; q++)
        {
            double sa = 0, da = 0;
            for (int i = 0; i < plane; i++)
            {
                sa += Math.Abs(x.Data[q * plane + i]);
                da += Math.Abs(x.Data[q * plane + i] * dy.Data[q * plane + i]);
            }
            zabs[q] = o.Pool == SePool.Avg ? sa / plane : Math.Abs(st.Z.Data[q]);
            dsabs[q] = da;
        }
        var rabs = new double[n * r];
        for (int b = 0; b < n; b++)
            for (int j = 0; j < r; j++)
            {
                double sum = p.B1 is null ? 0 : Math.Abs(p.B1.Data[j]);
                for (int k = 0; k < c; k++) sum += Math.Abs(p.W1.Data[j * c + k]) * zabs[b * c + k];
                rabs[b * r + j] = st.H.Data[b * r + j] > 0 ? sum : 0;
            }
        var deabs = new double[n * c];
        for (int q = 0; q < n * c; q++)
            deabs[q] = dsabs[q] * (o.Gate == SeGate.Sigmoid
                ? st.S.Data[q] * (1 - st.S.Data[q])
                : Ops.Activations.HardSigmoidGrad(st.E.Data[q]));
        var dhabs = new double[n * r];
        for (int b = 0; b < n; b++)
            for (int j = 0; j < r; j++)
            {
                double sum = 0;
                for (int k = 0; k < c; k++) sum += deabs[b * c + k] * Math.Abs(p.W2.Data[k * r + j]);
                dhabs[b * r + j] = st.H.Data[b * r + j] > 0 ? sum : 0;
            }
        var dW1 = new DenseTensor<double>(r, c);
        var dW2 = new DenseTensor<double>(c, r);
        var db1 = new DenseTensor<double>(r);
        var db2 = new DenseTensor<double>(c);
        for (int b = 0; b < n; b++)
        {
            for (int k = 0; k < c; k++)
            {
                db2.Data[k] += deabs[b * c + k];
                for (int j = 0; j < r; j++) dW2.Data[k * r + j] += deabs[b * c + k] * rabs[b * r + j];
            }
            for (int j = 0; j < r; j++)
            {
                db1.Data[j] += dhabs[b * r + j];
                for (int k = 0; k < c; k++) dW1.Data[j * c + k] += dhabs[b * r + j] * zabs[b * c + k];
            }
        }
        return (dW1, dW2, db1, db2);
    }

    /// <summary>max_i |a_i − e_i| / max_i scale_i.</summary>
    internal static double ErrorOnScale(DenseTensor<float> actual, DenseTensor<double> expected, DenseTensor<double> scale)
    {
        double s = Math.Max(MaxAbs(scale), double.Epsilon), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs(actual.Data[i] - expected.Data[i]) / s);
        return worst;
    }
}
