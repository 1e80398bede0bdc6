using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers.Gct;

/// <summary>The float64 GCT oracle: golden cases from libtorch 2.10, gradcheck, thread determinism, edge cases.</summary>
public sealed class GctOracleTests(ITestOutputHelper output)
{
    private static readonly ModelFactory Gct = ModelZoo.Get("gct");

    [Theory]
    [InlineData("gct_l2_c9")]
    [InlineData("gct_l1_c7")]
    [InlineData("gct_l1_after_relu_c5")]
    public void GoldenCaseMatchesLibtorch(string caseName)
    {
        var results = GoldenPack.AssertMatches(caseName, 1e-10);
        Assert.Equal(["alpha.grad", "beta.grad", "gamma.grad", "x.grad", "y"], results.Select(r => r.Name).Order(StringComparer.Ordinal));
        foreach (var r in results) output.WriteLine($"{caseName} {r.Name}: max abs {r.MaxAbsError:E2}, max rel {r.MaxRelError:E2}, max ulps {r.MaxUlps}");
    }

    [Theory]
    [InlineData("l2", false, 2, 5, 3, 4, -1)]
    [InlineData("l2", false, 2, 4, 3, 3, 2)]   // an all-zero channel: ε keeps (S + ε)^½ away from 0
    [InlineData("l1", false, 2, 5, 3, 4, -1)]
    [InlineData("l1", false, 2, 4, 3, 3, 1)]   // an all-zero channel: abs'(0) = 0 and |s|'(0) = 0
    [InlineData("l1", true, 2, 5, 3, 4, -1)]
    [InlineData("l2", false, 1, 1, 2, 2, -1)]  // one channel: D = |s| (up to ε), u = ±γ + β barely depends on x
    public void GradCheckFullGradient(string mode, bool afterRelu, int n, int c, int h, int w, int zeroChannel)
    {
        var gc = GctTestData.Case(100 + c * 7 + h, mode, afterRelu, n, c, h, w, zeroChannel: zeroChannel);
        int count = Check(gc);
        Assert.True(count >= n * c * h * w + 3 * c);
    }

    /// <summary>
    /// Full element-wise gradcheck plus random directions, except for l1 with an all-zero channel: there every x of
    /// that channel sits on the |x| kink, and a direction that moves x and α together makes L(t) contain t·|t| terms,
    /// whose central difference is O(step) (≈7e-6 seen), not O(step²). One coordinate at a time the central
    /// difference of |·| at 0 is exactly the subgradient 0, so the element-wise check stays valid and complete.
    /// </summary>
    private static int Check(GeneratedCase gc)
    {
        bool onKink = gc.Config.GetString("mode") == "l1" && !gc.Config.GetBool("after_relu")
                      && gc.Inputs.Get("x").Data.Any(v => v == 0);
        return GradCheck.CheckCase(Gct, gc.Config, gc.Inputs, gc.Parameters, int.MaxValue, directions: onKink ? 0 : 3);
    }

    [Fact]
    public void GradCheckAfterReluWithNegativeInputTakesXAsIs()
    {
        // after_relu promises x ≥ 0 but the code does not check: x is summed as is, so a negative S and s are possible,
        // and |s| in D then has slope −1 (gct.16).
        var gc = GctTestData.Case(42, "l1", true, 2, 4, 3, 3);
        var x = gc.Inputs.Get("x");
        for (int i = 0; i < x.Length; i++) x.Data[i] -= 0.8;
        var fw = GctTestData.Module<double>(gc).Forward(x);
        Assert.Contains(fw.EmbeddingS.Data, v => v < 0);
        Check(gc);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void GradCheckGeneratedCases(int seed)
    {
        foreach (var gc in Gct.Generate(seed)) Check(gc);
    }

    [Fact]
    public void GeneratedCasesCoverEveryVariant()
    {
        var cases = Gct.Generate(3).ToList();
        Assert.Contains(cases, c => c.Config.GetString("mode") == "l2");
        Assert.Contains(cases, c => c.Config.GetString("mode") == "l1" && !c.Config.GetBool("after_relu"));
        Assert.Contains(cases, c => c.Config.GetString("mode") == "l1" && c.Config.GetBool("after_relu"));
        Assert.All(cases, c => Assert.True(c.Inputs.Contains("y.grad")));
        Assert.Contains(cases, c => c.Name.Contains("zero_channel") && c.Config.GetString("mode") == "l1");
        Assert.Contains(cases, c => c.Name.Contains("zero_channel") && c.Config.GetString("mode") == "l2");
        var saturated = cases.Single(c => c.Name.EndsWith("_saturated", StringComparison.Ordinal));
        var gate = GctTestData.Module<double>(saturated).Forward(saturated.Inputs.Get("x")).Gate;
        Assert.Equal(2.0, gate[0, 0]);
        Assert.Equal(0.0, gate[0, 1]);
        Assert.Equal(cases.Count, cases.Select(c => c.Name).Distinct().Count());
        // after_relu cases hold the non-negative input the flag promises.
        Assert.All(cases.Where(c => c.Config.GetBool("after_relu")), c => Assert.All(c.Inputs.Get("x").Data, v => Assert.True(v >= 0)));
    }

    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void OracleIsBitwiseIdenticalForAnyThreadCount(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(5, mode, afterRelu, 5, 6, 7, 9);
        Bitwise.AssertSameForThreadCounts(() => Gct.Run(gc.Config, gc.Inputs, gc.Parameters, RunOptions.Default), 2, 3, 8);
    }

    [Fact]
    public void RunDoesNotModifyInputsOrParameters()
    {
        var gc = GctTestData.Case(9, "l2", false, 2, 3, 4, 4);
        var inputs = gc.Inputs.Clone();
        var ps = gc.Parameters.Clone();
        Gct.Run(gc.Config, gc.Inputs, gc.Parameters, RunOptions.Default);
        foreach (var (name, t) in inputs) Bitwise.AssertIdentical(t, gc.Inputs.Get(name), name);
        foreach (var (name, t) in ps) Bitwise.AssertIdentical(t, gc.Parameters.Get(name), name);
    }

    [Fact]
    public void ForwardOnlyWhenNoUpstreamGradient()
    {
        var gc = GctTestData.Case(9, "l1", false, 2, 3, 4, 4);
        var inputs = new TensorSet<double>("inputs");
        inputs.Set("x", gc.Inputs.Get("x"));
        var outputs = Gct.Run(gc.Config, inputs, gc.Parameters, RunOptions.Default);
        Assert.Equal(["y"], outputs.Names);
        var outputs32 = Gct.Run(gc.Config, inputs.Cast<float>(), gc.Parameters.Cast<float>(), RunOptions.Default);
        Assert.Equal(["y"], outputs32.Names);
    }

    [Fact]
    public void TraceRecordsTheDocumentedNamesInOrder()
    {
        var gc = GctTestData.Case(2, "l2", false, 2, 3, 2, 2);
        var trace = new TraceLog();
        var outputs = Gct.Run(gc.Config, gc.Inputs, gc.Parameters, new RunOptions { Trace = trace });
        Assert.Equal(["S", "s", "D", "u", "gate", "y"], trace.Steps.Where(s => s.Phase == "forward").Select(s => s.Name));
        Assert.Equal(["dgate", "du", "beta.grad", "dk", "gamma.grad", "dD", "ds", "alpha.grad", "dS", "x.grad"],
            trace.Steps.Where(s => s.Phase == "backward").Select(s => s.Name));
        Assert.Equal([2, 3], trace.Steps.Single(s => s.Name == "gate").Value.ShapeArray());
        Bitwise.AssertIdentical(outputs.Get("y"), trace.Steps.Single(s => s.Name == "y").Value, "traced y");
        Bitwise.AssertIdentical(outputs.Get("x.grad"), trace.Steps.Single(s => s.Name == "x.grad").Value, "traced x.grad");
        Assert.Equal(["gct.1", "gct.2", "gct.3", "gct.7", "gct.8", "gct.9"], trace.Steps.Where(s => s.Phase == "forward").Select(s => s.Equation));
        Assert.Equal(["gct.10", "gct.11", "gct.12", "gct.13", "gct.13", "gct.14", "gct.15", "gct.17", "gct.17", "gct.19"],
            trace.Steps.Where(s => s.Phase == "backward").Select(s => s.Equation));

        var l1 = GctTestData.Case(2, "l1", false, 2, 3, 2, 2);
        var traceL1 = new TraceLog();
        Gct.Run(l1.Config, l1.Inputs, l1.Parameters, new RunOptions { Trace = traceL1 });
        Assert.Equal(["gct.4", "gct.5", "gct.6", "gct.7", "gct.8", "gct.9"], traceL1.Steps.Where(s => s.Phase == "forward").Select(s => s.Equation));
        Assert.Equal(["gct.10", "gct.11", "gct.12", "gct.13", "gct.13", "gct.14", "gct.16", "gct.18", "gct.18", "gct.20"],
            traceL1.Steps.Where(s => s.Phase == "backward").Select(s => s.Equation));
    }

    [Fact]
    public void ForwardMatchesAHandComputationOfTheAuthorsExpressions()
    {
        // One sample, two channels, 1x2 planes; l2, ε = 1e-5. Evaluated literally as GCT.py does.
        double eps = 1e-5;
        double[] x = [0.5, -1.0, 2.0, 0.25];
        double[] alpha = [1.5, 0.75], gamma = [0.8, -1.2], beta = [0.1, -0.3];
        var xt = new DenseTensor<double>((double[])x.Clone(), 1, 2, 1, 2);
        var m = new GctModule<double>(
            new DenseTensor<double>(alpha, 1, 2, 1, 1), new DenseTensor<double>(gamma, 1, 2, 1, 1), new DenseTensor<double>(beta, 1, 2, 1, 1), eps);
        var fw = m.Forward(xt);
        double e0 = Math.Sqrt(x[0] * x[0] + x[1] * x[1] + eps) * alpha[0];
        double e1 = Math.Sqrt(x[2] * x[2] + x[3] * x[3] + eps) * alpha[1];
        double d = Math.Sqrt((e0 * e0 + e1 * e1) / 2 + eps);
        double g0 = 1.0 + Math.Tanh(e0 * (gamma[0] / d) + beta[0]);
        double g1 = 1.0 + Math.Tanh(e1 * (gamma[1] / d) + beta[1]);
        Assert.Equal([x[0] * g0, x[1] * g0, x[2] * g1, x[3] * g1], fw.Y.Data);
    }

    [Fact]
    public void NewModuleHasTheAuthorsInitialisationAndIsTheIdentity()
    {
        var m = new GctModule<double>(4);
        Assert.Equal(GctMode.L2, m.Mode);
        Assert.Equal(1e-5, m.Epsilon);
        Assert.False(m.AfterRelu);
        Assert.Equal([1, 4, 1, 1], m.Alpha.ShapeArray());
        Assert.All(m.Alpha.Data, v => Assert.Equal(1.0, v));
        Assert.All(m.Gamma.Data, v => Assert.Equal(0.0, v));
        Assert.All(m.Beta.Data, v => Assert.Equal(0.0, v));
        var x = GctTestData.Uniform(new Random(1), -3, 3, 2, 4, 3, 3);
        Bitwise.AssertIdentical(x, m.Forward(x).Y, "y of a freshly initialised GCT");
    }

    [Fact]
    public void AllZeroInputIsFiniteInBothModes()
    {
        foreach (var mode in new[] { "l2", "l1" })
        {
            var gc = GctTestData.Case(4, mode, false, 2, 3, 2, 2);
            Array.Clear(gc.Inputs.Get("x").Data);
            var outputs = Gct.Run(gc.Config, gc.Inputs, gc.Parameters, RunOptions.Default);
            foreach (var (name, t) in outputs) Assert.All(t.Data, v => Assert.True(double.IsFinite(v), $"{mode} {name} = {v}"));
            Assert.All(outputs.Get("y").Data, v => Assert.Equal(0.0, v));
        }
    }

    [Fact]
    public void NaNInOneSamplePoisonsThatSampleOnly()
    {
        var gc = GctTestData.Case(6, "l2", false, 2, 3, 2, 2);
        gc.Inputs.Get("x")[0, 1, 0, 0] = double.NaN;
        var outputs = Gct.Run(gc.Config, gc.Inputs, gc.Parameters, RunOptions.Default);
        var y = outputs.Get("y");
        int perSample = 3 * 2 * 2;
        Assert.All(y.Data.Take(perSample), v => Assert.True(double.IsNaN(v)));
        Assert.All(y.Data.Skip(perSample), v => Assert.True(double.IsFinite(v)));
        Assert.All(outputs.Get("x.grad").Data.Skip(perSample), v => Assert.True(double.IsFinite(v)));
        Assert.All(outputs.Get("alpha.grad").Data, v => Assert.True(double.IsNaN(v)));
    }

    [Fact]
    public void SaturatedGateIsExactlyZeroOrTwo()
    {
        // β = ±40: tanh rounds to ±1, and the literal 1 + tanh u gives exactly 2 or 0, as PyTorch.
        var gc = GctTestData.Case(8, "l2", false, 1, 2, 2, 2);
        gc.Parameters.Get("beta").Data[0] = 40;
        gc.Parameters.Get("beta").Data[1] = -40;
        var m = GctTestData.Module<double>(gc);
        var fw = m.Forward(gc.Inputs.Get("x"));
        Assert.Equal(2.0, fw.Gate.Data[0]);
        Assert.Equal(0.0, fw.Gate.Data[1]);
        var g = m.Backward(fw, gc.Inputs.Get("y.grad"));
        Assert.Equal(0.0, g.Beta.Data[0]);
        Assert.Equal(0.0, g.Beta.Data[1]);
    }

    [Fact]
    public void ZeroChannelsGiveEmptyOutputs()
    {
        var m = new GctModule<double>(0);
        var x = new DenseTensor<double>(2, 0, 3, 3);
        var fw = m.Forward(x);
        Assert.Equal(0, fw.Y.Length);
        var g = m.Backward(fw, x.ZerosLike());
        Assert.Equal(0, g.X.Length);
        Assert.Equal([1, 0, 1, 1], g.Alpha.ShapeArray());
    }

    /// <summary>
    /// The elementwise passes run lane by lane (Vector&lt;T&gt;) and must give the scalar formulas' bits: y = x·gate
    /// (Eq. (gct.9)) and ∂x = ∂y·gate + x·2∂S (gct.19) or + sgn(x)·∂S / + ∂S (gct.20), each product and the sum rounded
    /// as written, for float and double, with NaN, ±∞ and ±0 in x.
    /// </summary>
    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void ElementwisePassesAreTheScalarFormulasBitForBit(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(41, mode, afterRelu, 2, 3, 5, 7);
        var x = gc.Inputs.Get("x");
        x.Data[3] = -0.0;
        x.Data[9] = 0.0;
        if (!afterRelu) x.Data[40] = -2.5;
        Check<double>();
        Check<float>();

        void Check<T>() where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var m = GctTestData.Module<T>(gc);
            var xt = x.Cast<T>();
            var dy = gc.Inputs.Get("y.grad").Cast<T>();
            var trace = new TraceLog();
            var fw = m.Forward(xt, trace);
            var g = m.Backward(fw, dy, trace);
            var dS = trace.Steps.Single(st => st.Name == "dS").Value.Cast<T>();
            int planes = fw.Gate.Length, plane = xt.Length / planes;
            T two = T.CreateTruncating(2);
            for (int p = 0; p < planes; p++)
                for (int i = p * plane; i < (p + 1) * plane; i++)
                {
                    T gate = fw.Gate.Data[p], ds = dS.Data[p];
                    T y = xt.Data[i] * gate;
                    T dx = mode == "l2" ? dy.Data[i] * gate + xt.Data[i] * (two * ds)
                        : afterRelu ? dy.Data[i] * gate + ds
                        : dy.Data[i] * gate + Attention.Reference.Ops.Activations.AbsGrad(xt.Data[i]) * ds;
                    Assert.True(y.Equals(fw.Y.Data[i]) && T.IsNegative(y) == T.IsNegative(fw.Y.Data[i]), $"{typeof(T).Name} y[{i}]");
                    Assert.True(dx.Equals(g.X.Data[i]) && T.IsNegative(dx) == T.IsNegative(g.X.Data[i]), $"{typeof(T).Name} x.grad[{i}]");
                }
        }
    }

    /// <summary>
    /// Every float64 reduction of GCT in its documented order, bit for bit: the whole forward and backward written out
    /// here as plain scalar loops (plane sums over h then w; the channel sums of D and ∂D over c ascending; the
    /// parameter gradients over n ascending) against the op, in l2, l1 and after_relu, on several thread counts.
    /// </summary>
    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void EveryReductionHasItsDocumentedOrderBitForBit(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(57, mode, afterRelu, 3, 20, 5, 7);
        var x = gc.Inputs.Get("x");
        var dy = gc.Inputs.Get("y.grad");
        double[] a = gc.Parameters.Get("alpha").Data, gm = gc.Parameters.Get("gamma").Data, b = gc.Parameters.Get("beta").Data;
        int n = 3, c = 20, plane = 35;
        double eps = 1e-5;
        bool l2 = mode == "l2";
        var (r, s, d, k, t, g) = (new double[n * c], new double[n * c], new double[n], new double[n * c], new double[n * c], new double[n * c]);
        var y = new double[x.Length];
        for (int ni = 0; ni < n; ni++)
        {
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                double sum = 0;
                for (int i = 0; i < plane; i++)
                {
                    double v = x.Data[nc * plane + i];
                    sum += l2 ? v * v : afterRelu ? v : Math.Abs(v);
                }
                r[nc] = l2 ? Math.Sqrt(sum + eps) : sum;
                s[nc] = r[nc] * a[ci];
            }
            double m = 0;
            for (int ci = 0; ci < c; ci++) m += l2 ? s[ni * c + ci] * s[ni * c + ci] : Math.Abs(s[ni * c + ci]);
            m /= c;
            d[ni] = l2 ? Math.Sqrt(m + eps) : m + eps;
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                k[nc] = gm[ci] / d[ni];
                t[nc] = Math.Tanh(s[nc] * k[nc] + b[ci]);
                g[nc] = 1 + t[nc];
                for (int i = 0; i < plane; i++) y[nc * plane + i] = x.Data[nc * plane + i] * g[nc];
            }
        }
        var (du, dk, ds) = (new double[n * c], new double[n * c], new double[n * c]);
        var dx = new double[x.Length];
        for (int ni = 0; ni < n; ni++)
        {
            double acc = 0;
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                double p = 0;
                for (int i = 0; i < plane; i++) p += dy.Data[nc * plane + i] * x.Data[nc * plane + i];
                du[nc] = p * (1 - t[nc] * t[nc]);
                dk[nc] = du[nc] * s[nc];
                acc += dk[nc] * gm[ci];
            }
            double dD = -acc / (d[ni] * d[ni]);
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                ds[nc] = l2 ? du[nc] * k[nc] + s[nc] * (dD / (c * d[ni])) : du[nc] * k[nc] + Math.Sign(s[nc]) * (dD / c);
                double dS = l2 ? ds[nc] * a[ci] / (2 * r[nc]) : ds[nc] * a[ci];
                for (int i = 0; i < plane; i++)
                {
                    int j = nc * plane + i;
                    dx[j] = l2 ? dy.Data[j] * g[nc] + x.Data[j] * (2 * dS)
                        : afterRelu ? dy.Data[j] * g[nc] + dS : dy.Data[j] * g[nc] + Math.Sign(x.Data[j]) * dS;
                }
            }
        }
        var (da, dg, db) = (new double[c], new double[c], new double[c]);
        for (int ci = 0; ci < c; ci++)
            for (int ni = 0; ni < n; ni++)
            {
                int nc = ni * c + ci;
                db[ci] += du[nc];
                dg[ci] += dk[nc] / d[ni];
                da[ci] += ds[nc] * r[nc];
            }
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var (yo, go) = Compute.WithThreads(threads, () =>
            {
                var m = GctTestData.Module<double>(gc);
                var f = m.Forward(x);
                return (f.Y, m.Backward(f, dy));
            });
            Assert.Equal(y, yo.Data);
            Assert.Equal(dx, go.X.Data);
            Assert.Equal(da, go.Alpha.Data);
            Assert.Equal(dg, go.Gamma.Data);
            Assert.Equal(db, go.Beta.Data);
        }
    }

    [Fact]
    public void EveryGctLabelCitedInCodeIsDefinedInTheDoc()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Attention.sln"))) root = root.Parent;
        Assert.True(root is not null, "repository root (Attention.sln) not found above the test output directory");
        string doc = File.ReadAllText(Path.Combine(root!.FullName, "docs", "derivations", "gct.md"));
        var defined = System.Text.RegularExpressions.Regex.Matches(doc, @"\\tag\{(gct\.\d+)\}").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(defined.Count, defined.Distinct().Count());
        Assert.Equal(Enumerable.Range(1, defined.Count).Select(i => $"gct.{i}"), defined);
        var sources = new[] { "Ops/Gct.cs", "Models/ModuleFactories.cs" }
            .Select(f => File.ReadAllText(Path.Combine(root.FullName, "Attention.Reference", f)));
        var cited = sources.SelectMany(src => System.Text.RegularExpressions.Regex.Matches(src, @"gct\.\d+").Select(m => m.Value)).Distinct().ToList();
        Assert.NotEmpty(cited);
        Assert.All(cited, label => Assert.Contains(label, defined));
        // Every defined equation is used by the code.
        Assert.All(defined, label => Assert.Contains(label, cited));
    }
}
