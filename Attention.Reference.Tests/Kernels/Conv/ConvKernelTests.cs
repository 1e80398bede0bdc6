using Attention.Reference.Kernels.Conv;
using Attention.Reference.Kernels;
using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>The fast kernels against the spec kernels, MathNet's matrix product, the adjoint identities; determinism.</summary>
public sealed class ConvKernelTests
{
    /// <summary>Checks all four fast kernels against the spec kernels on one problem (float64).</summary>
    internal static void CheckFastAgainstSpec(ConvProblem pr)
    {
        var g = pr.G;
        var (x, wt, b, dy) = pr.Data();
        int ig = g.InPerGroup, khkw = g.Kernel.H * g.Kernel.W;
        var (ax, aw, ab, ady) = (ConvTestData.Abs(x), ConvTestData.Abs(wt), b is null ? null : ConvTestData.Abs(b), ConvTestData.Abs(dy));

        var y = Conv2d.Forward(x, wt, b, g);
        ConvTestData.AssertClose(Conv2dSpec.Forward(x, wt, b, g), y, Conv2dSpec.Forward(ax, aw, ab, g), ig * khkw + 1, $"y of {pr}");

        var dx = Conv2d.BackwardInput(dy, wt, g, pr.H, pr.W);
        ConvTestData.AssertClose(Conv2dSpec.BackwardInput(dy, wt, g, pr.H, pr.W), dx, Conv2dSpec.BackwardInput(ady, aw, g, pr.H, pr.W),
            g.OutPerGroup * khkw, $"x.grad of {pr}");

        var (ho, wo) = pr.Out;
        var dwSpec = Conv2dSpec.BackwardWeight(x, dy, g);
        var dwMag = Conv2dSpec.BackwardWeight(ax, ady, g);
        ConvTestData.AssertClose(dwSpec, Conv2d.BackwardWeight(x, dy, g), dwMag, pr.N * ho * wo, $"weight.grad of {pr}");

        // The alternative kernels the heuristics may not pick for this shape: the packed-im2col forward, and both
        // weight-gradient kernels.
        try
        {
            Conv2dTuning.PackedForward = true;
            ConvTestData.AssertClose(Conv2dSpec.Forward(x, wt, b, g), Conv2d.Forward(x, wt, b, g), Conv2dSpec.Forward(ax, aw, ab, g), ig * khkw + 1, $"packed y of {pr}");
            foreach (bool packed in new[] { true, false })
            {
                Conv2dTuning.PackedInputGradient = packed;
                ConvTestData.AssertClose(Conv2dSpec.BackwardInput(dy, wt, g, pr.H, pr.W), Conv2d.BackwardInput(dy, wt, g, pr.H, pr.W),
                    Conv2dSpec.BackwardInput(ady, aw, g, pr.H, pr.W), g.OutPerGroup * khkw, $"x.grad (packed = {packed}) of {pr}");
            }
            foreach (bool direct in new[] { true, false })
            {
                Conv2dTuning.DirectWeightGradient = direct;
                ConvTestData.AssertClose(dwSpec, Conv2d.BackwardWeight(x, dy, g), dwMag, pr.N * ho * wo, $"weight.grad (direct = {direct}) of {pr}");
            }
        }
        finally
        {
            Conv2dTuning.PackedForward = null;
            Conv2dTuning.PackedInputGradient = null;
            Conv2dTuning.DirectWeightGradient = null;
        }

        // The bias gradient has the spec's summation order exactly.
        Bitwise.AssertIdentical(Conv2dSpec.BackwardBias(dy), Conv2d.BackwardBias(dy), $"bias.grad of {pr}");
    }

    [Property(MaxTest = 60)]
    public Property ConvFastEqualsSpecOnGeneratedShapes() =>
        Prop.ForAll(ConvTestData.Arb, pr => CheckFastAgainstSpec(pr));

    [Fact]
    public void ConvFastEqualsSpecAcrossEveryBlockBoundary()
    {
        // O = 70 > MC = 64 rows; K = 40·9 = 360 > 2·KC; P = 19·19 = 361 > NC and > the 256-position weight-gradient
        // chunk (two chunks per image, two images); odd everything.
        CheckFastAgainstSpec(new ConvProblem(Conv2dGeometry.Square(40, 70, 3, padding: 1), 2, 19, 19, true, 7));
        // Grouped with a reduction over O/G = 150 > KC in the input gradient.
        CheckFastAgainstSpec(new ConvProblem(Conv2dGeometry.Square(6, 300, 1, groups: 2), 1, 5, 7, false, 8));
        // Stride 2, non-square kernel, dilation, padding; many positions.
        CheckFastAgainstSpec(new ConvProblem(new Conv2dGeometry(5, 9, (3, 2), (2, 1), (2, 1), (2, 3), 1), 1, 33, 41, true, 9));
    }

    [Fact]
    public void ConvFastEqualsSpecOnExtremeShapes()
    {
        // Huge dilation and padding (offsets far beyond one grid row), stride larger than the kernel, a 1×1 input,
        // a single output position, O/G = 1 with a long reduction, and a 2-wide image with a tall kernel.
        CheckFastAgainstSpec(new ConvProblem(new Conv2dGeometry(2, 3, (3, 3), (1, 1), (40, 45), (40, 45), 1), 1, 5, 6, true, 21));
        CheckFastAgainstSpec(new ConvProblem(new Conv2dGeometry(3, 5, (2, 2), (5, 4), (1, 0), (1, 1), 1), 2, 13, 11, true, 22));
        CheckFastAgainstSpec(new ConvProblem(Conv2dGeometry.Square(4, 6, 3, padding: 1), 1, 1, 1, true, 23));
        CheckFastAgainstSpec(new ConvProblem(Conv2dGeometry.Square(5, 7, 3), 3, 3, 3, false, 24));
        CheckFastAgainstSpec(new ConvProblem(Conv2dGeometry.Square(300, 2, 1, groups: 2), 1, 3, 5, true, 25));
        CheckFastAgainstSpec(new ConvProblem(new Conv2dGeometry(3, 4, (7, 1), (1, 2), (3, 0), (1, 1), 1), 1, 9, 2, true, 26));
    }

    [Fact]
    public void ConvFloat32FastIsCloseToFloat64Spec()
    {
        var pr = new ConvProblem(Conv2dGeometry.Square(12, 20, 3, stride: 2, padding: 1), 2, 17, 15, true, 3);
        var g = pr.G;
        var (x, wt, b, dy) = pr.Data();
        var y32 = Conv2d.Forward(x.Cast<float>(), wt.Cast<float>(), b!.Cast<float>(), g).Cast<double>();
        var mag = Conv2dSpec.Forward(ConvTestData.Abs(x), ConvTestData.Abs(wt), ConvTestData.Abs(b), g);
        var y = Conv2dSpec.Forward(x, wt, b, g);
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(y.Data[i] - y32.Data[i]) <= (12 * 9 + 4) * 6e-8 * mag.Data[i], $"y[{i}] {y32.Data[i]} vs {y.Data[i]}");
        var dw32 = Conv2d.BackwardWeight(x.Cast<float>(), dy.Cast<float>(), g).Cast<double>();
        var dwMag = Conv2dSpec.BackwardWeight(ConvTestData.Abs(x), ConvTestData.Abs(dy), g);
        var dw = Conv2dSpec.BackwardWeight(x, dy, g);
        for (int i = 0; i < dw.Length; i++)
            Assert.True(Math.Abs(dw.Data[i] - dw32.Data[i]) <= (2 * 81 + 4) * 6e-8 * dwMag.Data[i], $"dw[{i}] {dw32.Data[i]} vs {dw.Data[i]}");
    }

    internal static TensorSet<T> AllFour<T>(ConvProblem pr) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var (x, wt, b, dy) = pr.Data();
        var (xt, wtt, bt, dyt) = (x.Cast<T>(), wt.Cast<T>(), b?.Cast<T>(), dy.Cast<T>());
        var set = new TensorSet<T>();
        set.Set("y", Conv2d.Forward(xt, wtt, bt, pr.G));
        set.Set("x.grad", Conv2d.BackwardInput(dyt, wtt, pr.G, pr.H, pr.W));
        set.Set("weight.grad", Conv2d.BackwardWeight(xt, dyt, pr.G));
        set.Set("bias.grad", Conv2d.BackwardBias(dyt));
        return set;
    }

    private static readonly ConvProblem Big = new(new Conv2dGeometry(18, 70, (3, 3), (1, 1), (1, 1), (1, 1), 2), 2, 23, 21, true, 11);
    private static readonly ConvProblem Strided = new(new Conv2dGeometry(9, 12, (3, 5), (2, 2), (1, 2), (1, 2), 3), 3, 24, 35, true, 12);
    private static readonly ConvProblem StridedWide = new(new Conv2dGeometry(20, 12, (3, 3), (2, 3), (1, 2), (1, 1), 1), 2, 39, 37, false, 13);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Float64ForwardAndStrideOneInputGradientRunTheirDocumentedFmaChainsBitForBit(int threads)
    {
        // docs/derivations/conv2d.md, "Summation order": y is one FMA chain per element over k = (c, p, q) increasing
        // from +0 (padding terms as w·0), then + b; a stride-1 input gradient is the forward chain of the flipped
        // kernel, over o increasing, p and q decreasing. Written as plain loops here and held bit for bit on grid,
        // row and pointwise shapes (the spec comparisons above allow rounding; this pins the order itself).
        foreach (var (g, h, w, rows) in new (Conv2dGeometry, int, int, bool?)[]
        {
            (Conv2dGeometry.Square(5, 7, 3, 1, 1), 9, 11, false), (Conv2dGeometry.Square(5, 7, 3, 1, 1), 9, 11, true),
            (Conv2dGeometry.Square(12, 10, 1), 6, 5, null), (Conv2dGeometry.Square(4, 6, 3, 2, 1, groups: 2), 8, 7, null),
        })
        {
            var (x, wt, b, dy) = new ConvProblem(g, 2, h, w, true, h * 31 + w).Data();
            for (int i = 0; i < x.Length; i += 7) x.Data[i] *= 1e4; // magnitudes that make the order show
            var (y, dx) = SimdWidth.With(SimdWidth.Choices with { RowKernel = rows }, () => Compute.WithThreads(threads,
                () => (Conv2d.Forward(x, wt, b, g), g.Stride == (1, 1) ? Conv2d.BackwardInput(dy, wt, g, h, w) : null)));
            var (ho, wo) = g.OutputSize(h, w);
            int ig = g.InPerGroup, og = g.OutPerGroup, kh = g.Kernel.H, kw = g.Kernel.W;
            for (int n = 0; n < 2; n++)
                for (int o = 0; o < g.OutChannels; o++)
                    for (int u = 0; u < ho; u++)
                        for (int v = 0; v < wo; v++)
                        {
                            double acc = 0;
                            for (int c = 0; c < ig; c++)
                                for (int p = 0; p < kh; p++)
                                    for (int q = 0; q < kw; q++)
                                    {
                                        int hi = u * g.Stride.H - g.Padding.H + p, wi = v * g.Stride.W - g.Padding.W + q;
                                        int ci = o / og * ig + c;
                                        double xv = hi < 0 || hi >= h || wi < 0 || wi >= w ? 0 : x[n, ci, hi, wi];
                                        acc = Math.FusedMultiplyAdd(wt[o, c, p, q], xv, acc);
                                    }
                            double expected = acc + b!.Data[o];
                            Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(y[n, o, u, v]),
                                $"{g} y[{n},{o},{u},{v}] = {y[n, o, u, v]:R}, the documented chain gives {expected:R}");
                        }
            if (dx is null) continue;
            for (int n = 0; n < 2; n++)
                for (int ci = 0; ci < g.InChannels; ci++)
                    for (int hi = 0; hi < h; hi++)
                        for (int wi = 0; wi < w; wi++)
                        {
                            double acc = 0;
                            int grp = ci / ig, c = ci % ig;
                            for (int o = grp * og; o < (grp + 1) * og; o++)
                                for (int p = kh - 1; p >= 0; p--)
                                    for (int q = kw - 1; q >= 0; q--)
                                    {
                                        int u = hi + g.Padding.H - p, v = wi + g.Padding.W - q;
                                        double d = u < 0 || u >= ho || v < 0 || v >= wo ? 0 : dy[n, o, u, v];
                                        acc = Math.FusedMultiplyAdd(wt[o, c, p, q], d, acc);
                                    }
                            Assert.True(BitConverter.DoubleToInt64Bits(acc) == BitConverter.DoubleToInt64Bits(dx[n, ci, hi, wi]),
                                $"{g} x.grad[{n},{ci},{hi},{wi}] = {dx[n, ci, hi, wi]:R}, the documented chain gives {acc:R}");
                        }
        }
    }

    [Fact]
    public void ConvIsBitwiseIdenticalForAnyThreadCount()
    {
        foreach (var pr in new[] { Big, Strided, StridedWide })
        {
            Bitwise.AssertSameForThreadCounts(() => AllFour<double>(pr), 2, 3, 8);
            Bitwise.AssertSameForThreadCounts(() => AllFour<float>(pr), 2, 3, 8);
        }
    }

    [Fact]
    public void ConvIsBitwiseIdenticalForEveryVectorWidth() => AllWidthsAgree();

    [Fact]
    public void SixteenRegisterKernelsAreBitwiseIdentical()
    {
        // The split register tiles of x64 without AVX-512 (16 vector registers), which the Vector256 path always runs:
        // the grid tile as two halves, the row tile as 4 + 3 positions, Winograd's product through the latter — against
        // Vector512.
        Assert.True(Simd256<float>.SixteenRegisters && Simd256<double>.SixteenRegisters && !Simd512<float>.SixteenRegisters);
        {
            AllWidthsAgree();
            var g = Conv2dGeometry.Square(24, 40, 3, 1, 1);
            var rng = new Random(5);
            var x = new DenseTensor<float>(1, 24, 14, 14);
            var w = new DenseTensor<float>(40, 24, 3, 3);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)rng.NextDouble() - 0.5f;
            for (int i = 0; i < w.Length; i++) w.Data[i] = (float)rng.NextDouble() - 0.5f;
            float[] Wino(SimdPath p) => SimdWidth.With(p, () =>
            {
                var y = new DenseTensor<float>(1, 40, 14, 14);
                Conv2d.ForwardWinograd(x, w, null, g, y, null, new ConvWeightPack());
                return y.Data;
            });
            var wide = Wino(SimdPath.Vector512);
            Assert.Equal(wide.Select(BitConverter.SingleToInt32Bits), Wino(SimdPath.Vector256).Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(wide.Select(BitConverter.SingleToInt32Bits), Wino(SimdPath.Portable).Select(BitConverter.SingleToInt32Bits));
            foreach (var rows in new[] { true, false })
            {
                var pr = new ConvProblem(Conv2dGeometry.Square(20, 64, 3, padding: 1), 1, 14, 14, true, 41);
                var (px, pw, pb, _) = pr.Data();
                DenseTensor<float> Run(SimdPath p) => SimdWidth.With(p, () =>
                {
                    Conv2dTuning.RowKernel = rows;
                    try { return Conv2d.Forward(px.Cast<float>(), pw.Cast<float>(), pb?.Cast<float>(), pr.G); }
                    finally { Conv2dTuning.RowKernel = null; }
                });
                var reference = Run(SimdPath.Vector512);
                Bitwise.AssertIdentical(reference, Run(SimdPath.Vector256), $"rows={rows} Vector256, 16 registers");
                Bitwise.AssertIdentical(reference, Run(SimdPath.Portable), $"rows={rows} portable");
            }
        }
    }

    private static void AllWidthsAgree()
    {
        foreach (var pr in new[] { Big, Strided, StridedWide })
        {
            var saved = SimdWidth.Forced;
            try
            {
                SimdWidth.Forced = SimdPath.Vector512;
                var d512 = AllFour<double>(pr);
                var f512 = AllFour<float>(pr);
                foreach (var path in new[] { SimdPath.Vector256, SimdPath.Portable })
                {
                    SimdWidth.Forced = path;
                    var d = AllFour<double>(pr);
                    var f = AllFour<float>(pr);
                    foreach (var (name, t) in d512) Bitwise.AssertIdentical(t, d.Get(name), $"{name} float64 {path} vs Vector512");
                    foreach (var (name, t) in f512) Bitwise.AssertIdentical(t, f.Get(name), $"{name} float32 {path} vs Vector512");
                }
            }
            finally
            {
                SimdWidth.Forced = saved;
            }
        }
    }

    /// <summary>im2col of image n, group grp as a MathNet matrix [(I/G)·kh·kw, Ho·Wo] (Eq. (conv.7)), built naively.</summary>
    private static Matrix<double> Im2Col(ConvProblem pr, DenseTensor<double> x, int n, int grp)
    {
        var g = pr.G;
        var (ho, wo) = pr.Out;
        int ig = g.InPerGroup, kh = g.Kernel.H, kw = g.Kernel.W;
        return Matrix<double>.Build.Dense(ig * kh * kw, ho * wo, (row, col) =>
        {
            int c = row / (kh * kw), p = row / kw % kh, q = row % kw, i = col / wo, j = col % wo;
            int hh = i * g.Stride.H - g.Padding.H + p * g.Dilation.H, ww = j * g.Stride.W - g.Padding.W + q * g.Dilation.W;
            return hh >= 0 && hh < pr.H && ww >= 0 && ww < pr.W ? x[n, grp * ig + c, hh, ww] : 0.0;
        });
    }

    [Property(MaxTest = 25)]
    public Property ConvMatchesMathNetIm2ColTimesMatrix() => Prop.ForAll(ConvTestData.Arb, pr =>
    {
        var g = pr.G;
        var (x, wt, b, dy) = pr.Data();
        var (ho, wo) = pr.Out;
        int og = g.OutPerGroup, k = g.ReductionLength, p = ho * wo;
        var y = Conv2d.Forward(x, wt, b, g);
        var dx = Conv2d.BackwardInput(dy, wt, g, pr.H, pr.W);
        var dw = Conv2d.BackwardWeight(x, dy, g);
        var dwRef = Matrix<double>.Build.Dense(g.OutChannels, k);
        var dxRef = new DenseTensor<double>(pr.N, g.InChannels, pr.H, pr.W);
        double scale = 1e-12 * Math.Max(k, og * g.Kernel.H * g.Kernel.W + pr.N * p);
        for (int n = 0; n < pr.N; n++)
        for (int grp = 0; grp < g.Groups; grp++)
        {
            var col = Im2Col(pr, x, n, grp);
            var wg = Matrix<double>.Build.Dense(og, k, (o, kk) => wt.Data[(grp * og + o) * k + kk]);
            var dyg = Matrix<double>.Build.Dense(og, p, (o, j) => dy.Data[((n * g.OutChannels + grp * og + o) * p) + j]);
            var yg = wg * col; // Eq. (conv.7)
            for (int o = 0; o < og; o++)
            for (int j = 0; j < p; j++)
            {
                double e = yg[o, j] + (b?.Data[grp * og + o] ?? 0);
                Assert.True(Math.Abs(e - y.Data[(n * g.OutChannels + grp * og + o) * p + j]) <= scale * (1 + Math.Abs(e) + k), $"y vs MathNet, {pr}");
            }
            dwRef.SetSubMatrix(grp * og, 0, dwRef.SubMatrix(grp * og, og, 0, k) + dyg * col.Transpose()); // Eq. (conv.11)
            var dcol = wg.Transpose() * dyg; // Eq. (conv.9), then col2im (conv.10)
            for (int row = 0; row < k; row++)
            for (int j = 0; j < p; j++)
            {
                int c = row / (g.Kernel.H * g.Kernel.W), pp = row / g.Kernel.W % g.Kernel.H, qq = row % g.Kernel.W, i = j / wo, jj = j % wo;
                int hh = i * g.Stride.H - g.Padding.H + pp * g.Dilation.H, ww = jj * g.Stride.W - g.Padding.W + qq * g.Dilation.W;
                if (hh >= 0 && hh < pr.H && ww >= 0 && ww < pr.W) dxRef[n, grp * g.InPerGroup + c, hh, ww] += dcol[row, j];
            }
        }
        for (int i = 0; i < dw.Length; i++)
            Assert.True(Math.Abs(dw.Data[i] - dwRef[i / k, i % k]) <= scale * (1 + Math.Abs(dwRef[i / k, i % k]) + pr.N * p), $"dw vs MathNet, {pr}");
        for (int i = 0; i < dx.Length; i++)
            Assert.True(Math.Abs(dx.Data[i] - dxRef.Data[i]) <= scale * (1 + Math.Abs(dxRef.Data[i]) + og * 16), $"dx vs MathNet, {pr}");
    });

    [Property(MaxTest = 40)]
    public Property ConvAdjointIdentitiesHold() => Prop.ForAll(ConvTestData.Arb, pr =>
    {
        // Eq. (conv.13): ⟨conv(x; w), u⟩ = ⟨x, convᵀ(u; w)⟩ = ⟨w, ∂w(x, u)⟩ (no bias: the map is bilinear).
        var g = pr.G;
        var (x, wt, _, u) = pr.Data();
        var y = Conv2d.Forward(x, wt, null, g);
        var dx = Conv2d.BackwardInput(u, wt, g, pr.H, pr.W);
        var dw = Conv2d.BackwardWeight(x, u, g);
        double Dot(DenseTensor<double> a, DenseTensor<double> b, out double mag)
        {
            double s = 0;
            mag = 0;
            for (int i = 0; i < a.Length; i++) { s += a.Data[i] * b.Data[i]; mag += Math.Abs(a.Data[i] * b.Data[i]); }
            return s;
        }
        double lhs = Dot(y, u, out double m1), viaX = Dot(x, dx, out double m2), viaW = Dot(wt, dw, out double m3);
        double tol = 1e-12 * (m1 + m2 + m3) * Math.Sqrt(g.ReductionLength + 1);
        Assert.True(Math.Abs(lhs - viaX) <= tol, $"⟨y,u⟩ = {lhs:R} but ⟨x, dx⟩ = {viaX:R} for {pr}");
        Assert.True(Math.Abs(lhs - viaW) <= tol, $"⟨y,u⟩ = {lhs:R} but ⟨w, dw⟩ = {viaW:R} for {pr}");
    });

    [Fact]
    public void ConvWarmCallsAllocateNoWorkspace()
    {
        // Once the per-thread workspaces are warm, forward and backward calls (dense and depthwise) allocate nothing at
        // all (the parallel loops run struct bodies on a persistent team; tap and phase tables are kept per thread), on
        // one thread and on two; the padded-input workspace alone is over 150 KB for these shapes.
        foreach (var pr in new[] { Big, Strided, new ConvProblem(Conv2dGeometry.Square(24, 24, 3, stride: 2, padding: 1, groups: 24), 1, 30, 30, true, 14) })
        foreach (int threads in new[] { 1, 2 })
        {
            var (x, wt, b, dy) = pr.Data();
            var (ho, wo) = pr.Out;
            var y = new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo);
            var dx = new DenseTensor<double>(pr.N, pr.G.InChannels, pr.H, pr.W);
            var dw = new DenseTensor<double>(pr.G.WeightShape);
            var db = new DenseTensor<double>(pr.G.OutChannels);
            var (forward, backward) = Compute.WithThreads(threads, () =>
            {
                for (int i = 0; i < 2; i++)
                {
                    Conv2d.Forward(x, wt, b, pr.G, y);
                    Conv2d.BackwardInput(dy, wt, pr.G, dx);
                    Conv2d.BackwardWeight(x, dy, pr.G, dw);
                    Conv2d.BackwardBias(dy, db);
                }
                // The least of three warm rounds: a call that allocates allocates in every round, while a one-off
                // runtime allocation on this thread (seen in first runs after a build, under load) does not.
                long forwardLeast = long.MaxValue, backwardLeast = long.MaxValue;
                for (int round = 0; round < 3; round++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    Conv2d.Forward(x, wt, b, pr.G, y);
                    long mid = GC.GetAllocatedBytesForCurrentThread();
                    Conv2d.BackwardInput(dy, wt, pr.G, dx);
                    Conv2d.BackwardWeight(x, dy, pr.G, dw);
                    Conv2d.BackwardBias(dy, db);
                    forwardLeast = Math.Min(forwardLeast, mid - before);
                    backwardLeast = Math.Min(backwardLeast, GC.GetAllocatedBytesForCurrentThread() - mid);
                }
                return (forwardLeast, backwardLeast);
            });
            Assert.True(forward == 0, $"a warm forward allocated {forward} bytes for {pr} on {threads} thread(s)");
            Assert.True(backward == 0, $"a warm backward allocated {backward} bytes for {pr} on {threads} thread(s)");
        }
    }

    [Fact]
    public void ConvPreallocatedOverloadsOverwriteEveryElement()
    {
        var pr = Strided;
        var (x, wt, b, dy) = pr.Data();
        var (ho, wo) = pr.Out;
        var y = new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo);
        var dx = new DenseTensor<double>(pr.N, pr.G.InChannels, pr.H, pr.W);
        var dw = new DenseTensor<double>(pr.G.WeightShape);
        var db = new DenseTensor<double>(pr.G.OutChannels);
        foreach (var t in new[] { y, dx, dw, db }) Array.Fill(t.Data, double.NaN);
        Conv2d.Forward(x, wt, b, pr.G, y);
        Conv2d.BackwardInput(dy, wt, pr.G, dx);
        Conv2d.BackwardWeight(x, dy, pr.G, dw);
        Conv2d.BackwardBias(dy, db);
        Bitwise.AssertIdentical(Conv2d.Forward(x, wt, b, pr.G), y, "y");
        Bitwise.AssertIdentical(Conv2d.BackwardInput(dy, wt, pr.G, pr.H, pr.W), dx, "x.grad");
        Bitwise.AssertIdentical(Conv2d.BackwardWeight(x, dy, pr.G), dw, "weight.grad");
        Bitwise.AssertIdentical(Conv2d.BackwardBias(dy), db, "bias.grad");
    }
}
