using System.Numerics;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Kernels;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>
/// The packed (col2im) input gradient, the form for fewer than 8 input channels per group (the RGB stem): its documented
/// order, Eqs. (conv.9)–(conv.10), pinned bit for bit, for any thread count and the work split that follows it; the
/// packed (small-grid) weight gradient the same for any thread count.
/// </summary>
public sealed class PackedGradientTests
{
    /// <summary>
    /// Eq. (conv.9)–(conv.10) in scalar float: each Col element one FMA chain over o increasing from +0, then each dx
    /// element the sum of its (p, q) terms in increasing (p, q) order from +0.
    /// </summary>
    private static float[] Reference(ConvProblem pr, DenseTensor<float> dy, DenseTensor<float> w)
    {
        var g = pr.G;
        var (ho, wo) = pr.Out;
        int og = g.OutPerGroup, ig = g.InPerGroup, kh = g.Kernel.H, kw = g.Kernel.W;
        var dx = new float[pr.N * g.InChannels * pr.H * pr.W];
        for (int n = 0; n < pr.N; n++)
        for (int grp = 0; grp < g.Groups; grp++)
        for (int c = 0; c < ig; c++)
        for (int p = 0; p < kh; p++)
        for (int q = 0; q < kw; q++)
        for (int oh = 0; oh < ho; oh++)
        for (int ow = 0; ow < wo; ow++)
        {
            int ih = oh * g.Stride.H + p * g.Dilation.H - g.Padding.H, iw = ow * g.Stride.W + q * g.Dilation.W - g.Padding.W;
            if ((uint)ih >= (uint)pr.H || (uint)iw >= (uint)pr.W) continue;
            float col = 0f;
            for (int o = 0; o < og; o++)
                col = MathF.FusedMultiplyAdd(w[grp * og + o, c, p, q], dy[n, grp * og + o, oh, ow], col);
            dx[((n * g.InChannels + grp * ig + c) * pr.H + ih) * pr.W + iw] += col;
        }
        return dx;
    }

    [Fact]
    public void PackedInputGradientHasItsDocumentedOrderForEveryThreadCount()
    {
        // A scaled stem (7×7, stride 2, 3 channels: all in one block of 147 Col rows, 4 runs of column tiles) and a
        // grouped 5×5 stride-2 layer with 2 of 3 channels per group, two images, odd sizes; two inputs each, taken in
        // turn, so that a Col run or a dx band left unwritten would hold the other input's values.
        var problems = new[]
        {
            new ConvProblem(Conv2dGeometry.Square(3, 16, 7, stride: 2, padding: 3), 2, 45, 39, false, 61),
            new ConvProblem(Conv2dGeometry.Square(3, 16, 7, stride: 2, padding: 3), 2, 45, 39, false, 62),
            new ConvProblem(new Conv2dGeometry(4, 6, (5, 5), (2, 2), (2, 1), (1, 1), 2), 2, 23, 26, false, 63),
            new ConvProblem(new Conv2dGeometry(4, 6, (5, 5), (2, 2), (2, 1), (1, 1), 2), 2, 23, 26, false, 64),
        };
        var data = problems.Select(pr =>
        {
            var (_, wt, _, dy) = pr.Data();
            return (Dy: dy.Cast<float>(), W: wt.Cast<float>());
        }).ToArray();
        var expected = problems.Select((pr, i) => Reference(pr, data[i].Dy, data[i].W)).ToArray();
        Conv2dTuning.PackedInputGradient = true;
        try
        {
            foreach (int threads in new[] { 1, 2, 3, 5 })
                for (int i = 0; i < problems.Length; i++)
                {
                    var pr = problems[i];
                    var dx = Compute.WithThreads(threads, () => Conv2d.BackwardInput(data[i].Dy, data[i].W, pr.G, pr.H, pr.W));
                    for (int j = 0; j < dx.Length; j++)
                        Assert.True(BitConverter.SingleToInt32Bits(expected[i][j]) == BitConverter.SingleToInt32Bits(dx.Data[j]),
                            $"dx[{j}] = {dx.Data[j]:R}, expected {expected[i][j]:R}, {threads} threads, {pr}");
                }
        }
        finally
        {
            Conv2dTuning.PackedInputGradient = null;
        }
    }

    /// <summary>
    /// Eqs. (conv.11)–(conv.12) for small grids in scalar T: per (image, chunk of 256 positions) an FMA chain over the
    /// positions increasing from +0 (the padding's zeros included), the chunk sums added in (image, chunk) order.
    /// </summary>
    private static T[] WeightGradientReference<T>(ConvProblem pr, DenseTensor<T> x, DenseTensor<T> dy)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = pr.G;
        var (ho, wo) = pr.Out;
        int og = g.OutPerGroup, ig = g.InPerGroup, kh = g.Kernel.H, kw = g.Kernel.W, p = ho * wo;
        var dw = new T[g.OutChannels * ig * kh * kw];
        for (int grp = 0; grp < g.Groups; grp++)
        for (int o = 0; o < og; o++)
        for (int c = 0; c < ig; c++)
        for (int pp = 0; pp < kh; pp++)
        for (int qq = 0; qq < kw; qq++)
        {
            T total = T.Zero;
            bool first = true;
            for (int n = 0; n < pr.N; n++)
            for (int j0 = 0; j0 < p; j0 += Conv2dTuning.WeightGradChunk)
            {
                T sum = T.Zero;
                for (int j = j0; j < Math.Min(p, j0 + Conv2dTuning.WeightGradChunk); j++)
                {
                    int oh = j / wo, ow = j % wo;
                    int ih = oh * g.Stride.H + pp * g.Dilation.H - g.Padding.H, iw = ow * g.Stride.W + qq * g.Dilation.W - g.Padding.W;
                    T xv = (uint)ih < (uint)pr.H && (uint)iw < (uint)pr.W ? x[n, grp * ig + c, ih, iw] : T.Zero;
                    sum = T.FusedMultiplyAdd(dy[n, grp * og + o, oh, ow], xv, sum);
                }
                total = first ? sum : total + sum;
                first = false;
            }
            dw[(((grp * og + o) * ig + c) * kh + pp) * kw + qq] = total;
        }
        return dw;
    }

    /// <summary>
    /// The small-grid (packed) weight gradient against <see cref="WeightGradientReference{T}"/> bit for bit, for 1, 2, 3
    /// and 5 threads on the machine's widest path and the portable one, with inputs in turn (a block left unpacked would
    /// hold the other input's rows). The shapes: two images of 3 position chunks each with two groups of 7 rows, K = 72
    /// (partial row tiles: the products go through the scratch tile); a 1×1 layer with 20 rows and K = 300 (partial
    /// row tiles, three column units); 3×3 16→16 over two images of 25 × 27 (K = 144: a whole column unit written
    /// straight into dw; the last 16 columns through the scratch tile where panels are 32 wide (Vector512 float), as
    /// a whole panel elsewhere; chunks of 256, 256 and 163 positions, the last rounded up to 176 for the register
    /// transposes of B on Vector512 float); 3×3 64→16 in two groups of 8 rows over two images (K = 288, written
    /// straight into each chunk's partials); 3×3 32→64 at 7 × 7 (49 positions, one chunk).
    /// </summary>
    [Fact]
    public void PackedWeightGradientHasItsDocumentedOrderForEveryThreadCount()
    {
        var shapes = new[]
        {
            new ConvProblem(Conv2dGeometry.Square(16, 14, 3, padding: 1, groups: 2), 2, 25, 27, false, 71),
            new ConvProblem(Conv2dGeometry.Square(16, 14, 3, padding: 1, groups: 2), 2, 25, 27, false, 72),
            new ConvProblem(Conv2dGeometry.Square(300, 20, 1), 1, 7, 9, false, 73),
            new ConvProblem(Conv2dGeometry.Square(300, 20, 1), 1, 7, 9, false, 74),
            new ConvProblem(Conv2dGeometry.Square(16, 16, 3, padding: 1), 2, 25, 27, false, 75),
            new ConvProblem(Conv2dGeometry.Square(16, 16, 3, padding: 1), 2, 25, 27, false, 76),
            new ConvProblem(Conv2dGeometry.Square(64, 16, 3, padding: 1, groups: 2), 2, 9, 11, false, 77),
            new ConvProblem(Conv2dGeometry.Square(64, 16, 3, padding: 1, groups: 2), 2, 9, 11, false, 78),
            new ConvProblem(Conv2dGeometry.Square(32, 64, 3, padding: 1), 1, 7, 7, false, 79),
            new ConvProblem(Conv2dGeometry.Square(32, 64, 3, padding: 1), 1, 7, 7, false, 80),
        };
        AssertPackedWeightGradient<float>(shapes);
        AssertPackedWeightGradient<double>(shapes);
    }

    private static void AssertPackedWeightGradient<T>(ConvProblem[] shapes) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var data = shapes.Select(pr =>
        {
            var (x, _, _, dy) = pr.Data();
            return (X: x.Cast<T>(), Dy: dy.Cast<T>());
        }).ToArray();
        var reference = shapes.Select((pr, i) => WeightGradientReference(pr, data[i].X, data[i].Dy)).ToArray();
        Conv2dTuning.DirectWeightGradient = false;
        try
        {
            foreach (var path in new[] { SimdWidth.Hardware, SimdPath.Portable }.Distinct())
            foreach (int threads in new[] { 1, 2, 3, 5 })
                for (int i = 0; i < shapes.Length; i++)
                {
                    var pr = shapes[i];
                    var dw = SimdWidth.With(path,
                        () => Compute.WithThreads(threads, () => Conv2d.BackwardWeight(data[i].X, data[i].Dy, pr.G)));
                    // Into a preallocated dw full of NaN: every element written, none accumulated onto.
                    var into = new DenseTensor<T>(pr.G.WeightShape);
                    into.Data.AsSpan().Fill(T.NaN);
                    SimdWidth.With(path, () => Compute.WithThreads(threads, () =>
                    {
                        Conv2dFast<T>.BackwardWeight(data[i].X, data[i].Dy, pr.G, into);
                        return 0;
                    }));
                    foreach (var got in new[] { dw, into })
                        for (int j = 0; j < got.Length; j++)
                        {
                            T want = reference[i][j], have = got.Data[j];
                            Assert.True(want.Equals(have) && T.IsNegative(want) == T.IsNegative(have),
                                $"dw[{j}] = {have:R}, expected {want:R}, {typeof(T).Name}, {path}, {threads} threads, {pr}");
                        }
                }
        }
        finally
        {
            Conv2dTuning.DirectWeightGradient = null;
        }
    }

    [Theory]
    [InlineData(1, 0, 40)]
    [InlineData(16, 0, 32)]
    [InlineData(16, 1, 33)]
    [InlineData(37, 3, 80)]
    [InlineData(50, 2, 101)]
    public void StrideTwoAddTouchesOnlyItsElements(int n, int start, int length)
    {
        // dst[start + 2i] += src[i], once rounded each; every other element untouched bit for bit (NaN, −0, ∞ included).
        var rng = new Random(n * 7 + start);
        var src = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var dst = Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() * 1e3)).ToArray();
        dst[^1] = float.NaN;
        dst[0] = -0f;
        if (length > 2) dst[1] = float.PositiveInfinity;
        if (n > 3) src[3] = float.NegativeInfinity;
        var expected = (float[])dst.Clone();
        for (int i = 0; i < n; i++) expected[start + 2 * i] += src[i];
        Strided.AddStride2<float>(src, dst, start);
        for (int j = 0; j < length; j++)
            Assert.Equal(BitConverter.SingleToInt32Bits(expected[j]), BitConverter.SingleToInt32Bits(dst[j]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Strided.AddStride2<float>(src, new float[start + 2 * n - 2], start));
    }
}
