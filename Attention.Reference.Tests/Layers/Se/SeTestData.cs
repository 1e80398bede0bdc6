using Attention.Reference.Cases;
using Attention.Reference.Layers;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Layers.Se;

/// <summary>Random SE cases for the tests.</summary>
internal static class SeTestData
{
    internal static readonly ModelFactory Module = ModelZoo.Get("se");

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
            ("gate", SeOptions.NameOf(o.Gate)), ("pool", o.Pool == SePool.Avg ? "avg" : "max"));
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
                : Reference.Ops.Activations.HardSigmoidGrad(st.E.Data[q]));
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

/// <summary>An SE module's parameters as the tests write them, weights as [out, in] (or [out, in, 1, 1]).</summary>
internal sealed class SeParameters<T>(SeOptions options, DenseTensor<T> w1, DenseTensor<T>? b1, DenseTensor<T> w2, DenseTensor<T>? b2)
    where T : System.Numerics.IFloatingPointIeee754<T>
{
    public SeOptions Options { get; } = options;
    public DenseTensor<T> W1 { get; } = w1.Rank == 4 ? w1.Reshape(w1.Dim(0), w1.Dim(1)) : w1;
    public DenseTensor<T>? B1 { get; } = b1;
    public DenseTensor<T> W2 { get; } = w2.Rank == 4 ? w2.Reshape(w2.Dim(0), w2.Dim(1)) : w2;
    public DenseTensor<T>? B2 { get; } = b2;

    /// <summary>The state_dict the paper layer takes.</summary>
    public TensorSet<T> StateDict()
    {
        var s = new TensorSet<T>("params");
        s.Set("fc1.weight", W1);
        if (B1 is not null) s.Set("fc1.bias", B1);
        s.Set("fc2.weight", W2);
        if (B2 is not null) s.Set("fc2.bias", B2);
        return s;
    }
}

/// <summary>The named intermediates of one forward (docs/derivations/se.md), read from the layer's trace.</summary>
internal sealed class SeForwardState<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    public required DenseTensor<T> X { get; init; }
    public required DenseTensor<T> Z { get; init; }
    public required DenseTensor<T> H { get; init; }
    public required DenseTensor<T> R { get; init; }
    public required DenseTensor<T> E { get; init; }
    public required DenseTensor<T> S { get; init; }
    public required DenseTensor<T> Y { get; init; }
    internal required Network<T> Net { get; init; }
    internal required Pass<T> Pass { get; init; }
    internal required TraceLog Trace { get; init; }
}

/// <summary>x.grad and the parameter gradients (weights as [out, in]).</summary>
internal sealed class SeGradients<T> where T : System.Numerics.IFloatingPointIeee754<T>
{
    public required DenseTensor<T> Dx { get; init; }
    public required DenseTensor<T> DW1 { get; init; }
    public DenseTensor<T>? DB1 { get; init; }
    public required DenseTensor<T> DW2 { get; init; }
    public DenseTensor<T>? DB2 { get; init; }
}

/// <summary>
/// Runs the one SE layer (<see cref="SqueezeExcite{T}.Paper"/>) as the tests call it: a forward whose intermediates
/// are read from the trace the layer records, and the backward of that same pass.
/// </summary>
internal static class SeRun
{
    public static SeForwardState<T> Forward<T>(SeOptions o, DenseTensor<T> x, SeParameters<T> p, KernelPath kernels = KernelPath.Oracle)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var net = new Network<T>("se", SqueezeExcite<T>.Paper(o));
        net.LoadStateDict(p.StateDict());
        var trace = new TraceLog();
        var pass = new Pass<T> { Kernels = kernels, Trace = trace };
        var y = net.Root.Forward(x, pass);
        DenseTensor<T> Step(string name) => trace.Steps.Single(s => s.Phase == "forward" && s.Name == name).Value.Cast<T>();
        return new SeForwardState<T>
        {
            X = x, Z = Step("z"), H = Step("h"), R = Step("r"), E = Step("e"), S = Step("s"), Y = y, Net = net, Pass = pass, Trace = trace,
        };
    }

    public static SeGradients<T> Backward<T>(SeOptions o, SeParameters<T> p, SeForwardState<T> st, DenseTensor<T> dy, TraceLog? trace = null)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        _ = o;
        _ = p;
        var root = st.Net.Root;
        root.ZeroGrad();
        int before = st.Trace.Steps.Count;
        var dx = root.Backward(dy, st.Pass);
        if (trace is not null)
            foreach (var step in st.Trace.Steps.Skip(before)) trace.Backward(step.Equation, step.Name, step.Value);
        var grads = root.NamedParameters().ToDictionary(t => t.Name, t => t.Tensor.Grad!);
        DenseTensor<T> Matrix(DenseTensor<T> g) => g.Rank == 4 ? g.Reshape(g.Dim(0), g.Dim(1)) : g;
        return new SeGradients<T>
        {
            Dx = dx, DW1 = Matrix(grads["fc1.weight"]), DB1 = grads.GetValueOrDefault("fc1.bias"),
            DW2 = Matrix(grads["fc2.weight"]), DB2 = grads.GetValueOrDefault("fc2.bias"),
        };
    }

    /// <summary>Forward then backward on the fast kernels (what <c>attention-ref run</c> does for float32).</summary>
    public static (DenseTensor<T> Y, SeGradients<T> Grads) ForwardBackward<T>(SeOptions o, DenseTensor<T> x, SeParameters<T> p, DenseTensor<T> dy)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var st = Forward(o, x, p, KernelPath.Fast);
        return (st.Y, Backward(o, p, st, dy));
    }
}
