using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Ops;

/// <summary>BatchNorm2d in eval and training mode: gradcheck, running-statistics update, properties, bad input.</summary>
public class BatchNormTests
{
    private static DenseTensor<double> Rand(Random rng, double scale, double offset, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = offset + scale * (rng.NextDouble() * 2 - 1);
        return t;
    }

    private sealed record Setup(DenseTensor<double> X, DenseTensor<double> G, DenseTensor<double> W, DenseTensor<double> B,
        DenseTensor<double> Rm, DenseTensor<double> Rv);

    private static Setup Make(int seed, int n, int c, int h, int w)
    {
        var rng = new Random(seed);
        var rv = Rand(rng, 0.4, 0.8, c);
        return new Setup(Rand(rng, 2, 0.3, n, c, h, w), Rand(rng, 1, 0, n, c, h, w), Rand(rng, 0.5, 1, c), Rand(rng, 0.5, 0, c),
            Rand(rng, 0.3, 0, c), rv);
    }

    private static double Loss(DenseTensor<double> y, DenseTensor<double> g)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y.Data[i] * g.Data[i];
        return s;
    }

    /// <summary>Checks every element of a gradient against central differences of L = Σ y·g.</summary>
    private static void Check(DenseTensor<double> value, DenseTensor<double> grad, Func<double> loss, string what)
    {
        const double step = 1e-6;
        double scale = Math.Max(1, grad.Data.Max(Math.Abs));
        for (int i = 0; i < value.Length; i++)
        {
            double saved = value.Data[i];
            value.Data[i] = saved + step;
            double lp = loss();
            value.Data[i] = saved - step;
            double lm = loss();
            value.Data[i] = saved;
            double numeric = (lp - lm) / (2 * step);
            Assert.True(Math.Abs(numeric - grad.Data[i]) <= 1e-7 * scale + 1e-6 * Math.Abs(grad.Data[i]),
                $"{what}[{i}]: analytic {grad.Data[i]:R}, numeric {numeric:R}");
        }
    }

    [Theory]
    [InlineData(2, 3, 2, 3)]
    [InlineData(1, 5, 1, 7)]
    [InlineData(3, 2, 4, 1)]
    public void BatchNormEvalGradcheck(int n, int c, int h, int w)
    {
        var s = Make(11 + n, n, c, h, w);
        var g = BatchNorm2d.BackwardEval(s.G, s.X, s.W, s.Rm, s.Rv, 1e-5);
        double L() => Loss(BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5), s.G);
        Check(s.X, g.X, L, "x");
        Check(s.W, g.Weight!, L, "weight");
        Check(s.B, g.Bias!, L, "bias");
    }

    [Theory]
    [InlineData(2, 3, 2, 3)]
    [InlineData(1, 5, 1, 7)]   // batch size 1: statistics over H·W only
    [InlineData(1, 2, 2, 1)]   // m = 2, the smallest allowed
    [InlineData(3, 2, 4, 1)]
    public void BatchNormTrainGradcheck(int n, int c, int h, int w)
    {
        var s = Make(23 + n * 7 + h, n, c, h, w);
        var fwd = BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5, 0.1);
        var g = BatchNorm2d.BackwardTrain(s.G, s.X, s.W, fwd);
        double L() => Loss(BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5, 0.1).Y, s.G);
        Check(s.X, g.X, L, "x");
        Check(s.W, g.Weight!, L, "weight");
        Check(s.B, g.Bias!, L, "bias");
    }

    [Fact]
    public void BatchNormEvalBackwardIsTheAdjointOfItsLinearPart()
    {
        // Eval mode is affine in x: y(x) − y(0) = α ⊙ x, so ⟨y(x) − y(0), g⟩ = ⟨x, ∂L/∂x⟩ with ∂L/∂x from BackwardEval(g).
        var s = Make(21, 3, 4, 3, 5);
        var y = BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5);
        var y0 = BatchNorm2d.ForwardEval(s.X.ZerosLike(), s.W, s.B, s.Rm, s.Rv, 1e-5);
        var dx = BatchNorm2d.BackwardEval(s.G, s.X, s.W, s.Rm, s.Rv, 1e-5).X;
        double lhs = 0, rhs = 0, scale = 0;
        for (int i = 0; i < y.Length; i++)
        {
            lhs += (y.Data[i] - y0.Data[i]) * s.G.Data[i];
            rhs += s.X.Data[i] * dx.Data[i];
            scale += Math.Abs(s.X.Data[i] * dx.Data[i]);
        }
        Assert.True(Math.Abs(lhs - rhs) <= 1e-13 * scale, $"{lhs:R} vs {rhs:R}");
    }

    [Fact]
    public void BatchNormTrainWithoutAffineMatchesUnitAffine()
    {
        var s = Make(5, 2, 3, 2, 2);
        var ones = new DenseTensor<double>(3);
        Array.Fill(ones.Data, 1.0);
        var zeros = new DenseTensor<double>(3);
        var a = BatchNorm2d.ForwardTrain(s.X, null, null, s.Rm, s.Rv, 1e-5, 0.1);
        var b = BatchNorm2d.ForwardTrain(s.X, ones, zeros, s.Rm, s.Rv, 1e-5, 0.1);
        Bitwise.AssertIdentical(b.Y, a.Y, "y");
        var ga = BatchNorm2d.BackwardTrain(s.G, s.X, null, a, hasBias: false);
        Assert.Null(ga.Weight);
        Assert.Null(ga.Bias);
        Bitwise.AssertIdentical(BatchNorm2d.BackwardTrain(s.G, s.X, ones, b).X, ga.X, "x.grad");
    }

    [Fact]
    public void BatchNormRunningStatisticsUseMomentumAndUnbiasedVariance()
    {
        var s = Make(3, 2, 2, 3, 2);
        var fwd = BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5, 0.25);
        for (int c = 0; c < 2; c++)
        {
            var vals = new List<double>();
            for (int n = 0; n < 2; n++)
                for (int h = 0; h < 3; h++)
                    for (int w = 0; w < 2; w++) vals.Add(s.X[n, c, h, w]);
            double mean = vals.Average();
            double ss = vals.Sum(v => (v - mean) * (v - mean));
            Assert.Equal(mean, fwd.Mean.Data[c], 1e-14);
            Assert.Equal(ss / 12, fwd.Var.Data[c], 1e-14);
            Assert.Equal(0.25 * mean + 0.75 * s.Rm.Data[c], fwd.RunningMean.Data[c], 1e-14);
            Assert.Equal(0.25 * ss / 11 + 0.75 * s.Rv.Data[c], fwd.RunningVar.Data[c], 1e-14);
            Assert.Equal(1 / Math.Sqrt(ss / 12 + 1e-5), fwd.InvStd.Data[c], 1e-12);
        }
        // The inputs are not modified.
        Assert.Equal(Make(3, 2, 2, 3, 2).Rv.Data, s.Rv.Data);
    }

    [Fact]
    public void BatchNormEvalIsTheAffineMapOfAten()
    {
        var s = Make(9, 2, 3, 2, 2);
        var y = BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, s.Rv, 1e-3);
        for (int c = 0; c < 3; c++)
        {
            double alpha = 1 / Math.Sqrt(s.Rv.Data[c] + 1e-3) * s.W.Data[c];
            double beta = s.B.Data[c] - s.Rm.Data[c] * alpha;
            for (int n = 0; n < 2; n++)
                for (int i = 0; i < 4; i++)
                    Assert.Equal(s.X[n, c, i / 2, i % 2] * alpha + beta, y[n, c, i / 2, i % 2]); // bitwise
        }
    }

    [Property(MaxTest = 40)]
    public Property BatchNormTrainInputGradientIsOrthogonalToShiftAndScale(int seed)
    {
        // y is invariant to x → a·x + b per channel (up to ε), so Σ dx = 0 and Σ (x − μ)·dx ≈ 0 per channel.
        var rng = new Random(seed);
        int n = rng.Next(1, 4), c = rng.Next(1, 4), h = rng.Next(1, 4), w = rng.Next(2, 5);
        var s = Make(seed, n, c, h, w);
        var fwd = BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, 0, 0.1);
        var g = BatchNorm2d.BackwardTrain(s.G, s.X, s.W, fwd);
        bool ok = true;
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0, dot = 0, scale = 0;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < h * w; k++)
                {
                    double d = g.X[i, ch, k / w, k % w];
                    sum += d;
                    dot += (s.X[i, ch, k / w, k % w] - fwd.Mean.Data[ch]) * d;
                    // The scale of the terms before cancellation: |g|·invstd·|γ|·(1 + |x − μ|) (dx itself may be all rounding noise, e.g. m = 2).
                    scale += Math.Abs(s.G[i, ch, k / w, k % w]) * fwd.InvStd.Data[ch] * Math.Abs(s.W.Data[ch]) * (1 + Math.Abs(s.X[i, ch, k / w, k % w] - fwd.Mean.Data[ch]));
                }
            ok &= Math.Abs(sum) <= 1e-12 * scale && Math.Abs(dot) <= 1e-11 * scale;
        }
        return ok.ToProperty();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void EveryFloat64ReductionRunsInItsDocumentedOrderBitForBit(int threads)
    {
        // The documented orders (Ops/BatchNorm2d.cs, docs/derivations): per channel, sequential sums with n outer and
        // h·w inner for μ, Σ(x − μ)², Σg and Σ(x − μ)·g; then the literal expressions. Written here as plain loops and
        // held bit for bit (a reversed or pairwise sum, or a reassociated expression, fails this; a shared closed form
        // would not). Random data of mixed magnitude so that orders round differently.
        var s = Make(21, 3, 4, 5, 7);
        for (int i = 0; i < s.X.Length; i += 5) s.X.Data[i] *= 1e3;
        int n = 3, c = 4, hw = 35;
        double m = n * hw, eps = 1e-5, mom = 0.1;
        var (f, g, ge) = Compute.WithThreads(threads, () =>
        {
            var f = BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, eps, mom);
            return (f, BatchNorm2d.BackwardTrain(s.G, s.X, s.W, f), BatchNorm2d.BackwardEval(s.G, s.X, s.W, s.Rm, s.Rv, eps));
        });
        static void Same(double expected, double actual, string what) =>
            Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual), $"{what}: {actual:R}, expected {expected:R}");
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) for (int k = 0; k < hw; k++) sum += s.X.Data[(i * c + ch) * hw + k];
            double mu = sum / m, sq = 0;
            for (int i = 0; i < n; i++) for (int k = 0; k < hw; k++) { double d = s.X.Data[(i * c + ch) * hw + k] - mu; sq += d * d; }
            double inv = 1 / Math.Sqrt(sq / m + eps);
            Same(mu, f.Mean.Data[ch], $"mean[{ch}]");
            Same(sq / m, f.Var.Data[ch], $"var[{ch}]");
            Same(mom * mu + (1 - mom) * s.Rm.Data[ch], f.RunningMean.Data[ch], $"running_mean[{ch}]");
            Same(mom * (sq / (m - 1)) + (1 - mom) * s.Rv.Data[ch], f.RunningVar.Data[ch], $"running_var[{ch}]");
            double alpha = inv * s.W.Data[ch], beta = s.B.Data[ch] - mu * alpha;
            double gs = 0, dot = 0, ev = 1 / Math.Sqrt(s.Rv.Data[ch] + eps), edot = 0;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < hw; k++)
                {
                    int at = (i * c + ch) * hw + k;
                    Same(s.X.Data[at] * alpha + beta, f.Y.Data[at], $"y[{at}]");
                    gs += s.G.Data[at];
                    dot += (s.X.Data[at] - mu) * s.G.Data[at];
                    edot += (s.X.Data[at] - s.Rm.Data[ch]) * s.G.Data[at];
                }
            Same(dot * inv, g.Weight!.Data[ch], $"weight.grad[{ch}]");
            Same(gs, g.Bias!.Data[ch], $"bias.grad[{ch}]");
            Same(edot * ev, ge.Weight!.Data[ch], $"eval weight.grad[{ch}]");
            Same(gs, ge.Bias!.Data[ch], $"eval bias.grad[{ch}]");
            double kk = dot * inv * inv / m, gm = gs / m;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < hw; k++)
                {
                    int at = (i * c + ch) * hw + k;
                    Same((s.G.Data[at] - gm - (s.X.Data[at] - mu) * kk) * inv * s.W.Data[ch], g.X.Data[at], $"x.grad[{at}]");
                    Same(s.G.Data[at] * ev * s.W.Data[ch], ge.X.Data[at], $"eval x.grad[{at}]");
                }
        }
    }

    [Fact]
    public void BatchNormIsBitwiseIdenticalForAnyThreadCount()
    {
        var s = Make(4, 3, 7, 5, 3);
        Bitwise.AssertSameForThreadCounts(() =>
        {
            var set = new TensorSet<double>();
            var f = BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5, 0.1);
            var g = BatchNorm2d.BackwardTrain(s.G, s.X, s.W, f);
            set.Set("y", f.Y);
            set.Set("x.grad", g.X);
            set.Set("w.grad", g.Weight!);
            set.Set("rv", f.RunningVar);
            set.Set("eval", BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, s.Rv, 1e-5));
            set.Set("eval.x.grad", BatchNorm2d.BackwardEval(s.G, s.X, s.W, s.Rm, s.Rv, 1e-5).X);
            return set;
        }, 2, 3);
    }

    [Fact]
    public void BatchNormRejectsBadInput()
    {
        var s = Make(1, 2, 3, 2, 2);
        var neg = s.Rv.Clone();
        neg.Data[1] = -0.5;
        var e = Assert.Throws<ArgumentException>(() => BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, neg, 1e-5, "bn1"));
        Assert.Contains("bn1.running_var[1]", e.Message);
        Assert.Throws<ArgumentException>(() => BatchNorm2d.ForwardTrain(s.X, s.W, s.B, s.Rm, neg, 1e-5, 0.1, "bn1"));
        var nan = s.Rv.Clone();
        nan.Data[0] = double.NaN;
        Assert.Throws<ArgumentException>(() => BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, nan, 1e-5));
        var zero = s.Rv.Clone();
        zero.Data[2] = 0;
        Assert.Throws<ArgumentException>(() => BatchNorm2d.ForwardEval(s.X, s.W, s.B, s.Rm, zero, 0)); // var + eps = 0
        var se = Assert.Throws<ShapeMismatchException>(() => BatchNorm2d.ForwardEval(s.X, new DenseTensor<double>(4), s.B, s.Rm, s.Rv, 1e-5, "bn1"));
        Assert.Equal("bn1.weight", se.TensorName);
        Assert.Throws<ShapeMismatchException>(() => BatchNorm2d.ForwardEval(s.X.Reshape(2, 3, 4), s.W, s.B, s.Rm, s.Rv, 1e-5));
        // One value per channel cannot be normalised in training mode (PyTorch: "Expected more than 1 value per channel").
        var one = Make(2, 1, 3, 1, 1);
        var m1 = Assert.Throws<ArgumentException>(() => BatchNorm2d.ForwardTrain(one.X, one.W, one.B, one.Rm, one.Rv, 1e-5, 0.1));
        Assert.Contains("more than 1 value per channel", m1.Message);
    }
}
