using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Layers;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers.Se;

/// <summary>Central-difference gradchecks of the SE oracle on every variant, and the kink conventions.</summary>
public sealed class SeGradCheckTests
{
    public static TheoryData<string> SmoothGeneratedCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in SeTestData.Module.Generate(7))
            if (!c.Name.Contains("kinks", StringComparison.Ordinal)) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(SmoothGeneratedCases))]
    public void GeneratedCase(string name)
    {
        var c = SeTestData.Module.Generate(7).Single(g => g.Name == name);
        int n = GradCheck.CheckCase(SeTestData.Module, c);
        Assert.True(n > 50);
    }

    [Theory]
    [InlineData(SeGate.Sigmoid, SePool.Avg, true)]
    [InlineData(SeGate.Sigmoid, SePool.Avg, false)]
    [InlineData(SeGate.Sigmoid, SePool.Max, true)]
    [InlineData(SeGate.Sigmoid, SePool.Max, false)]
    [InlineData(SeGate.HardSigmoid, SePool.Avg, true)]
    [InlineData(SeGate.HardSigmoid, SePool.Avg, false)]
    [InlineData(SeGate.HardSigmoid, SePool.Max, true)]
    [InlineData(SeGate.HardSigmoid, SePool.Max, false)]
    public void EveryGatePoolBiasCombination(SeGate gate, SePool pool, bool bias)
    {
        // Weights scaled up so relu and the hard-sigmoid gate take both branches (a few units clip).
        var (o, x, dy, p) = SeTestData.Random(100 + (int)gate * 10 + (int)pool * 2 + (bias ? 1 : 0), 3, 6, 3, 3, 4, bias, gate, pool, weightScale: 3);
        var (config, inputs, ps) = SeTestData.AsCase(o, x, dy, p);
        GradCheck.CheckCase(SeTestData.Module, config, inputs, ps);
    }

    [Fact]
    public void ConvShapedWeightsGiveGradientsInTheirShape()
    {
        var (o, x, dy, p) = SeTestData.Random(3, 2, 8, 2, 2, 3, true, SeGate.Sigmoid, SePool.Avg);
        var (config, inputs, ps) = SeTestData.AsCase(o, x, dy, p);
        ps.Set("fc1.weight", p.W1.Reshape(2, 8, 1, 1));
        ps.Set("fc2.weight", p.W2.Reshape(8, 2, 1, 1));
        var r = SeTestData.Module.Run(config, inputs, ps, RunOptions.Default);
        Assert.Equal([2, 8, 1, 1], r.Get("fc1.weight.grad").ShapeArray());
        Assert.Equal([8, 2, 1, 1], r.Get("fc2.weight.grad").ShapeArray());
        GradCheck.CheckCase(SeTestData.Module, config, inputs, ps);
    }

    /// <summary>
    /// The kinks case: h = 0 exactly (relu'(0) = 0), e = ±3 exactly (hard-sigmoid' = 0), ties in every max-pool plane
    /// (the gradient goes to the first maximal index). Central differences straddle these kinks, so the conventions are
    /// checked directly against hand-computed values.
    /// </summary>
    [Fact]
    public void KinkConventions()
    {
        var c = SeTestData.Module.Generate(7).Single(g => g.Name.Contains("kinks", StringComparison.Ordinal));
        var trace = new TraceLog();
        var r = SeTestData.Module.Run(c.Config, c.Inputs, c.Parameters, new RunOptions { Trace = trace });
        DenseTensor<double> Step(string name) => trace.Steps.Single(s => s.Name == name).Value;
        var h = Step("h");
        var e = Step("e");
        var dh = Step("dh");
        var de = Step("de");
        var ds = Step("ds");
        int checkedH = 0, checkedE = 0;
        for (int i = 0; i < h.Length; i++)
            if (h.Data[i] == 0) { Assert.Equal(0.0, dh.Data[i]); checkedH++; }
        for (int i = 0; i < e.Length; i++)
        {
            if (Math.Abs(e.Data[i]) == 3) { Assert.Equal(0.0, de.Data[i]); checkedE++; }
            else if (Math.Abs(e.Data[i]) < 3) Assert.Equal(ds.Data[i] / 6, de.Data[i], 1e-15 * Math.Abs(ds.Data[i]));
            else Assert.Equal(0.0, de.Data[i]);
        }
        Assert.True(checkedH > 0 && checkedE > 0);
        // fc1 = 0 and fc2 = 0: dW1 = dh ⊗ z is 0 where h is at the kink; db1 likewise.
        var db1 = r.Get("fc1.bias.grad");
        for (int j = 0; j < db1.Length; j++) if (c.Parameters.Get("fc1.bias").Data[j] <= 0) Assert.Equal(0.0, db1.Data[j]);

        // The max squeeze sends dz to the first maximal index of each plane only.
        var x = c.Inputs.Get("x");
        var dy = c.Inputs.Get("y.grad");
        var s = Step("s");
        var dz = Step("dz");
        var dx = r.Get("x.grad");
        int nn = x.Dim(0), cc = x.Dim(1), plane = x.Dim(2) * x.Dim(3);
        int ties = 0;
        for (int q = 0; q < nn * cc; q++)
        {
            double max = double.NegativeInfinity;
            int first = -1, count = 0;
            for (int i = 0; i < plane; i++)
            {
                double v = x.Data[q * plane + i];
                if (v > max) { max = v; first = i; count = 1; }
                else if (v == max) count++;
            }
            if (count > 1) ties++;
            for (int i = 0; i < plane; i++)
            {
                double expected = dy.Data[q * plane + i] * s.Data[q] + (i == first ? dz.Data[q] : 0);
                Assert.Equal(expected, dx.Data[q * plane + i]);
            }
        }
        Assert.True(ties > 0, "the kinks case should hold ties");
    }

    [Fact]
    public void GlobalPoolsAreAdjointsOfTheirBackward()
    {
        // ⟨P x, v⟩ = ⟨x, Pᵀ v⟩ for the average, and for the max's linearisation at x (fixed argmax).
        var rng = new Random(5);
        var x = SeTestData.Normal(rng, 2, 3, 4, 5);
        var v = SeTestData.Normal(rng, 2, 3);
        var u = SeTestData.Normal(rng, 2, 3, 4, 5);

        var adj = x.ZerosLike();
        GlobalPool.AvgBackwardAccumulate(v, adj);
        var pu = GlobalPool.AvgForward(u);
        Assert.Equal(Dot(pu, v), Dot(u, adj), 12);

        var (_, arg) = GlobalPool.MaxForward(x);
        var adjMax = x.ZerosLike();
        GlobalPool.MaxBackwardAccumulate(v, arg, adjMax);
        double lin = 0;
        for (int q = 0; q < 6; q++) lin += u.Data[q * 20 + arg[q]] * v.Data[q];
        Assert.Equal(lin, Dot(u, adjMax), 12);
    }

    [Fact]
    public void MaxPoolFollowsPyTorchOnTiesNaNAndSignedZero()
    {
        var x = new DenseTensor<double>([1, 2, 0, 2, 2, double.NaN, 1, double.NaN], 1, 2, 2, 2);
        var (z, arg) = GlobalPool.MaxForward(x);
        Assert.Equal(1, arg[0]); // first of the tied maxima
        Assert.Equal(2.0, z.Data[0]);
        Assert.Equal(3, arg[1]); // the last NaN wins
        Assert.True(double.IsNaN(z.Data[1]));

        var zeros = new DenseTensor<double>([-0.0, 0.0, -1, -2], 1, 1, 2, 2);
        var (zz, za) = GlobalPool.MaxForward(zeros);
        Assert.Equal(0, za[0]); // +0 > −0 is false: −0 stays
        Assert.True(double.IsNegative(zz.Data[0]));

        var ninf = new DenseTensor<double>([double.NegativeInfinity, double.NegativeInfinity], 1, 1, 1, 2);
        Assert.Equal(0, GlobalPool.MaxForward(ninf).ArgMax[0]);
    }

    private static double Dot(DenseTensor<double> a, DenseTensor<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a.Data[i] * b.Data[i];
        return s;
    }
}
