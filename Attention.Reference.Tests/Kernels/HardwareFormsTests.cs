using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Ops;
using Attention.Reference.Tests.Kernels.Conv;

namespace Attention.Reference.Tests.Kernels;

/// <summary>
/// The instruction-set-specific data-movement forms (AVX-512 permutes, register transposes and shuffle reductions; AVX2
/// gathers), selected through the one dispatch point (<see cref="KernelChoices.HardwareForms"/>), against the portable
/// code that moves the same values: the same bits. Where this CPU lacks an instruction set, its forms cannot run and
/// the test says Skipped with the reason (the CI log then lists what the machine could not check).
/// </summary>
public class HardwareFormsTests
{
    private const string NoAvx512 = "this CPU has no AVX-512: its permute, transpose and shuffle forms never run here";

    /// <summary>The result of <paramref name="run"/> with the hardware forms allowed, and with them forbidden, on <paramref name="path"/>.</summary>
    private static (float[] With, float[] Without) Both(SimdPath path, Func<float[]> run) =>
        (SimdWidth.With(SimdWidth.Choices with { Path = path, HardwareForms = null }, run),
         SimdWidth.With(SimdWidth.Choices with { Path = path, HardwareForms = false }, run));

    private static void Same((float[] With, float[] Without) r, string what)
    {
        Assert.Equal(r.Without.Length, r.With.Length);
        for (int i = 0; i < r.With.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(r.With[i]) == BitConverter.SingleToInt32Bits(r.Without[i]),
                $"{what}: element {i} is {r.With[i]:R} with the hardware forms, {r.Without[i]:R} without");
    }

    private static float[] Values(int seed, int n)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    [SkippableFact]
    public void StridedMovesAreTheScalarMoves()
    {
        Skip.IfNot(Avx512F.IsSupported, NoAvx512);
        foreach (int n in new[] { 1, 15, 16, 17, 31, 32, 33, 70, 113 })
            foreach (int start in new[] { 0, 1, 5 })
            {
                var src = Values(n + start, 2 * n + start + 3);
                Same(Both(SimdPath.Vector512, () =>
                {
                    var even = new float[n];
                    var odd = new float[n];
                    Strided.Deinterleave<float>(src, start, even, odd);
                    return [.. even, .. odd];
                }), $"deinterleave n={n} start={start}");
                Same(Both(SimdPath.Vector512, () =>
                {
                    var dst = new float[n];
                    Strided.Gather<float>(src, start, 2, dst);
                    return dst;
                }), $"gather n={n} start={start}");
                Same(Both(SimdPath.Vector512, () =>
                {
                    var dst = Values(7, 2 * n + start + 1);
                    Strided.AddStride2<float>(Values(8, n), dst, start);
                    return dst;
                }), $"add stride 2 n={n} start={start}");
            }
    }

    [SkippableFact]
    public void ConvolutionPassesGiveTheSameBitsWithoutThePermutesTransposesAndShuffles()
    {
        Skip.IfNot(Avx512F.IsSupported, NoAvx512);
        // The row kernel's copy-out and weight packing (register transposes), the strided input gradient (stride-2
        // moves), the weight gradient's sixteen-at-once reductions and packed panels, Winograd's deinterleave.
        var problems = new[]
        {
            new ConvProblem(Conv2dGeometry.Square(40, 64, 3, padding: 1), 1, 14, 14, true, 1),
            new ConvProblem(Conv2dGeometry.Square(32, 48, 3, 2, 1), 2, 17, 34, false, 2),
            new ConvProblem(Conv2dGeometry.Square(64, 32, 1, 2), 1, 28, 28, true, 3),
            new ConvProblem(Conv2dGeometry.Square(3, 32, 7, 2, 3), 1, 40, 40, false, 4),
        };
        foreach (var pr in problems)
        {
            var (x64, w64, b64, dy64) = pr.Data();
            var (x, w, b, dy) = (x64.Cast<float>(), w64.Cast<float>(), b64?.Cast<float>(), dy64.Cast<float>());
            foreach (bool? rows in new bool?[] { null, true })
                Same(Both(SimdPath.Vector512, () =>
                {
                    SimdWidth.Choices = SimdWidth.Choices with { RowKernel = rows };
                    return Conv2d.Forward(x, w, b, pr.G).Data;
                }), $"forward {pr} rows={rows}");
            Same(Both(SimdPath.Vector512, () => Conv2d.BackwardInput(dy, w, pr.G, pr.H, pr.W).Data), $"input gradient {pr}");
            Same(Both(SimdPath.Vector512, () => Conv2d.BackwardWeight(x, dy, pr.G).Data), $"weight gradient {pr}");
        }
        var g = Conv2dGeometry.Square(16, 24, 3, padding: 1);
        var (wx, ww, _, _) = new ConvProblem(g, 1, 64, 64, false, 5).Data();
        Same(Both(SimdPath.Vector512, () =>
        {
            var y = new DenseTensor<float>(1, 24, 64, 64);
            Conv2d.ForwardWinograd(wx.Cast<float>(), ww.Cast<float>(), null, g, y, null, new ConvWeightPack());
            return y.Data;
        }), "winograd 64x64");
    }

    [SkippableFact]
    public void DepthwiseChannelBlocksMoveTheSameWithoutTheTransposes()
    {
        Skip.IfNot(Avx.IsSupported, "this CPU has no AVX: the depthwise channel blocks' register transposes never run here");
        // The channels-in-lanes depthwise forward moves whole blocks of channels by 16 × 16 (AVX-512) or 8 × 8 (AVX)
        // register transposes, in and out (+ bias); without them, lane by lane. 40 channels: whole blocks and a partial.
        var pr = new ConvProblem(Conv2dGeometry.Square(40, 40, 5, stride: 2, padding: 2, groups: 40), 2, 13, 15, true, 11);
        var (x64, w64, b64, _) = pr.Data();
        var (x, w, b) = (x64.Cast<float>(), w64.Cast<float>(), b64!.Cast<float>());
        var paths = Avx512F.IsSupported ? new[] { SimdPath.Vector256, SimdPath.Vector512 } : [SimdPath.Vector256];
        foreach (var path in paths)
            Same(Both(path, () =>
            {
                SimdWidth.Choices = SimdWidth.Choices with { DepthwiseLanes = true };
                return Conv2d.Forward(x, w, b, pr.G).Data;
            }), $"depthwise channels in lanes, {path}");
    }

    [SkippableFact]
    public void SixteenPlaneSumsGiveTheSameBitsWithoutTheShuffles()
    {
        Skip.IfNot(Avx512F.IsSupported, NoAvx512);
        var x = new DenseTensor<float>(Values(9, 2 * 16 * 7 * 9), [2, 16, 7, 9]);
        Same(Both(SimdPath.Vector512, () => GlobalPool.AvgForward(x).Data), "squeeze of 32 planes");
    }

    [SkippableFact]
    public void GatheredWeightPackingIsThePortablePacking()
    {
        Skip.IfNot(Avx2.IsSupported, "this CPU has no AVX2: the gather form of the row kernel's weight packing never runs here");
        // The input gradient's flipped taps packed for the row kernel by AVX2 gathers (32 lanes: Vector512 float, which
        // runs in software where the hardware has only AVX2) against the element-by-element packing.
        var pr = new ConvProblem(Conv2dGeometry.Square(64, 64, 3, padding: 1), 1, 14, 14, false, 6);
        var (_, w, _, dy) = pr.Data();
        Same(Both(SimdPath.Vector512, () =>
        {
            SimdWidth.Choices = SimdWidth.Choices with { RowKernel = true };
            return Conv2d.BackwardInput(dy.Cast<float>(), w.Cast<float>(), pr.G, pr.H, pr.W).Data;
        }), "input gradient through the row kernel");
    }
}
