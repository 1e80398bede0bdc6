using Attention.Reference.Kernels;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>The zero-padded (stride 1) and phase-split planes the dense and depthwise kernels read.</summary>
public sealed class PhasesTests
{
    /// <summary>The padded plane element by element: x where it falls inside, +0 elsewhere.</summary>
    private static double Expected(double[] x, Phases l, int a, int b, int u, int v)
    {
        int ih = u * l.Sh + a - l.Ph, iw = v * l.Sw + b - l.Pw;
        return ih >= 0 && ih < l.H && iw >= 0 && iw < l.W ? x[ih * l.W + iw] : 0.0;
    }

    [Theory]
    [InlineData(1, 1, 0, 0)]
    [InlineData(3, 5, 1, 1)]
    [InlineData(56, 56, 1, 1)]
    [InlineData(7, 7, 3, 3)]
    [InlineData(14, 9, 2, 0)]
    [InlineData(2, 17, 0, 2)]
    [InlineData(33, 8, 1, 3)]
    [InlineData(5, 40, 4, 1)]
    [InlineData(6, 47, 1, 1)]
    [InlineData(4, 48, 2, 2)]
    [InlineData(14, 14, 1, 1)]
    public void EveryElementOfTheStrideOnePaddedPlaneIsWritten(int h, int w, int ph, int pw)
    {
        // The destination starts as NaN: an element the fill skipped would stay NaN (and −0 would differ in bits).
        var rng = new Random(h * 100 + w);
        var x = Enumerable.Range(0, h * w).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var l = Phases.Of(h, w, (1, 1), (ph, pw));
        var d = Enumerable.Repeat(double.NaN, l.Total).ToArray();
        var f = Enumerable.Repeat(float.NaN, l.Total).ToArray();
        l.Fill<double>(x, d);
        l.Fill<float>(x.Select(v => (float)v).ToArray(), f);
        for (int u = 0; u < l.Hq; u++)
            for (int v = 0; v < l.Wq; v++)
            {
                double e = Expected(x, l, 0, 0, u, v);
                Assert.Equal(BitConverter.DoubleToInt64Bits(e), BitConverter.DoubleToInt64Bits(d[u * l.Wq + v]));
                Assert.Equal(BitConverter.SingleToInt32Bits((float)e), BitConverter.SingleToInt32Bits(f[u * l.Wq + v]));
            }
    }

    [Theory]
    [InlineData(9, 9, 2, 2, 1, 1)]
    [InlineData(224, 224, 2, 2, 3, 3)]
    [InlineData(10, 13, 3, 2, 1, 0)]
    public void StridedPlanesHoldEachPhase(int h, int w, int sh, int sw, int ph, int pw)
    {
        var rng = new Random(h + w);
        var x = Enumerable.Range(0, h * w).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var l = Phases.Of(h, w, (sh, sw), (ph, pw));
        var d = Enumerable.Repeat(double.NaN, l.Total).ToArray();
        l.Fill<double>(x, d);
        for (int a = 0; a < sh; a++)
            for (int b = 0; b < sw; b++)
                for (int u = 0; u < l.Hq; u++)
                    for (int v = 0; v < l.Wq; v++)
                        Assert.Equal(BitConverter.DoubleToInt64Bits(Expected(x, l, a, b, u, v)),
                            BitConverter.DoubleToInt64Bits(d[(a * sw + b) * l.Plane + u * l.Wq + v]));
        // The first phase alone (a 1×1 unpadded kernel's use) leaves the other planes untouched.
        var one = Enumerable.Repeat(double.NaN, l.Total).ToArray();
        l.Fill<double>(x, one, 1);
        Assert.Equal(d.AsSpan(0, l.Plane).ToArray(), one.AsSpan(0, l.Plane).ToArray());
        Assert.All(one.Skip(l.Plane), v => Assert.True(double.IsNaN(v)));
    }
    [Theory]
    [InlineData(9, 9, 2, 2, 1, 1)]
    [InlineData(224, 224, 2, 2, 3, 3)]
    [InlineData(10, 13, 3, 2, 1, 0)]
    [InlineData(65, 66, 2, 2, 2, 2)]
    [InlineData(40, 67, 2, 2, 0, 0)]
    [InlineData(17, 100, 1, 2, 1, 3)]
    [InlineData(12, 35, 2, 3, 1, 1)]
    public void StridedFloatPlanesWrittenInBandsHoldEachPhase(int h, int w, int sh, int sw, int ph, int pw)
    {
        // Float (sw = 2: both column phases from one pass over each row, by permutes where AVX-512 is present), as the
        // conv writes it: whole, or in bands of rows (here written last band first), for the first 1, 2 or all phases.
        var rng = new Random(h * w + pw);
        var x = Enumerable.Range(0, h * w).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var xd = x.Select(v => (double)v).ToArray();
        var l = Phases.Of(h, w, (sh, sw), (ph, pw));
        foreach (int phases in new[] { 1, 2, sh * sw }.Distinct())
        {
            var whole = Enumerable.Repeat(float.NaN, l.Total).ToArray();
            var banded = Enumerable.Repeat(float.NaN, l.Total).ToArray();
            l.Fill<float>(x, whole, phases);
            int bands = 3, rows = (l.Hq + bands - 1) / bands;
            for (int band = bands - 1; band >= 0; band--)
                l.FillRows<float>(x, banded, phases, Math.Min(l.Hq, band * rows), Math.Min(l.Hq, (band + 1) * rows));
            for (int a = 0; a < sh; a++)
                for (int b = 0; b < sw; b++)
                {
                    int at = (a * sw + b) * l.Plane;
                    for (int i = 0; i < l.Plane; i++)
                    {
                        if (a * sw + b >= phases)
                        {
                            Assert.True(float.IsNaN(whole[at + i]) && float.IsNaN(banded[at + i]));
                            continue;
                        }
                        int e = BitConverter.SingleToInt32Bits((float)Expected(xd, l, a, b, i / l.Wq, i % l.Wq));
                        Assert.Equal(e, BitConverter.SingleToInt32Bits(whole[at + i]));
                        Assert.Equal(e, BitConverter.SingleToInt32Bits(banded[at + i]));
                    }
                }
        }
    }

    [Theory]
    [InlineData(64, 0, 16, 16)]
    [InlineData(75, 1, 37, 36)]
    [InlineData(75, 2, 36, 36)]
    [InlineData(40, 3, 5, 9)]
    [InlineData(33, 0, 17, 16)]
    [InlineData(100, 4, 0, 48)]
    public void DeinterleaveTakesTheEvenAndOddElements(int length, int start, int evens, int odds)
    {
        var src = Enumerable.Range(0, length).Select(i => i + 0.5f).ToArray();
        var even = Enumerable.Repeat(float.NaN, evens + 1).ToArray();
        var odd = Enumerable.Repeat(float.NaN, odds + 1).ToArray();
        Strided.Deinterleave<float>(src, start, even.AsSpan(0, evens), odd.AsSpan(0, odds));
        for (int i = 0; i < evens; i++) Assert.Equal(src[start + 2 * i], even[i]);
        for (int i = 0; i < odds; i++) Assert.Equal(src[start + 2 * i + 1], odd[i]);
        Assert.True(float.IsNaN(even[evens]) && float.IsNaN(odd[odds])); // nothing past either destination
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Strided.Deinterleave<float>(src, start, new float[evens], new float[(length - start) / 2 + 1]));
    }
}
