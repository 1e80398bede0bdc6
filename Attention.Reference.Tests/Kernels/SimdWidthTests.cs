using System.Text.RegularExpressions;
using Attention.Reference.Kernels;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Kernels;

/// <summary>The one vector-width switch of every fast kernel.</summary>
public sealed partial class SimdWidthTests
{
    private struct ReadPath : IForBody
    {
        public SimdPath[] Seen;

        public readonly void Invoke(int i) => Seen[i] = SimdWidth.Path;
    }

    [Fact]
    public async Task ForcedPathFollowsTheCallerIntoTheWorkersAndIsRestored()
    {
        Assert.Equal(SimdWidth.Hardware, SimdWidth.Path);
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
        {
            var seen = SimdWidth.With(path, () => Compute.WithThreads(2, () =>
            {
                var body = new ReadPath { Seen = new SimdPath[64] };
                Compute.For(64, body);
                return body.Seen;
            }));
            Assert.All(seen, p => Assert.Equal(path, p));
            Assert.Equal(SimdWidth.Hardware, SimdWidth.Path);
        }
        // A child flow inherits the choice; its own change never flows back.
        SimdWidth.Forced = SimdPath.Portable;
        try
        {
            var inner = await Task.Run(() => { var seen = SimdWidth.Path; SimdWidth.Forced = SimdPath.Vector256; return seen; });
            Assert.Equal(SimdPath.Portable, inner);
            Assert.Equal(SimdPath.Portable, SimdWidth.Path);
        }
        finally
        {
            SimdWidth.Forced = null;
        }
    }

    [Fact]
    public void EveryKernelReadsTheOneSwitch()
    {
        // No fast kernel keeps a switch of its own: the conv tuning's path and SE's width are the shared one.
        SimdWidth.With(SimdPath.Portable, () =>
        {
            Assert.Equal(SimdPath.Portable, Attention.Reference.Kernels.Conv.Conv2dTuning.Path);
            return 0;
        });
        SimdWidth.With(SimdPath.Vector512, () =>
        {
            Assert.Equal(SimdPath.Vector512, Attention.Reference.Kernels.Conv.Conv2dTuning.Path);
            return 0;
        });
    }

    [Fact]
    public void EveryConvolutionDecisionComesFromTheDispatchAndIsReported()
    {
        static DenseTensor<float> Random(params int[] shape)
        {
            var rng = new Random(3);
            var t = new DenseTensor<float>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = (float)rng.NextDouble() - 0.5f;
            return t;
        }
        string Forward(KernelChoices choices, Conv2dGeometry g, int hw = 9)
        {
            var x = Random(1, g.InChannels, hw, hw);
            var w = Random(g.WeightShape);
            var calls = SimdWidth.With(choices, () => KernelDecisions.Record(() => Conv2d.Forward(x, w, null, g)));
            var call = Assert.Single(calls);
            Assert.Equal(("forward", g, 1, hw, hw, KernelDecisions.Path), (call.Pass, call.Geometry, call.N, call.H, call.W, call.Path));
            return call.Algorithm;
        }
        var none = new KernelChoices();
        var pointwise = Conv2dGeometry.Square(8, 8, 1);
        var depthwise = new Conv2dGeometry(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 8);
        Assert.Equal("depthwise", Forward(none, depthwise, 14));
        Assert.Equal("depthwise", Forward(none with { DepthwiseLanes = false }, depthwise));
        Assert.Equal("depthwise, channels in lanes", Forward(none with { DepthwiseLanes = true }, depthwise, 14));
        Assert.Equal("packed im2col", Forward(none with { PackedForward = true }, pointwise));
        Assert.Equal("pointwise in place", Forward(none with { RowKernel = false }, pointwise));
        Assert.Equal("grid", Forward(none with { RowKernel = false, PointwiseInPlace = false }, pointwise));
        Assert.Equal("rows", Forward(none with { RowKernel = true }, pointwise));

        var strided = Conv2dGeometry.Square(8, 8, 3, 2, 1);
        var x = Random(1, 8, 9, 9);
        var wt = Random(strided.WeightShape);
        var dy = Random(1, 8, 5, 5);
        foreach (var (choices, input, weight) in new[]
                 {
                     (none with { PackedInputGradient = true, DirectWeightGradient = true }, "packed col2im", "direct"),
                     (none with { PackedInputGradient = false, DirectWeightGradient = false }, "phases", "packed"),
                 })
        {
            var calls = SimdWidth.With(choices, () => KernelDecisions.Record(() =>
            {
                Conv2d.BackwardInput(dy, wt, strided, 9, 9);
                Conv2d.BackwardWeight(x, dy, strided);
            }));
            Assert.Equal([("input gradient", input), ("weight gradient", weight)], calls.Select(c => (c.Pass, c.Algorithm)));
        }
        // Nothing is recorded outside Record.
        Assert.Null(SimdWidth.Choices.OnConv);
    }

    [Fact]
    public void NoKernelKeepsASwitchOfItsOwn()
    {
        // Every override lives in the one KernelChoices record: no [ThreadStatic] flag and no mutable static bool or
        // int in the kernels, ops or layers (buffers and constants are fine).
        string library = Path.Combine(Docs.DerivationLabelTests.RepoRoot(), "Attention.Reference");
        var offenders = new[] { "Kernels", "Ops", "Layers" }
            .SelectMany(d => Directory.GetFiles(Path.Combine(library, d), "*.cs", SearchOption.AllDirectories))
            .SelectMany(f => File.ReadAllLines(f).Select((line, i) => (File: Path.GetFileName(f), Line: i + 1, Text: line)))
            .Where(l => Switch().IsMatch(l.Text))
            .Select(l => $"{l.File}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, string.Join("\n", offenders));
    }

    [GeneratedRegex(@"^\s*(\[ThreadStatic\]\s*)?(internal|public|private|protected)\s+static\s+(bool|int)\??\s+\w+\s*(=(?!>)|;)")]
    private static partial Regex Switch();
}
