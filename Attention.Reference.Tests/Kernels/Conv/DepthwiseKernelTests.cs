using Attention.Reference.Kernels.Conv;
using Attention.Reference.Kernels;
using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>
/// The depthwise kernel (groups = I = O) computes the dense kernel's documented summation orders with one plane
/// per work unit: it must equal the dense kernel bitwise on every geometry and every path choice, equal the spec
/// kernel within rounding, and be bitwise identical for any thread count and vector width.
/// </summary>
public sealed class DepthwiseKernelTests
{
    /// <summary>Depthwise shapes: 1–7 channels, kernels 1–5 per axis, stride 1–3, padding 0–2, dilation 1–2, batch 1–2.</summary>
    private static readonly Gen<ConvProblem> Problems =
        from c in Gen.Choose(1, 7)
        from kh in Gen.Choose(1, 5)
        from kw in Gen.Choose(1, 5)
        from sh in Gen.Choose(1, 3)
        from sw in Gen.Choose(1, 3)
        from dh in Gen.Choose(1, 2)
        from dw in Gen.Choose(1, 2)
        from ph in Gen.Choose(0, 2)
        from pw in Gen.Choose(0, 2)
        from eh in Gen.Choose(0, 12)
        from ew in Gen.Choose(0, 45)
        from n in Gen.Choose(1, 2)
        from bias in Gen.Elements(true, false)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select Make(c, (kh, kw), (sh, sw), (ph, pw), (dh, dw), (eh, ew), n, bias, seed);

    private static ConvProblem Make(int c, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d,
        (int H, int W) extra, int n, bool bias, int seed)
    {
        int h = Math.Max(1, (k.H - 1) * d.H + 1 - 2 * p.H) + extra.H, w = Math.Max(1, (k.W - 1) * d.W + 1 - 2 * p.W) + extra.W;
        return new ConvProblem(new Conv2dGeometry(c, c, k, s, p, d, c), n, h, w, bias, seed);
    }

    private static ConvProblem Dw(int c, int k, int stride, int size, int n = 1, bool bias = true, int seed = 1) =>
        new(Conv2dGeometry.Square(c, c, k, stride: stride, padding: k / 2, groups: c), n, size, size, bias, seed);

    /// <summary>The MobileNet shapes: 3x3 and 5x5, stride 1 and 2, grids on both sides of the weight gradient's switch.</summary>
    private static readonly ConvProblem[] Mobile =
    [
        Dw(5, 3, 1, 56), Dw(4, 3, 2, 112, seed: 2), Dw(6, 5, 1, 14, n: 2, seed: 3), Dw(3, 5, 2, 28, bias: false, seed: 4),
        Dw(7, 3, 1, 7, seed: 5), Dw(2, 3, 2, 9, n: 2, seed: 6),
        new(new Conv2dGeometry(3, 3, (3, 5), (2, 1), (1, 2), (2, 1), 3), 2, 31, 40, true, 7),
        // Whole blocks of 8 and 16 channels (the channels-in-lanes form's register transposes) and a partial one after.
        Dw(20, 5, 2, 14, n: 2, seed: 8), Dw(24, 3, 1, 7, bias: false, seed: 9), Dw(16, 3, 2, 11, seed: 10),
    ];

    /// <summary>Every kernel output of one problem, for each way the dense kernel can be steered.</summary>
    private static IEnumerable<(string Path, TensorSet<T> Set)> Variants<T>(ConvProblem pr) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        foreach (bool? packedDx in new bool?[] { null, false })
        foreach (bool? directDw in new bool?[] { null, true, false })
        // The forward's two forms (planes, channels in lanes), each forced once; the gradients' variants with the rule.
        foreach (bool? lanes in packedDx is null && directDw is null ? new bool?[] { false, true } : [null])
        {
            Conv2dTuning.PackedInputGradient = packedDx;
            Conv2dTuning.DirectWeightGradient = directDw;
            Conv2dTuning.DepthwiseLanes = lanes;
            try
            {
                yield return ($"packedDx={packedDx?.ToString() ?? "auto"} directDw={directDw?.ToString() ?? "auto"} lanes={lanes?.ToString() ?? "auto"}",
                    ConvKernelTests.AllFour<T>(pr));
            }
            finally
            {
                Conv2dTuning.PackedInputGradient = null;
                Conv2dTuning.DirectWeightGradient = null;
                Conv2dTuning.DepthwiseLanes = null;
            }
        }
    }

    private static void AssertEqualsDense<T>(ConvProblem pr) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var fast = Variants<T>(pr).ToList();
        List<(string Path, TensorSet<T> Set)> dense;
        Conv2dTuning.Depthwise = false;
        try
        {
            dense = Variants<T>(pr).ToList();
        }
        finally
        {
            Conv2dTuning.Depthwise = null;
        }
        for (int i = 0; i < fast.Count; i++)
            foreach (var (name, t) in dense[i].Set)
                Bitwise.AssertIdentical(t, fast[i].Set.Get(name), $"{name} ({typeof(T).Name}, {fast[i].Path}) of {pr}");
    }

    [Fact]
    public void DepthwiseEqualsTheDenseKernelBitwiseOnMobileNetShapes()
    {
        foreach (var pr in Mobile)
        {
            AssertEqualsDense<double>(pr);
            AssertEqualsDense<float>(pr);
        }
    }

    [Property(MaxTest = 60)]
    public Property DepthwiseEqualsTheDenseKernelBitwiseOnGeneratedShapes() => Prop.ForAll(Problems.ToArbitrary(), pr =>
    {
        AssertEqualsDense<double>(pr);
        AssertEqualsDense<float>(pr);
    });

    [Property(MaxTest = 40)]
    public Property DepthwiseEqualsTheSpecKernel() =>
        Prop.ForAll(Problems.ToArbitrary(), pr => ConvKernelTests.CheckFastAgainstSpec(pr));

    [Fact]
    public void DepthwiseEqualsTheSpecKernelOnMobileNetShapes()
    {
        foreach (var pr in Mobile) ConvKernelTests.CheckFastAgainstSpec(pr);
    }

    [Fact]
    public void DepthwiseIsBitwiseIdenticalForAnyThreadCount()
    {
        foreach (var pr in Mobile)
        {
            Bitwise.AssertSameForThreadCounts(() => ConvKernelTests.AllFour<double>(pr), 1, 2, 3, 8);
            Bitwise.AssertSameForThreadCounts(() => ConvKernelTests.AllFour<float>(pr), 1, 2, 3, 8);
        }
    }

    [Fact]
    public void DepthwiseIsBitwiseIdenticalForEveryVectorWidth()
    {
        var saved = SimdWidth.Forced;
        try
        {
            foreach (var pr in Mobile)
            {
                SimdWidth.Forced = SimdPath.Vector512;
                var d512 = ConvKernelTests.AllFour<double>(pr);
                var f512 = ConvKernelTests.AllFour<float>(pr);
                foreach (var path in new[] { SimdPath.Vector256, SimdPath.Portable })
                {
                    SimdWidth.Forced = path;
                    var d = ConvKernelTests.AllFour<double>(pr);
                    var f = ConvKernelTests.AllFour<float>(pr);
                    foreach (var (name, t) in d512) Bitwise.AssertIdentical(t, d.Get(name), $"{name} float64 {path} vs Vector512, {pr}");
                    foreach (var (name, t) in f512) Bitwise.AssertIdentical(t, f.Get(name), $"{name} float32 {path} vs Vector512, {pr}");
                }
            }
        }
        finally
        {
            SimdWidth.Forced = saved;
        }
    }

    [Property(MaxTest = 200)]
    public Property StridedGatherAndScatterMoveExactlyTheNamedElements() => Prop.ForAll(
        Gen.Choose(1, 3).SelectMany(stride => Gen.Choose(0, 70).SelectMany(n => Gen.Choose(0, 5).SelectMany(start =>
            Gen.Choose(0, 3).Select(extra => (stride, n, start, extra))))).ToArbitrary(),
        c =>
        {
            var (stride, n, start, extra) = c;
            int len = n == 0 ? start : start + (n - 1) * stride + 1 + extra;
            var src = Enumerable.Range(0, len).Select(i => 1.5f * i - 7).ToArray();
            var got = new float[n];
            Attention.Reference.Kernels.Strided.Gather<float>(src, start, stride, got);
            for (int i = 0; i < n; i++) Assert.Equal(src[start + i * stride], got[i]);
            var gotD = new double[n];
            Attention.Reference.Kernels.Strided.Gather<double>(src.Select(v => (double)v).ToArray(), start, stride, gotD);
            for (int i = 0; i < n; i++) Assert.Equal(src[start + i * stride], gotD[i]);
            // Scatter into a canvas: the named elements change, every other one stays.
            var canvas = Enumerable.Range(0, len).Select(i => -1f - i).ToArray();
            var expected = (float[])canvas.Clone();
            var vals = Enumerable.Range(0, n).Select(i => 100f + i).ToArray();
            for (int i = 0; i < n; i++) expected[start + i * stride] = vals[i];
            Attention.Reference.Kernels.Strided.Scatter<float>(vals, canvas, start, stride);
            Assert.Equal(expected, canvas);
        });

    [Fact]
    public void DepthwisePreallocatedOutputsAreOverwrittenAndWarmCallsAllocateNothing()
    {
        foreach (var pr in new[] { Mobile[1], Mobile[3] })
        {
            var (x, wt, b, dy) = pr.Data();
            var (ho, wo) = pr.Out;
            var y = new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo);
            var dx = new DenseTensor<double>(pr.N, pr.G.InChannels, pr.H, pr.W);
            var dw = new DenseTensor<double>(pr.G.WeightShape);
            foreach (var t in new[] { y, dx, dw }) Array.Fill(t.Data, double.NaN);
            long allocated = Compute.WithThreads(1, () =>
            {
                Conv2d.Forward(x, wt, b, pr.G, y);
                Conv2d.BackwardInput(dy, wt, pr.G, dx);
                Conv2d.BackwardWeight(x, dy, pr.G, dw);
                // The least of three warm rounds: a call that allocates allocates in every round, while a one-off
                // runtime allocation on this thread (seen once in a first run after a build, under load) does not.
                long least = long.MaxValue;
                for (int round = 0; round < 3; round++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    Conv2d.Forward(x, wt, b, pr.G, y);
                    Conv2d.BackwardInput(dy, wt, pr.G, dx);
                    Conv2d.BackwardWeight(x, dy, pr.G, dw);
                    least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
                }
                return least;
            });
            Bitwise.AssertIdentical(Conv2d.Forward(x, wt, b, pr.G), y, "y");
            Bitwise.AssertIdentical(Conv2d.BackwardInput(dy, wt, pr.G, pr.H, pr.W), dx, "x.grad");
            Bitwise.AssertIdentical(Conv2d.BackwardWeight(x, dy, pr.G), dw, "weight.grad");
            // Workspaces, tap and phase tables are per thread and reused; the loops run struct bodies.
            Assert.True(allocated == 0, $"a warm depthwise forward + backward allocated {allocated} bytes for {pr}");
        }
    }
}
