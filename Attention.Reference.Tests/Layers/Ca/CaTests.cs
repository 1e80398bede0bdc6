using Attention.Reference.Kernels;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Layers.Ca;

/// <summary>Coordinate Attention: golden cases, gradcheck in both BatchNorm modes, properties, bad input.</summary>
public class CaTests(ITestOutputHelper output)
{
    private static readonly ModelFactory Module = ModelZoo.Get("ca");

    internal static GeneratedCase Case(string name) => Module.Generate(1234).Single(c => c.Name == name);

    public static TheoryData<string> GeneratedNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Module.Generate(1234)) data.Add(c.Name);
        return data;
    }

    [Theory]
    [InlineData("ca_c12_train")]
    [InlineData("ca_c24_eval")]
    public void CaMatchesLibtorchGoldenCase(string name)
    {
        // |a − e| ≤ 1e-10·max|e| per element, for every expected tensor — except conv1.bias.grad in training mode, which
        // is exactly 0 in exact arithmetic (BatchNorm subtracts the batch mean, so conv1's bias cancels): both libtorch
        // and the oracle return rounding noise of the sum Σ df (~1e-16), and a tolerance scaled by the noise itself would
        // judge noise against noise. That tensor is held to 1e-10 × the scale of the cancelling terms, max_m Σ|df[·, m, ·]|.
        var folder = CaseFolder.Open(GoldenPack.CasePath(name));
        var trace = new TraceLog();
        var actual = folder.Run<double>(new RunOptions { Trace = trace });
        var expected = folder.ReadExpected()!;
        bool training = folder.Config.GetBool("training");
        var failures = new List<string>();
        foreach (var e in expected)
        {
            var a = actual.TryGet(e.Name);
            Assert.True(a is not null, $"{name}: the oracle did not produce '{e.Name}'");
            TensorComparison r;
            if (training && e.Name == "conv1.bias.grad")
            {
                var df = trace.Steps.Single(s => s.Name == "df").Value;
                int n = df.Dim(0), mip = df.Dim(1), l = df.Dim(2);
                double termScale = 0;
                for (int m = 0; m < mip; m++)
                {
                    double s = 0;
                    for (int i = 0; i < n; i++) for (int j = 0; j < l; j++) s += Math.Abs(df.Data[(i * mip + m) * l + j]);
                    termScale = Math.Max(termScale, s);
                }
                Assert.True(termScale > 1e-3, "the cancelling terms are not negligible");
                r = TensorComparer.Compare(e.Name, e.Values, a!.Data, e.Shape, 1e-10, atol: 1e-10 * termScale);
                output.WriteLine($"(conv1.bias.grad judged against max Σ|df| = {termScale:E3}; max |e| = {e.Values.Max(Math.Abs):E3}, max |a| = {a.Data.Max(Math.Abs):E3})");
            }
            else
            {
                r = TensorComparer.Compare(e, new StoredTensor(e.Name, StoredDType.F64, a!.ShapeArray(), a.Data), 1e-10);
            }
            output.WriteLine(r.ToString());
            if (!r.Passed) failures.Add(r.ToString());
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(10, expected.Count);
    }

    [Theory]
    [InlineData("ca_c12_train")]
    [InlineData("ca_c24_eval")]
    public void CaGoldenCaseMatchesUnderTheSharedComparison(string name) => Assert.Equal(10, GoldenPack.AssertMatches(name).Count);

    [Fact]
    public void CaTrainingGoldenCaseReturnsUpdatedRunningStatistics()
    {
        var folder = CaseFolder.Open(GoldenPack.CasePath("ca_c12_train"));
        DenseTensor<double>? f = null;
        var outputs = folder.Run<double>(new RunOptions { ModuleOutput = (name, t) => { if (name == "conv1") f = t.Clone(); } });
        var ps = folder.ReadParameters<double>();
        Assert.True(outputs.Contains("bn1.running_mean") && outputs.Contains("bn1.running_var"));
        // PyTorch's update from the batch statistics of bn1's input f = conv1(y_cat) [N, mip, H + W, 1], in the documented
        // order (sequential sums, n outer, positions inner): momentum 0.1 and the unbiased variance, bit for bit.
        Assert.NotNull(f);
        int n = f!.Dim(0), mip = f.Dim(1), l = f.Dim(2) * f.Dim(3);
        double m = n * l;
        for (int ch = 0; ch < mip; ch++)
        {
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++) for (int k = 0; k < l; k++) sum += f.Data[(i * mip + ch) * l + k];
            double mu = sum / m;
            for (int i = 0; i < n; i++) for (int k = 0; k < l; k++) { double d = f.Data[(i * mip + ch) * l + k] - mu; sq += d * d; }
            Assert.Equal(0.1 * mu + 0.9 * ps.Get("bn1.running_mean").Data[ch], outputs.Get("bn1.running_mean").Data[ch]);
            Assert.Equal(0.1 * (sq / (m - 1)) + 0.9 * ps.Get("bn1.running_var").Data[ch], outputs.Get("bn1.running_var").Data[ch]);
        }
        // Not the given buffers: they moved towards the batch statistics.
        Assert.NotEqual(ps.Get("bn1.running_mean").Data, outputs.Get("bn1.running_mean").Data);
        // The eval case returns no buffers.
        Assert.False(CaseFolder.Open(GoldenPack.CasePath("ca_c24_eval")).Run<double>().Contains("bn1.running_var"));
    }

    [Theory]
    [MemberData(nameof(GeneratedNames))]
    public void CaGradcheck(string name)
    {
        var c = Case(name);
        int n = GradCheck.CheckCase(Module, c, maxElementsPerTensor: 120);
        Assert.True(n > 100);
    }

    [Fact]
    public void CaGeneratedCasesCoverTheVariants()
    {
        var cases = Module.Generate(1).ToList();
        Assert.Contains(cases, c => c.Config.GetBool("training") && c.Inputs.Get("x").Dim(0) == 1);
        Assert.Contains(cases, c => !c.Config.GetBool("training"));
        Assert.Contains(cases, c => c.Inputs.Get("x").Dim(1) % 8 != 0);
        Assert.Contains(cases, c => c.Parameters.Get("conv1.weight").Rank == 2);
        Assert.All(cases, c => Assert.True(c.Inputs.Contains("y.grad")));
        Assert.Contains(cases, c => c.Inputs.Get("x").Dim(2) != c.Inputs.Get("x").Dim(3));
    }

    [Fact]
    public void CaTrainingModeConv1BiasGradientVanishes()
    {
        // In training mode BatchNorm subtracts the batch mean of conv1's output, so conv1.bias cancels: its gradient is 0.
        foreach (var c in Module.Generate(77).Where(c => c.Config.GetBool("training")))
        {
            var o = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
            double scale = o.Get("conv1.weight.grad").Data.Max(Math.Abs);
            Assert.All(o.Get("conv1.bias.grad").Data, g => Assert.True(Math.Abs(g) <= 1e-13 * Math.Max(1, scale), $"{c.Name}: {g}"));
        }
    }

    [Fact]
    public void CaHSwishKinksUseTheAuthorsComposite()
    {
        // conv1.weight = 0, conv1.bias = 0, eval mode with mean 0, var 1, eps 0, γ = 1: bn = β exactly.
        // β = −3 on channel 0 (h_swish' = 0 there), +3 on channel 1 (h_swish' = 1): bn1.bias.grad[0] is exactly 0 and
        // bn1.bias.grad[1] is exactly Σ dact over channel 1.
        var c = Case("ca_c24_h5_w8_eval");
        var config = CaseConfig.Create("ca", ("channels", 24), ("out_channels", 24), ("mip", 8), ("training", false), ("eps", 0.0));
        var ps = c.Parameters.Clone();
        Array.Clear(ps.Get("conv1.weight").Data);
        Array.Clear(ps.Get("conv1.bias").Data);
        Array.Clear(ps.Get("bn1.running_mean").Data);
        Array.Fill(ps.Get("bn1.running_var").Data, 1.0);
        Array.Fill(ps.Get("bn1.weight").Data, 1.0);
        ps.Get("bn1.bias").Data[0] = -3;
        ps.Get("bn1.bias").Data[1] = 3;
        var trace = new TraceLog();
        var o = Module.Run(config, c.Inputs, ps, new RunOptions { Trace = trace });
        var dact = trace.Steps.Single(s => s.Name == "dact").Value; // [N, mip, L]
        int n = dact.Dim(0), l = dact.Dim(2);
        double sum0 = 0, sum1 = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < l; j++)
            {
                sum0 += Math.Abs(dact.Data[(i * 8 + 0) * l + j]);
                sum1 += dact.Data[(i * 8 + 1) * l + j];
            }
        Assert.True(sum0 > 0);
        Assert.Equal(0.0, o.Get("bn1.bias.grad").Data[0]);
        Assert.Equal(sum1, o.Get("bn1.bias.grad").Data[1]);
        var act = trace.Steps.Single(s => s.Name == "act").Value;
        Assert.Equal(0.0, act.Data[0]);     // h_swish(−3) = 0
        Assert.Equal(3.0, act.Data[l]);     // h_swish(3) = 3
    }

    [Property(MaxTest = 12)]
    public Property CaTransposingTheInputSwapsTheBranches(bool training, int seed)
    {
        // y(xᵀ) with conv_h and conv_w swapped equals y(x)ᵀ: the two branches are symmetric (BN statistics run over the
        // same N·(H+W) values, in another order, so equality is to rounding).
        var rng = new Random(seed);
        int n = rng.Next(1, 3), c = rng.Next(1, 12), h = rng.Next(1, 6), w = rng.Next(1, 6);
        if (training && n * (h + w) < 2) return true.ToProperty();
        var p = RandomParams(rng, c, 5);
        var x = RandomTensor(rng, n, c, h, w);
        var xt = new DenseTensor<double>(n, c, w, h);
        for (int i = 0; i < n; i++) for (int k = 0; k < c; k++) for (int a = 0; a < h; a++) for (int b = 0; b < w; b++) xt[i, k, b, a] = x[i, k, a, b];
        var pt = new CoordinateAttentionParameters<double>
        {
            Conv1Weight = p.Conv1Weight, Conv1Bias = p.Conv1Bias, BnWeight = p.BnWeight, BnBias = p.BnBias,
            BnRunningMean = p.BnRunningMean, BnRunningVar = p.BnRunningVar,
            ConvHWeight = p.ConvWWeight, ConvHBias = p.ConvWBias, ConvWWeight = p.ConvHWeight, ConvWBias = p.ConvHBias,
        };
        var y = CaRun.Forward(x, p, training).Y;
        var yt = CaRun.Forward(xt, pt, training).Y;
        bool ok = true;
        for (int i = 0; i < n; i++) for (int k = 0; k < c; k++) for (int a = 0; a < h; a++) for (int b = 0; b < w; b++)
            ok &= Math.Abs(y[i, k, a, b] - yt[i, k, b, a]) <= 1e-12 * (1 + Math.Abs(y[i, k, a, b]));
        return ok.ToProperty();
    }

    [Property(MaxTest = 12)]
    public Property CaGatesAreInOpenUnitIntervalAndTrainingModeIsScaleEquivariant(int seed)
    {
        // |y| ≤ |x| (both gates in (0, 1)); and with ε = 0 in training mode, BN removes any positive scale of x:
        // y(s·x) = s·y(x).
        var rng = new Random(seed);
        // W ≥ 2: with H = W = 1 and N = 1 the two pooled values coincide, the batch variance is 0 and ε = 0 gives 0/0.
        int n = rng.Next(1, 3), c = rng.Next(1, 10), h = rng.Next(1, 5), w = rng.Next(2, 5);
        var p = RandomParams(rng, c, 4);
        var x = RandomTensor(rng, n, c, h, w);
        double s = 0.25 + 3 * rng.NextDouble();
        var xs = x.Clone();
        for (int i = 0; i < xs.Length; i++) xs.Data[i] *= s;
        var y = CaRun.Forward(x, p, true, eps: 0).Y;
        var ys = CaRun.Forward(xs, p, true, eps: 0).Y;
        bool ok = true;
        for (int i = 0; i < y.Length; i++)
        {
            ok &= Math.Abs(y.Data[i]) <= Math.Abs(x.Data[i]);
            ok &= Math.Abs(ys.Data[i] - s * y.Data[i]) <= 1e-9 * (1 + Math.Abs(ys.Data[i]));
        }
        return ok.ToProperty();
    }

    [Fact]
    public void CaEvalModeIsBatchSeparable()
    {
        // In eval mode each sample is independent: running the batch equals running each sample alone, bitwise.
        var c = Case("ca_c24_h5_w8_eval");
        var all = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
        var x = c.Inputs.Get("x");
        int per = x.Length / x.Dim(0);
        for (int i = 0; i < x.Dim(0); i++)
        {
            var ins = new TensorSet<double>();
            ins.Set("x", new DenseTensor<double>(x.Data.AsSpan(i * per, per).ToArray(), 1, x.Dim(1), x.Dim(2), x.Dim(3)));
            ins.Set("y.grad", new DenseTensor<double>(c.Inputs.Get("y.grad").Data.AsSpan(i * per, per).ToArray(), 1, x.Dim(1), x.Dim(2), x.Dim(3)));
            var one = Module.Run(c.Config, ins, c.Parameters, RunOptions.Default);
            Assert.Equal(all.Get("y").Data.AsSpan(i * per, per).ToArray(), one.Get("y").Data);
            Assert.Equal(all.Get("x.grad").Data.AsSpan(i * per, per).ToArray(), one.Get("x.grad").Data);
        }
    }

    [Theory]
    [MemberData(nameof(GeneratedNames))]
    public void CaIsBitwiseIdenticalForAnyThreadCount(string name)
    {
        var c = Case(name);
        Bitwise.AssertSameForThreadCounts(() => Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default), 2, 3);
        var i32 = c.Inputs.Cast<float>();
        var p32 = c.Parameters.Cast<float>();
        Bitwise.AssertSameForThreadCounts(() => Module.Run(c.Config, i32, p32, RunOptions.Default), 2, 3);
    }

    [Theory]
    [MemberData(nameof(GeneratedNames))]
    public void CaFastPathMatchesOracle(string name)
    {
        var c = Case(name);
        var expected = Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
        var actual = Module.Run(c.Config, c.Inputs.Cast<float>(), c.Parameters.Cast<float>(), RunOptions.Default);
        Assert.Equal(expected.Names, actual.Names);
        foreach (var (key, e) in expected)
        {
            var a = actual.Get(key);
            Assert.True(a.HasShape(e.Shape), key);
            double max = e.Data.Max(Math.Abs), worst = 0;
            // conv1.bias.grad is exactly 0 in training mode (both sides are rounding noise): judge it on conv1.weight.grad's scale.
            if (key == "conv1.bias.grad" && c.Config.GetBool("training")) max = expected.Get("conv1.weight.grad").Data.Max(Math.Abs);
            for (int i = 0; i < e.Length; i++) worst = Math.Max(worst, Math.Abs(a.Data[i] - e.Data[i]));
            output.WriteLine($"{key}: max |float32 − float64| = {worst:E2} (max |e| = {max:E2}, ratio {worst / max:E2})");
            Assert.True(worst <= 5e-6 * max, $"{name} {key}: max error {worst:E3} > 5e-6·{max:E3}");
        }
    }

    [Theory]
    [InlineData(false, 2, 19, 17, 29)] // rows of 29 = 16 + 8 + 5: the Vector512, Vector256 and scalar parts
    [InlineData(true, 1, 33, 28, 28)]
    [InlineData(true, 3, 9, 5, 40)]    // wider than 32: the row kernels
    [InlineData(false, 2, 10, 3, 16)]  // the two Vector512 lanes coincide
    [InlineData(true, 2, 7, 4, 32)]    // no overlap
    [InlineData(false, 1, 5, 6, 17)]
    [InlineData(true, 2, 6, 20, 16)]   // both gate rows on the Vector512 plane kernels
    [InlineData(false, 2, 6, 32, 17)]
    [InlineData(false, 1, 4, 32, 32)]  // H + W = 64: the largest four-register row
    [InlineData(true, 2, 3, 33, 40)]   // H + W > 64: row kernels throughout
    public void CaFastPathMatchesOracleOnWideRows(bool training, int n, int c, int h, int w)
    {
        var rng = new Random(n * 1000 + c * 10 + h + w);
        var p = RandomParams(rng, c, 8);
        var x = RandomTensor(rng, n, c, h, w);
        var g = RandomTensor(rng, n, c, h, w);
        var f64 = CaRun.Forward(x, p, training);
        var g64 = CaRun.Backward(f64, g);
        void Near(SimdPath path, DenseTensor<double> e, DenseTensor<float> a, string what, DenseTensor<double>? scaleOf = null)
        {
            double max = (scaleOf ?? e).Data.Max(Math.Abs), worst = 0;
            for (int i = 0; i < e.Length; i++) worst = Math.Max(worst, Math.Abs(a.Data[i] - e.Data[i]));
            output.WriteLine($"{path} {what}: {worst / max:E2}");
            Assert.True(worst <= 5e-6 * max, $"{path} {what}: max error {worst:E3} > 5e-6·{max:E3}");
        }
        // The same on every vector path, chosen through the one switch (SimdWidth): the wide plane kernels forced off too.
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
        {
            var (f32, g32) = SimdWidth.With(path, () =>
            {
                var f = CaRun.Forward(x.Cast<float>(), p.Cast<float>(), training, kernels: KernelPath.Fast);
                return (f, CaRun.Backward(f, g.Cast<float>()));
            });
            Near(path, f64.Y, f32.Y, "y");
            Near(path, f64.RunningVar, f32.RunningVar, "running_var");
            Near(path, g64.X, g32.X, "x.grad");
            Near(path, g64.Conv1Weight, g32.Conv1Weight, "conv1.weight.grad");
            Near(path, g64.Conv1Bias, g32.Conv1Bias, "conv1.bias.grad", training ? g64.Conv1Weight : null);
            Near(path, g64.BnWeight, g32.BnWeight, "bn1.weight.grad");
            Near(path, g64.BnBias, g32.BnBias, "bn1.bias.grad");
            Near(path, g64.ConvHWeight, g32.ConvHWeight, "conv_h.weight.grad");
            Near(path, g64.ConvHBias, g32.ConvHBias, "conv_h.bias.grad");
            Near(path, g64.ConvWWeight, g32.ConvWWeight, "conv_w.weight.grad");
            Near(path, g64.ConvWBias, g32.ConvWBias, "conv_w.bias.grad");
        }
    }

    private static CoordinateAttentionParameters<double> CoordinateAttentionTestParams(GeneratedCase c)
    {
        var ps = c.Parameters;
        DenseTensor<double> M(string name) { var t = ps.Get(name); return t.Reshape(t.Dim(0), t.Dim(1)); }
        return new CoordinateAttentionParameters<double>
        {
            Conv1Weight = M("conv1.weight"), Conv1Bias = ps.Get("conv1.bias"), BnWeight = ps.Get("bn1.weight"), BnBias = ps.Get("bn1.bias"),
            BnRunningMean = ps.Get("bn1.running_mean"), BnRunningVar = ps.Get("bn1.running_var"),
            ConvHWeight = M("conv_h.weight"), ConvHBias = ps.Get("conv_h.bias"), ConvWWeight = M("conv_w.weight"), ConvWBias = ps.Get("conv_w.bias"),
        };
    }

    [Fact]
    public void CaTraceRecordsTheNamedIntermediatesInOrder()
    {
        var c = Case("ca_c12_h4_w6_train");
        var trace = new TraceLog();
        Module.Run(c.Config, c.Inputs, c.Parameters, new RunOptions { Trace = trace });
        var names = trace.Steps.Select(s => s.Name).ToList();
        Assert.Equal(["x_h", "x_w", "y_cat", "f", "mean", "var", "bn", "act", "a_h", "a_w", "y"], names.Take(11));
        Assert.Equal([2, 12, 4], trace.Steps.Single(s => s.Name == "a_h").Value.ShapeArray());
        Assert.Equal([2, 12, 6], trace.Steps.Single(s => s.Name == "a_w").Value.ShapeArray());
        Assert.Contains("dx", names);
        Assert.All(trace.Steps.Skip(11), s => Assert.Equal("backward", s.Phase));
        // Float32 runs the same layer, so the trace is the same for both precisions.
        var t32 = new TraceLog();
        Module.Run(c.Config, c.Inputs.Cast<float>(), c.Parameters.Cast<float>(), new RunOptions { Trace = t32 });
        Assert.Equal(names, t32.Steps.Select(s => s.Name));
    }

    /// <summary>
    /// The passes over x-sized tensors run in vector lanes or interleaved chains and must give the scalar formulas'
    /// bits: the pools (Eqs. (ca.1)–(ca.2)), y = (x·a_w)·a_h (ca.10), ∂a_h, ∂a_w and the product path (ca.11)–(ca.13),
    /// and ∂x with the pools' adjoints (ca.22); float and double, rows wider than a vector with a tail, ±0 in x.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CaElementwisePassesAreTheScalarFormulasBitForBit(bool training)
    {
        var rng = new Random(17);
        int n = 2, c = 5, h = 6, w = 21;
        var p = RandomParams(rng, c, 8);
        var x = RandomTensor(rng, n, c, h, w);
        var g = RandomTensor(rng, n, c, h, w);
        x.Data[5] = -0.0;
        x.Data[6] = 0.0;
        Check<double>();
        Check<float>();

        void Check<T>() where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var xt = x.Cast<T>();
            var gt = g.Cast<T>();
            var trace = new TraceLog();
            var net = new Reference.Models.Network<T>("ca", CoordAtt<T>.CoordAttPy(c, 8));
            net.LoadStateDict(p.Cast<T>().StateDict());
            var r = net.Run(xt, gt, training, trace: trace);
            DenseTensor<T> Step(string name) => trace.Steps.Single(st => st.Name == name).Value.Cast<T>();
            T[] ah = Step("a_h").Data, aw = Step("a_w").Data, xh = Step("x_h").Data, xw = Step("x_w").Data, dyCat = Step("dy_cat").Data;
            T[] dah = Step("da_h").Data, daw = Step("da_w").Data, y = r.Tensors.Get("y").Data, dx = r.Tensors.Get("x.grad").Data;
            T fw = T.CreateChecked(w), fh = T.CreateChecked(h);
            void Same(T e, T a, string what) => Assert.True(e.Equals(a) && T.IsNegative(e) == T.IsNegative(a), $"{typeof(T).Name} {what}: {a} vs {e}");
            for (int q = 0; q < n * c; q++)
            {
                for (int i = 0; i < h; i++)
                {
                    T sum = T.Zero, dsum = T.Zero;
                    for (int j = 0; j < w; j++)
                    {
                        int k = (q * h + i) * w + j;
                        sum += xt.Data[k];
                        dsum += gt.Data[k] * (xt.Data[k] * aw[q * w + j]);
                        Same(xt.Data[k] * aw[q * w + j] * ah[q * h + i], y[k], $"y[{k}]");
                        T prod = gt.Data[k] * ah[q * h + i] * aw[q * w + j];
                        Same(prod + dyCat[q * (h + w) + i] / fw + dyCat[q * (h + w) + h + j] / fh, dx[k], $"x.grad[{k}]");
                    }
                    Same(sum / fw, xh[q * h + i], $"x_h[{q}, {i}]");
                    Same(dsum, dah[q * h + i], $"da_h[{q}, {i}]");
                }
                for (int j = 0; j < w; j++)
                {
                    T sum = T.Zero, dsum = T.Zero;
                    for (int i = 0; i < h; i++)
                    {
                        int k = (q * h + i) * w + j;
                        sum += xt.Data[k];
                        dsum += gt.Data[k] * ah[q * h + i] * xt.Data[k];
                    }
                    Same(sum / fh, xw[q * w + j], $"x_w[{q}, {j}]");
                    Same(dsum, daw[q * w + j], $"da_w[{q}, {j}]");
                }
            }
        }
    }

    [Fact]
    public void CaRejectsBadInput()
    {
        var c = Case("ca_c12_h4_w6_train");
        TensorSet<double> Run(CaseConfig cfg, TensorSet<double>? ins = null, TensorSet<double>? ps = null) =>
            Module.Run(cfg, ins ?? c.Inputs, ps ?? c.Parameters, RunOptions.Default);

        // Negative running_var, in both modes.
        var neg = c.Parameters.Clone();
        neg.Get("bn1.running_var").Data[2] = -1;
        Assert.Contains("bn1.running_var[2]", Assert.Throws<ArgumentException>(() => Run(c.Config, ps: neg)).Message);
        var evalCfg = CaseConfig.Create("ca", ("channels", 12), ("mip", 8), ("training", false));
        Assert.Contains("bn1.running_var[2]", Assert.Throws<ArgumentException>(() => Run(evalCfg, ps: neg)).Message);

        // Unknown keys, out_channels ≠ channels, missing training, bad values.
        Assert.Contains("unknown key 'groups'", Assert.Throws<CaseFormatException>(() =>
            Run(CaseConfig.Create("ca", ("channels", 12), ("mip", 8), ("training", true), ("groups", 2)))).Message);
        Assert.Contains("must equal 'channels'", Assert.Throws<CaseFormatException>(() =>
            Run(CaseConfig.Create("ca", ("channels", 12), ("out_channels", 16), ("mip", 8), ("training", true)))).Message);
        Assert.Contains("training", Assert.Throws<CaseFormatException>(() => Run(CaseConfig.Create("ca", ("channels", 12), ("mip", 8)))).Message);
        Assert.Throws<CaseFormatException>(() => Run(CaseConfig.Create("ca", ("channels", 12), ("mip", 0), ("training", true))));
        Assert.Throws<CaseFormatException>(() => Run(CaseConfig.Create("ca", ("channels", 12), ("mip", 8), ("training", true), ("momentum", 1.5))));

        // mip from reduction disagrees with the parameters: every tensor of width mip is named, conv1.weight first.
        var e = Assert.Throws<Reference.Models.StateDictException>(() => Run(CaseConfig.Create("ca", ("channels", 12), ("reduction", 1), ("training", true))));
        Assert.StartsWith("conv1.weight: expected [12, 12, 1, 1] or [12, 12], got [8, 12, 1, 1]", e.Mismatched[0]);
        Assert.Equal(8, e.Mismatched.Count);

        // Mismatched shapes: x channels, y.grad, a bias, a weight.
        var ins = new TensorSet<double>();
        ins.Set("x", new DenseTensor<double>(2, 11, 4, 6));
        Assert.Equal("x", Assert.Throws<ShapeMismatchException>(() => Run(c.Config, ins)).TensorName);
        var empty = new TensorSet<double>();
        empty.Set("x", new DenseTensor<double>(2, 12, 0, 6));
        Assert.Equal("x", Assert.Throws<ShapeMismatchException>(() => Run(c.Config, empty)).TensorName);
        var rank3 = new TensorSet<double>();
        rank3.Set("x", new DenseTensor<double>(2, 12, 24));
        Assert.Equal("x", Assert.Throws<ShapeMismatchException>(() => Run(c.Config, rank3)).TensorName);
        var badGrad = new TensorSet<double>();
        badGrad.Set("x", c.Inputs.Get("x"));
        badGrad.Set("y.grad", new DenseTensor<double>(2, 12, 6, 4));
        Assert.Equal("y.grad", Assert.Throws<ShapeMismatchException>(() => Run(c.Config, badGrad)).TensorName);
        var badBias = c.Parameters.Clone();
        badBias.Set("conv_h.bias", new DenseTensor<double>(8));
        Assert.Equal("conv_h.bias", Assert.Throws<ShapeMismatchException>(() => Run(c.Config, ps: badBias)).TensorName);
        var badW = c.Parameters.Clone();
        badW.Set("conv_w.weight", new DenseTensor<double>(12, 8, 3, 3));
        var we = Assert.Throws<ShapeMismatchException>(() => Run(c.Config, ps: badW));
        Assert.Equal("conv_w.weight", we.TensorName);
        Assert.Contains("[12, 8, 1, 1] or [12, 8]", we.Message);

        // Unknown tensors; num_batches_tracked is accepted and ignored.
        var extra = c.Parameters.Clone();
        extra.Set("bn1.num_batches_tracked", new DenseTensor<double>(1));
        Run(c.Config, ps: extra);
        extra.Set("conv2.weight", new DenseTensor<double>(1));
        Assert.Contains("conv2.weight", Assert.Throws<InvalidDataException>(() => Run(c.Config, ps: extra)).Message);
        var extraIn = c.Inputs.Clone();
        extraIn.Set("z", new DenseTensor<double>(1));
        Assert.Throws<InvalidDataException>(() => Run(c.Config, extraIn));
        // Missing parameter.
        var missing = new TensorSet<double>("params.safetensors");
        foreach (var (k, t) in c.Parameters) if (k != "bn1.bias") missing.Set(k, t);
        Assert.Contains("bn1.bias", Assert.Throws<KeyNotFoundException>(() => Run(c.Config, ps: missing)).Message);
    }

    [Fact]
    public void CaDoesNotModifyItsInputs()
    {
        var c = Case("ca_c13_h3_w7_n1_train");
        var ins = c.Inputs.Clone();
        var ps = c.Parameters.Clone();
        Module.Run(c.Config, ins, ps, RunOptions.Default);
        Module.Run(c.Config, ins.Cast<float>(), ps.Cast<float>(), RunOptions.Default);
        foreach (var (k, t) in c.Inputs) Assert.Equal(t.Data, ins.Get(k).Data);
        foreach (var (k, t) in c.Parameters) Assert.Equal(t.Data, ps.Get(k).Data);
    }

    internal static DenseTensor<double> RandomTensor(Random rng, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = rng.NextDouble() * 4 - 2;
        return t;
    }

    internal static CoordinateAttentionParameters<double> RandomParams(Random rng, int c, int mip)
    {
        var rv = RandomTensor(rng, mip);
        for (int i = 0; i < mip; i++) rv.Data[i] = 0.5 + Math.Abs(rv.Data[i]);
        return new CoordinateAttentionParameters<double>
        {
            Conv1Weight = RandomTensor(rng, mip, c), Conv1Bias = RandomTensor(rng, mip),
            BnWeight = RandomTensor(rng, mip), BnBias = RandomTensor(rng, mip),
            BnRunningMean = RandomTensor(rng, mip), BnRunningVar = rv,
            ConvHWeight = RandomTensor(rng, c, mip), ConvHBias = RandomTensor(rng, c),
            ConvWWeight = RandomTensor(rng, c, mip), ConvWBias = RandomTensor(rng, c),
        };
    }
}
