using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>A random convolution problem: geometry, input size, batch, bias flag and a data seed.</summary>
public sealed record ConvProblem(Conv2dGeometry G, int N, int H, int W, bool Bias, int Seed)
{
    /// <summary>Output size.</summary>
    public (int H, int W) Out => G.OutputSize(H, W);

    /// <summary>x, weight, bias (or null) and dy with uniform(−1, 1) entries.</summary>
    public (DenseTensor<double> X, DenseTensor<double> Wt, DenseTensor<double>? B, DenseTensor<double> Dy) Data()
    {
        var rng = new Random(Seed);
        var (ho, wo) = Out;
        var x = ConvTestData.Uniform(rng, N, G.InChannels, H, W);
        var wt = ConvTestData.Uniform(rng, G.WeightShape);
        var b = Bias ? ConvTestData.Uniform(rng, G.OutChannels) : null;
        var dy = ConvTestData.Uniform(rng, N, G.OutChannels, ho, wo);
        return (x, wt, b, dy);
    }

    /// <inheritdoc />
    public override string ToString() => $"{G} N={N} H={H} W={W} bias={Bias} seed={Seed}";
}

/// <summary>Generators and comparisons for the conv tests.</summary>
public static class ConvTestData
{
    /// <summary>Uniform(−1, 1) entries.</summary>
    public static DenseTensor<double> Uniform(Random rng, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = 2 * rng.NextDouble() - 1;
        return t;
    }

    /// <summary>Elementwise |t|.</summary>
    public static DenseTensor<double> Abs(DenseTensor<double> t)
    {
        var r = t.Clone();
        for (int i = 0; i < r.Length; i++) r.Data[i] = Math.Abs(r.Data[i]);
        return r;
    }

    /// <summary>
    /// Shapes covering every parameter: groups 1–3 or depthwise, channels per group that are not multiples of the
    /// register tile (8 rows) or of the vector width, kernels 1–4 per axis (non-square), stride 1–3, padding 0–2,
    /// dilation 1–2, odd spatial sizes whose output rows cross the 16/32-column micro-panels, batch 1–2, bias on/off.
    /// </summary>
    public static Gen<ConvProblem> Problems { get; } =
        from groups in Gen.Choose(1, 3)
        from depthwise in Gen.Elements(false, false, false, true)
        from igp in Gen.Choose(1, 6)
        from ogp in Gen.Choose(1, 11)
        from kh in Gen.Choose(1, 4)
        from kw in Gen.Choose(1, 4)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from dh in Gen.Choose(1, 2)
        from dw in Gen.Choose(1, 2)
        from ph in Gen.Choose(0, 2)
        from pw in Gen.Choose(0, 2)
        from eh in Gen.Choose(0, 9)
        from ew in Gen.Choose(0, 40)
        from n in Gen.Choose(1, 2)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select Make((groups, depthwise, igp, ogp), (kh, kw, sh, sw), (dh, dw, ph, pw), (eh, ew, n, bias), seed);

    private static ConvProblem Make((int, bool, int, int) shape, (int, int, int, int) kernel, (int, int, int, int) spacing,
        (int, int, int, bool) extra, int seed)
    {
        var (groups, depthwise, igp, ogp) = shape;
        var (kh, kw, sh, sw) = kernel;
        var (dh, dw, ph, pw) = spacing;
        var (eh, ew, n, bias) = extra;
        if (depthwise) { groups = igp; igp = 1; ogp = 1 + ogp % 2; }
        var g = new Conv2dGeometry(groups * igp, groups * ogp, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups);
        int h = Math.Max(1, (kh - 1) * dh + 1 - 2 * ph) + eh, w = Math.Max(1, (kw - 1) * dw + 1 - 2 * pw) + ew;
        return new ConvProblem(g, n, h, w, bias, seed);
    }

    /// <summary>The FsCheck arbitrary of <see cref="Problems"/>.</summary>
    public static Arbitrary<ConvProblem> Arb => FsCheck.Fluent.Arb.From(Problems);

    /// <summary>
    /// Asserts |a − e| ≤ 2·γ(len)·mag per element, γ(n) = (n + 2)·2⁻⁵³, where mag = Σ|terms| of the element: the
    /// standard bound for two summation orders of the same terms (one with FMA, one without).
    /// </summary>
    public static void AssertClose(DenseTensor<double> expected, DenseTensor<double> actual, DenseTensor<double> mag, int len, string what)
    {
        Assert.True(expected.HasShape(actual.Shape), $"{what}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        double gamma = (len + 2) * Math.Pow(2, -53);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = 2 * gamma * mag.Data[i];
            Assert.True(Math.Abs(expected.Data[i] - actual.Data[i]) <= tol,
                $"{what}[{i}]: {actual.Data[i]:R} vs {expected.Data[i]:R} (diff {Math.Abs(expected.Data[i] - actual.Data[i]):E2} > {tol:E2})");
        }
    }
}
