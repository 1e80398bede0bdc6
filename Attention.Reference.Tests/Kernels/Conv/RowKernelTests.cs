using Attention.Reference.Kernels.Conv;
using Attention.Reference.Kernels;
using Attention.Reference.Layers;
using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>
/// The channels-in-lanes row kernel of the direct forward (Kernels/Conv/Conv2dFast.Rows.cs) against the grid kernel: the same
/// FMA chain per element, so bitwise equal, on every path, thread count, epilogue and weight cache.
/// </summary>
public sealed class RowKernelTests
{
    /// <summary>ResNet-like shapes scaled down: several channel blocks and a partial one, widths 7, 14 and not multiples of 7.</summary>
    private static readonly ConvProblem[] Shapes =
    [
        new(Conv2dGeometry.Square(24, 70, 3, padding: 1), 1, 7, 7, true, 31),
        new(Conv2dGeometry.Square(20, 64, 3, padding: 1), 2, 14, 14, false, 32),
        new(Conv2dGeometry.Square(40, 33, 1), 1, 9, 15, true, 33),
        new(Conv2dGeometry.Square(16, 40, 3, stride: 2, padding: 1), 1, 15, 13, true, 34),
        new(Conv2dGeometry.Square(32, 64, 1, stride: 2), 1, 14, 14, false, 35),
        new(Conv2dGeometry.Square(12, 96, 3, padding: 1, groups: 2), 1, 8, 29, true, 36),
        new(new Conv2dGeometry(9, 50, (2, 5), (1, 2), (1, 2), (2, 1), 1), 2, 11, 23, true, 37),
        // 112 tiles of 7: four units per channel block, the last one partial, each storing 16 finished positions at a
        // time during its last reduction chunk (K = 144: one chunk).
        new(Conv2dGeometry.Square(16, 64, 3, padding: 1), 1, 28, 28, true, 38),
        // K = 288 in chunks of 128: the interleaved stores run in the third chunk only.
        new(Conv2dGeometry.Square(32, 64, 3, padding: 1), 1, 28, 28, true, 39),
    ];

    /// <summary>y (with bias and a non-idempotent epilogue) and the stride-1 input gradient, under a forced kernel choice.</summary>
    private static TensorSet<T> Run<T>(ConvProblem pr, bool rows) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var (x, wt, b, dy) = pr.Data();
        var (xt, wtt, bt, dyt) = (x.Cast<T>(), wt.Cast<T>(), b?.Cast<T>(), dy.Cast<T>());
        var (ho, wo) = pr.Out;
        var set = new TensorSet<T>();
        Conv2dTuning.RowKernel = rows;
        try
        {
            set.Set("y", Conv2d.Forward(xt, wtt, bt, pr.G));
            var ye = new DenseTensor<T>(pr.N, pr.G.OutChannels, ho, wo);
            Conv2d.Forward(xt, wtt, bt, pr.G, ye, new AffineEpilogue<T>());
            set.Set("y.epilogue", ye);
            // ReLU, which the row kernel's register-transposing copy-out applies in its stores (with the bias), and a
            // NaN in the input reaching some outputs through both.
            var yr = new DenseTensor<T>(pr.N, pr.G.OutChannels, ho, wo);
            Conv2d.Forward(xt, wtt, bt, pr.G, yr, Attention.Reference.Ops.ActivationEpilogue<T, Attention.Reference.Ops.ReluOp<T>>.Instance);
            set.Set("y.relu", yr);
            var xn = xt.Clone();
            xn.Data[xn.Length / 3] = T.NaN;
            var yn = new DenseTensor<T>(pr.N, pr.G.OutChannels, ho, wo);
            Conv2d.Forward(xn, wtt, bt, pr.G, yn, Attention.Reference.Ops.ActivationEpilogue<T, Attention.Reference.Ops.ReluOp<T>>.Instance);
            set.Set("y.relu.nan", yn);
            set.Set("x.grad", Conv2d.BackwardInput(dyt, wtt, pr.G, pr.H, pr.W));
        }
        finally
        {
            Conv2dTuning.RowKernel = null;
        }
        return set;
    }

    private static void AssertRowsEqualGrid<T>(ConvProblem pr) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var grid = Run<T>(pr, false);
        var rows = Run<T>(pr, true);
        foreach (var (name, t) in grid) Bitwise.AssertIdentical(t, rows.Get(name), $"{name} ({typeof(T).Name}) rows vs grid of {pr}");
    }

    [Fact]
    public void RowKernelEqualsTheGridKernelBitwiseOnNetworkLikeShapes()
    {
        foreach (var pr in Shapes)
        {
            AssertRowsEqualGrid<float>(pr);
            AssertRowsEqualGrid<double>(pr);
        }
    }

    [Property(MaxTest = 60)]
    public Property RowKernelEqualsTheGridKernelBitwiseOnGeneratedShapes() => Prop.ForAll(ConvTestData.Arb, pr =>
    {
        AssertRowsEqualGrid<float>(pr);
        AssertRowsEqualGrid<double>(pr);
    });

    [Fact]
    public void RowKernelIsBitwiseIdenticalForEveryVectorWidthAndThreadCount()
    {
        var saved = SimdWidth.Forced;
        try
        {
            foreach (var pr in Shapes[..3])
            {
                SimdWidth.Forced = SimdPath.Vector512;
                var reference = Run<float>(pr, true);
                foreach (var path in new[] { SimdPath.Vector256, SimdPath.Portable })
                {
                    SimdWidth.Forced = path;
                    var other = Run<float>(pr, true);
                    foreach (var (name, t) in reference) Bitwise.AssertIdentical(t, other.Get(name), $"{name} {path} vs Vector512 of {pr}");
                }
                SimdWidth.Forced = saved;
                Bitwise.AssertSameForThreadCounts(() => Run<double>(pr, true), 2, 3);
            }
        }
        finally
        {
            SimdWidth.Forced = saved;
        }
    }

    [Fact]
    public void StemLikeRowsAreBitwiseIdenticalForEveryThreadCount()
    {
        // Three input channels at stride 2 (the ResNet stem, scaled): the phase planes are written in bands of rows,
        // band-major, and the units run position-major (8 units: 4 position blocks × 2 channel blocks, K = 147 in one
        // chunk); the band count follows the thread count, the bits must not.
        // Two inputs taken in turn, so that a band left unwritten would hold the other input's values, not the same.
        var g = Conv2dGeometry.Square(3, 64, 7, stride: 2, padding: 3);
        var problems = new[] { new ConvProblem(g, 1, 56, 56, true, 40), new ConvProblem(g, 1, 56, 56, true, 41) };
        var reference = problems.Select(pr => Compute.WithThreads(1, () => Run<float>(pr, true))).ToArray();
        foreach (int threads in new[] { 2, 3, 5 })
            for (int i = 0; i < problems.Length; i++)
            {
                var other = Compute.WithThreads(threads, () => Run<float>(problems[i], true));
                foreach (var (name, t) in reference[i])
                    Bitwise.AssertIdentical(t, other.Get(name), $"{name} with {threads} threads vs 1 of {problems[i]}");
            }
        AssertRowsEqualGrid<float>(problems[0]);
        Bitwise.AssertSameForThreadCounts(() => Run<double>(problems[1], true), 2, 3);
    }

    [Fact]
    public void CachedWeightPackingIsReusedAndMatchesTheUncachedKernel()
    {
        var pr = Shapes[0];
        var (x, wt, b, _) = pr.Data();
        var (ho, wo) = pr.Out;
        var expected = Run<double>(pr, false).Get("y");
        var pack = new ConvWeightPack();
        var saved = SimdWidth.Forced;
        Conv2dTuning.RowKernel = true;
        try
        {
            for (int call = 0; call < 2; call++)
            {
                var y = new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo);
                Conv2d.Forward(x, wt, b, pr.G, y, null, pack);
                Bitwise.AssertIdentical(expected, y, $"cached call {call}");
                Assert.NotNull(pack.Data);
            }
            var first = pack.Data;
            SimdWidth.Forced = SimdPath.Vector512;
            Conv2d.Forward(x, wt, b, pr.G, new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo), null, pack);
            var wide = pack.Data;
            // A narrower path packs for its own lane count instead of reading the other layout.
            SimdWidth.Forced = SimdPath.Vector256;
            var y256 = new DenseTensor<double>(pr.N, pr.G.OutChannels, ho, wo);
            Conv2d.Forward(x, wt, b, pr.G, y256, null, pack);
            Bitwise.AssertIdentical(expected, y256, "Vector256 after a Vector512 packing");
            Assert.NotSame(wide, pack.Data);
            Assert.Equal(8, pack.Lanes); // two Vector256<double>
            Assert.True(first is not null);
        }
        finally
        {
            Conv2dTuning.RowKernel = null;
            SimdWidth.Forced = saved;
        }
    }

    [Fact]
    public void RowKernelIsChosenWhereTheGridWastesProducts()
    {
        // ResNet-50 layer4 3x3 (49 outputs on 64 grid columns) and layer3 (196 on 224): rows when the weights are cached
        // or reused over enough positions; never on a plane the grid covers exactly, for short reductions; on Vector256 see below.
        Assert.True(Rows(SimdPath.Vector512, 512, 4608, 1, 7, 7, 9, prepacked: true));
        Assert.False(Rows(SimdPath.Vector512, 512, 4608, 1, 7, 7, 9, prepacked: false));
        Assert.True(Rows(SimdPath.Vector512, 256, 2304, 1, 14, 14, 16, prepacked: true));
        Assert.True(Rows(SimdPath.Vector512, 128, 1152, 1, 28, 28, 30, prepacked: false));
        Assert.False(Rows(SimdPath.Vector512, 64, 256, 1, 56, 56, 56, prepacked: true));
        Assert.False(Rows(SimdPath.Vector512, 64, 147, 1, 112, 112, 115, prepacked: true));
        // A 3x3 kernel at 56×56 (3 % grid waste) and the 7×7 stem: the row kernel, prepacked or not; grouped with 4
        // channels per group, or a 3-channel 3x3 stem (K = 27): not.
        Assert.True(Rows(SimdPath.Vector512, 64, 576, 1, 56, 56, 58, prepacked: true, spatial: true));
        Assert.True(Rows(SimdPath.Vector512, 64, 576, 1, 56, 56, 58, prepacked: false, spatial: true));
        Assert.False(Rows(SimdPath.Vector512, 4, 288, 1, 56, 56, 58, prepacked: true, spatial: true));
        Assert.True(Rows(SimdPath.Vector512, 64, 147, 1, 112, 112, 115, prepacked: true, spatial: true));
        Assert.False(Rows(SimdPath.Vector512, 32, 27, 1, 112, 112, 113, prepacked: true, spatial: true));
        // Vector256 (16 registers, 7 positions as 4 + 3): kept packings only; a 1×1 kernel only where the grid wastes a
        // fifth of its products (7 × 7: 49 of 64 columns), not at 14 × 14 (196 of 208), where the grid measured faster.
        Assert.True(Rows(SimdPath.Vector256, 2048, 512, 1, 7, 7, 7, prepacked: true));
        Assert.False(Rows(SimdPath.Vector256, 2048, 512, 1, 7, 7, 7, prepacked: false));
        Assert.False(Rows(SimdPath.Vector256, 256, 1024, 1, 14, 14, 14, prepacked: true));
        Assert.True(Rows(SimdPath.Vector256, 64, 147, 1, 112, 112, 115, prepacked: true, spatial: true));
        Assert.False(Rows(SimdPath.Portable, 2048, 512, 1, 7, 7, 7, prepacked: true));
    }
    private static bool Rows(SimdPath path, int og, int k, int n, int ho, int wo, int wq, bool prepacked, bool spatial = false) =>
        ConvDispatch.Rows<float>(path, og, k, n, ho, wo, wq, prepacked, spatial, fastPack: false);


    [Fact]
    public void PointwiseInputReadInPlaceEqualsThePaddedCopyBitwise()
    {
        // Planes of 1, 31, 32, 33, 64 + 5 and 14 × 14 positions (no whole panel, exact panels, panels and a tail), groups, batch 2.
        var shapes = new ConvProblem[]
        {
            new(Conv2dGeometry.Square(5, 7, 1), 2, 1, 1, true, 41),
            new(Conv2dGeometry.Square(6, 9, 1), 1, 1, 31, false, 42),
            new(Conv2dGeometry.Square(8, 12, 1, groups: 2), 2, 4, 8, true, 43),
            new(Conv2dGeometry.Square(3, 17, 1), 2, 3, 11, true, 44),
            new(Conv2dGeometry.Square(20, 70, 1), 1, 3, 23, false, 45),
            new(Conv2dGeometry.Square(64, 40, 1), 2, 14, 14, true, 46),
        };
        foreach (var pr in shapes)
        {
            foreach (var path in new SimdPath?[] { null, SimdPath.Vector256, SimdPath.Portable })
            {
                var saved = SimdWidth.Forced;
                SimdWidth.Forced = path ?? saved;
                try
                {
                    var inPlace = Run<float>(pr, false);
                    Conv2dTuning.PointwiseInPlace = false;
                    var copied = Run<float>(pr, false);
                    foreach (var (name, t) in copied) Bitwise.AssertIdentical(t, inPlace.Get(name), $"{name} in place vs copied ({path}) of {pr}");
                    Conv2dTuning.PointwiseInPlace = null;
                    var d = Run<double>(pr, false);
                    Conv2dTuning.PointwiseInPlace = false;
                    var dc = Run<double>(pr, false);
                    foreach (var (name, t) in dc) Bitwise.AssertIdentical(t, d.Get(name), $"{name} float64 in place vs copied ({path}) of {pr}");
                }
                finally
                {
                    Conv2dTuning.PointwiseInPlace = null;
                    SimdWidth.Forced = saved;
                }
            }
        }
    }

    [Fact]
    public void PointwiseWeightGradientReadInPlaceEqualsThePaddedCopyBitwise()
    {
        // The direct weight gradient reads a 1×1 stride-1 unpadded layer's x and dY in place when its positions fill
        // whole lane vectors (16 float, 8 double): 16, 64 and 256 positions, groups, batch 3, a NaN and an ∞ in x;
        // 14 × 14 (not whole vectors in float: copied either way).
        var shapes = new ConvProblem[]
        {
            new(Conv2dGeometry.Square(5, 7, 1), 3, 4, 4, false, 51),
            new(Conv2dGeometry.Square(12, 20, 1, groups: 2), 2, 8, 8, false, 52),
            new(Conv2dGeometry.Square(40, 24, 1), 1, 16, 16, false, 53),
            new(Conv2dGeometry.Square(16, 8, 1), 2, 14, 14, false, 54),
        };
        Conv2dTuning.DirectWeightGradient = true;
        try
        {
            foreach (var pr in shapes)
            foreach (var path in new SimdPath?[] { null, SimdPath.Vector256, SimdPath.Portable })
            {
                var saved = SimdWidth.Forced;
                SimdWidth.Forced = path ?? saved;
                try
                {
                    var (x, _, _, dy) = pr.Data();
                    x.Data[3] = double.NaN;
                    x.Data[x.Length / 2] = double.PositiveInfinity;
                    var (xf, dyf) = (x.Cast<float>(), dy.Cast<float>());
                    var inPlace = Conv2d.BackwardWeight(xf, dyf, pr.G);
                    var inPlace64 = Conv2d.BackwardWeight(x, dy, pr.G);
                    Conv2dTuning.PointwiseInPlace = false;
                    Bitwise.AssertIdentical(Conv2d.BackwardWeight(xf, dyf, pr.G), inPlace, $"weight.grad in place vs copied ({path}) of {pr}");
                    Bitwise.AssertIdentical(Conv2d.BackwardWeight(x, dy, pr.G), inPlace64, $"float64 weight.grad in place vs copied ({path}) of {pr}");
                }
                finally
                {
                    Conv2dTuning.PointwiseInPlace = null;
                    SimdWidth.Forced = saved;
                }
            }
        }
        finally
        {
            Conv2dTuning.DirectWeightGradient = null;
        }
    }

    /// <summary>y ← 2y + 1: applying it twice, or skipping an element, changes the result.</summary>
    private sealed class AffineEpilogue<T> : IConvEpilogue<T> where T : System.Numerics.IFloatingPointIeee754<T>
    {
        public void Apply(Span<T> values)
        {
            for (int i = 0; i < values.Length; i++) values[i] = values[i] + values[i] + T.One;
        }
    }

    [SkippableFact]
    public void RegisterTransposeMovesEveryElementToItsMirror()
    {
        Skip.IfNot(System.Runtime.Intrinsics.X86.Avx512F.IsSupported,
            "the register transpose is the Vector512 copy-out's (AVX-512); this CPU has no AVX-512, so it never runs here");
        var src = new float[16 * 40];
        var dst = new float[16 * 37 + 5];
        for (int i = 0; i < src.Length; i++) src[i] = i + 0.5f;
        Conv2dFast<float>.Transpose16(ref src[0], 40, ref dst[0], 37);
        for (int r = 0; r < 16; r++)
            for (int j = 0; j < 16; j++) Assert.Equal(src[r * 40 + j], dst[j * 37 + r]);
    }
}
