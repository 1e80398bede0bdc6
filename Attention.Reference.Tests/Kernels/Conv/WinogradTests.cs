using Attention.Reference.Kernels.Conv;
using Attention.Reference.Kernels;
using Attention.Reference.Models;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>
/// Winograd F(2×2, 3×3), the inference plan's path for float32 3×3 stride-1 layers: bit for bit the documented formula
/// (Eq. conv.W1, every step in its stated order) on every vector path and thread count, its error against the float64
/// convolution no worse than the direct kernel's, and the plan's use of it.
/// </summary>
public sealed class WinogradTests(ITestOutputHelper log)
{
    /// <summary>y ← 2y + 1: applying it twice, or skipping an element, changes the result.</summary>
    private sealed class AffineEpilogue : IConvEpilogue<float>
    {
        public void Apply(Span<float> values)
        {
            for (int i = 0; i < values.Length; i++) values[i] = values[i] + values[i] + 1;
        }
    }

    /// <summary>Eq. (conv.W1) written out element by element, in the documented order.</summary>
    private static float[] Formula(float[] x, int n, int c, int h, int w, float[] wt, int o, float[]? bias)
    {
        var u = new float[o, c, 4, 4];
        for (int oc = 0; oc < o; oc++)
            for (int ic = 0; ic < c; ic++)
            {
                var gg = new double[4, 3];
                for (int col = 0; col < 3; col++)
                {
                    double g0 = wt[((oc * c + ic) * 3 + 0) * 3 + col], g1 = wt[((oc * c + ic) * 3 + 1) * 3 + col];
                    double g2 = wt[((oc * c + ic) * 3 + 2) * 3 + col];
                    (gg[0, col], gg[1, col], gg[2, col], gg[3, col]) = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2);
                }
                for (int a = 0; a < 4; a++)
                {
                    double r0 = gg[a, 0], r1 = gg[a, 1], r2 = gg[a, 2];
                    (u[oc, ic, a, 0], u[oc, ic, a, 1]) = ((float)r0, (float)((r0 + r1 + r2) / 2));
                    (u[oc, ic, a, 2], u[oc, ic, a, 3]) = ((float)((r0 - r1 + r2) / 2), (float)r2);
                }
            }
        var y = new float[n * o * h * w];
        int th = (h + 1) / 2, tw = (w + 1) / 2;
        var v = new float[c, 4, 4];
        for (int img = 0; img < n; img++)
            for (int i = 0; i < th; i++)
                for (int j = 0; j < tw; j++)
                {
                    for (int ic = 0; ic < c; ic++)
                    {
                        float D(int k, int l)
                        {
                            int r = 2 * i - 1 + k, q = 2 * j - 1 + l;
                            return r >= 0 && r < h && q >= 0 && q < w ? x[((img * c + ic) * h + r) * w + q] : 0f;
                        }
                        var rr = new float[4, 4];
                        for (int l = 0; l < 4; l++)
                            (rr[0, l], rr[1, l], rr[2, l], rr[3, l]) = (D(0, l) - D(2, l), D(1, l) + D(2, l), D(2, l) - D(1, l), D(1, l) - D(3, l));
                        for (int a = 0; a < 4; a++)
                            (v[ic, a, 0], v[ic, a, 1], v[ic, a, 2], v[ic, a, 3]) =
                                (rr[a, 0] - rr[a, 2], rr[a, 1] + rr[a, 2], rr[a, 2] - rr[a, 1], rr[a, 1] - rr[a, 3]);
                    }
                    for (int oc = 0; oc < o; oc++)
                    {
                        var m = new float[4, 4];
                        for (int a = 0; a < 4; a++)
                            for (int b = 0; b < 4; b++)
                            {
                                float acc = 0f;
                                for (int ic = 0; ic < c; ic++) acc = MathF.FusedMultiplyAdd(u[oc, ic, a, b], v[ic, a, b], acc);
                                m[a, b] = acc;
                            }
                        var p = new float[2, 4];
                        for (int b = 0; b < 4; b++) (p[0, b], p[1, b]) = (m[0, b] + m[1, b] + m[2, b], m[1, b] - m[2, b] - m[3, b]);
                        for (int r = 0; r < 2; r++)
                        {
                            float[] out2 = [p[r, 0] + p[r, 1] + p[r, 2], p[r, 1] - p[r, 2] - p[r, 3]];
                            for (int s = 0; s < 2; s++)
                            {
                                int oy = 2 * i + r, ox = 2 * j + s;
                                if (oy < h && ox < w) y[((img * o + oc) * h + oy) * w + ox] = bias is null ? out2[s] : out2[s] + bias[oc];
                            }
                        }
                    }
                }
        return y;
    }

    private static (DenseTensor<float> X, DenseTensor<float> W, DenseTensor<float> B) Random(int n, int c, int h, int w, int o, int seed)
    {
        var rng = new Random(seed);
        var x = new DenseTensor<float>(n, c, h, w);
        var wt = new DenseTensor<float>(o, c, 3, 3);
        var b = new DenseTensor<float>(o);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < wt.Length; i++) wt.Data[i] = (float)((rng.NextDouble() * 2 - 1) * 0.2);
        for (int i = 0; i < b.Length; i++) b.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        return (x, wt, b);
    }

    [Theory]
    [InlineData(2, 5, 7, 9, 3)]     // odd plane, partial tiles on both edges, few channels, two images
    [InlineData(1, 16, 14, 14, 32)] // one full channel block, tile rows of 7 (one micro-tile each)
    [InlineData(1, 33, 13, 40, 40)] // tile rows of 20 (the Vector512 step overlaps), a partial channel block
    [InlineData(1, 200, 6, 6, 20)]  // a reduction longer than 192: two chunks, one FMA chain
    [InlineData(1, 8, 30, 30, 8)]   // several bands
    [InlineData(1, 8, 6, 6, 161)]   // more channel blocks than one pass over V computes (5 to 11), the last partial
    public void WinogradIsTheDocumentedFormulaBitForBit(int n, int c, int h, int w, int o)
    {
        var (x, wt, b) = Random(n, c, h, w, o, 11 * c + h);
        var g = Conv2dGeometry.Square(c, o, 3, 1, 1);
        var expected = Formula(x.Data, n, c, h, w, wt.Data, o, b.Data);
        var bare = Formula(x.Data, n, c, h, w, wt.Data, o, null);
        var affine = bare.Select(v => v + v + 1).ToArray();
        // Every thread's workspaces first filled with NaN by a larger call: nothing stale may reach a valid output.
        var poison = new DenseTensor<float>(n, c, h + 9, w + 17);
        poison.Data.AsSpan().Fill(float.NaN);
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
            foreach (int threads in new[] { 1, 2, 3 })
                foreach (var (bandRows, oGroups) in new[] { (0, 0), (1, 1), (1, 8), (3, 2) })
                {
                    var y = new DenseTensor<float>(n, o, h, w);
                    var y2 = new DenseTensor<float>(n, o, h, w);
                    var pack = new ConvWeightPack();
                    SimdWidth.With(path, () => Compute.WithThreads(threads, () =>
                    {
                        Conv2d.ForwardWinograd(poison, wt, b, g, new DenseTensor<float>(n, o, h + 9, w + 17), null, new ConvWeightPack());
                        var split = bandRows == 0 ? SimdWidth.Choices : SimdWidth.Choices with { WinogradSplit = (bandRows, oGroups) };
                        return SimdWidth.With(split, () =>
                        {
                            Conv2d.ForwardWinograd(x, wt, b, g, y, null, pack);
                            Conv2d.ForwardWinograd(x, wt, null, g, y2, new AffineEpilogue(), new ConvWeightPack());
                            return 0;
                        });
                    }));
                    AssertSameBits(expected, y.Data, $"{path}, {threads} threads, split ({bandRows}, {oGroups})");
                    AssertSameBits(affine, y2.Data, $"{path}, {threads} threads, split ({bandRows}, {oGroups}), no bias, epilogue");
                }
    }

    /// <summary>Bit for bit (float.Equals would let −0 pass for +0).</summary>
    private static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, the formula gives {expected[i]:R}");
    }

    [Fact]
    public void WinogradErrorAgainstTheFloat64ConvolutionIsNoWorseThanTheDirectKernels()
    {
        // ResNet-like layers, weights scaled as after BatchNorm folding (|w| ≲ 0.1), inputs in [-1, 1).
        foreach (var (c, hw) in new[] { (64, 28), (128, 14), (256, 14) })
        {
            var (x, wt, b) = Random(1, c, hw, hw, c, c + hw);
            for (int i = 0; i < wt.Length; i++) wt.Data[i] *= 0.5f;
            var g = Conv2dGeometry.Square(c, c, 3, 1, 1);
            var exact = Conv2dSpec.Forward(x.Cast<double>(), wt.Cast<double>(), b.Cast<double>(), g);
            var direct = Conv2d.Forward(x, wt, b, g);
            var wino = new DenseTensor<float>(1, c, hw, hw);
            Conv2d.ForwardWinograd(x, wt, b, g, wino, null, new ConvWeightPack());
            double eDirect = 0, eWino = 0, scale = exact.Data.Max(Math.Abs);
            for (int i = 0; i < exact.Length; i++)
            {
                eDirect = Math.Max(eDirect, Math.Abs(direct.Data[i] - exact.Data[i]));
                eWino = Math.Max(eWino, Math.Abs(wino.Data[i] - exact.Data[i]));
            }
            log.WriteLine($"{c}→{c} @{hw}: max |Δ| / max |y|: direct {eDirect / scale:E2}, Winograd {eWino / scale:E2}");
            Assert.True(eWino <= eDirect, $"{c}@{hw}: Winograd {eWino:E3} against direct {eDirect:E3}");
            Assert.True(eWino > 0, "Winograd gave the float64 result exactly: the test is not measuring anything");
        }
    }

    [Fact]
    public void WinogradRunsOnlyWhereItApplies()
    {
        var g = Conv2dGeometry.Square(64, 64, 3, 1, 1);
        Assert.True(Conv2d.WinogradPays<float>(g, 56, 56));
        Assert.True(Conv2d.WinogradPays<float>(Conv2dGeometry.Square(256, 256, 3, 1, 1), 14, 14));
        Assert.False(Conv2d.WinogradPays<double>(g, 56, 56));                                      // float32 only
        Assert.False(Conv2d.WinogradPays<float>(g, 7, 7));                                          // too small a plane
        Assert.False(Conv2d.WinogradPays<float>(Conv2dGeometry.Square(512, 512, 3, 1, 1), 14, 14)); // U of 16 MB
        Assert.False(Conv2d.WinogradPays<float>(Conv2dGeometry.Square(64, 64, 3, 2, 1), 56, 56));   // stride 2
        Assert.False(Conv2d.WinogradPays<float>(Conv2dGeometry.Square(64, 64, 3, 1, 0), 56, 56));   // padding 0
        Assert.False(Conv2d.WinogradPays<float>(Conv2dGeometry.Square(64, 64, 1, 1, 0), 56, 56));   // 1×1
        Assert.False(Conv2d.WinogradPays<float>(new Conv2dGeometry(64, 64, (3, 3), (1, 1), (1, 1), (1, 1), 2), 56, 56)); // groups
        Assert.False(Conv2d.WinogradPays<float>(new Conv2dGeometry(64, 64, (3, 3), (1, 1), (2, 2), (2, 2), 1), 56, 56)); // dilation
        var y = new DenseTensor<float>(1, 64, 56, 56);
        Assert.Throws<ArgumentException>(() => Conv2d.ForwardWinograd(new DenseTensor<float>(1, 64, 56, 56),
            new DenseTensor<float>(64, 64, 1, 1), null, Conv2dGeometry.Square(64, 64, 1), y, null, new ConvWeightPack()));
    }

    [Fact]
    public void PlanUsesWinogradByDefaultAndBothChoicesHoldAgainstTheOracle()
    {
        var oracle = ModelZoo.Create<double>("resnet50");
        var weights = RandomWeights.StateDict(oracle, 5);
        oracle.LoadStateDict(weights);
        var x = new DenseTensor<double>(1, 3, 64, 64);
        var rng = new Random(6);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextDouble() * 2 - 1;
        var expected = oracle.Forward(x);
        double scale = expected.Data.Max(Math.Abs);
        float[]? previous = null;
        foreach (var options in new[] { InferencePlanOptions.Default, new InferencePlanOptions { Winograd = false } })
        {
            var net = ModelZoo.Create<float>("resnet50");
            net.LoadStateDict(weights.Cast<float>());
            var y = InferencePlan<float>.Compile(net, options).Forward(x.Cast<float>());
            double worst = expected.Data.Zip(y.Data).Max(p => Math.Abs(p.First - p.Second));
            log.WriteLine($"Winograd {options.Winograd}: max |Δ| / max |y| = {worst / scale:E2}");
            Assert.True(worst <= 1e-4 * scale, $"Winograd {options.Winograd}: {worst:E3}");
            if (previous is not null) Assert.NotEqual(previous, y.Data); // layer1's 16 × 16 3x3 layers ran Winograd by default
            previous = y.Data;
        }
        Assert.True(InferencePlanOptions.Default.Winograd);
    }
}
