using Attention.Reference.Kernels;
using Attention.Reference.Cases;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;
using Attention.Reference.Tests.Support;
using Xunit.Abstractions;

namespace Attention.Reference.Tests.Gct;

/// <summary>The fused float32 GCT against the float64 oracle, and its determinism.</summary>
public sealed class GctFastTests(ITestOutputHelper output)
{
    private static readonly GctCaseModule Gct = new();

    // Relative to the tensor's max |e|. y and x.grad are elementwise in the plane sums (float32, four vector
    // accumulators, ~1e-7 relative each); the parameter gradients add the Σ ∂y·x plane sums of N planes.
    // Observed maxima over the shapes below: 1.2e-7 (y, x.grad) and 2.5e-7 (parameter gradients).
    private const double TolY = 1e-6, TolGrad = 2e-6;

    public static TheoryData<string, bool, int, int, int, int> Shapes => new()
    {
        { "l2", false, 3, 8, 28, 28 },  // plane 784 = 49 vectors of 16
        { "l2", false, 1, 5, 7, 9 },    // N < threads: split over planes; plane 63 has a tail
        { "l1", false, 3, 6, 7, 9 },
        { "l1", false, 1, 4, 1, 3 },    // plane shorter than one vector: all tail
        { "l1", true, 3, 6, 7, 9 },
        { "l1", true, 2, 7, 16, 5 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FastPathMatchesTheOracle(string mode, bool afterRelu, int n, int c, int h, int w)
    {
        var gc = GctTestData.Case(31 + n * c, mode, afterRelu, n, c, h, w);
        // The oracle sees exactly the float32-rounded inputs the fast path sees.
        var inputs32 = gc.Inputs.Cast<float>();
        var params32 = gc.Parameters.Cast<float>();
        var expected = Gct.Run(gc.Config, inputs32.Cast<double>(), params32.Cast<double>(), RunOptions.Default);
        var actual = Gct.Run(gc.Config, inputs32, params32, RunOptions.Default);
        Assert.Equal(expected.Names, actual.Names);
        foreach (var (name, e) in expected)
        {
            double err = GctTestData.RelMaxError(e, actual.Get(name));
            output.WriteLine($"{mode}{(afterRelu ? "+relu" : "")} [{n},{c},{h},{w}] {name}: max|a-e|/max|e| = {err:E2}");
            Assert.True(err <= (name is "y" or "x.grad" ? TolY : TolGrad), $"{name}: relative error {err:E2}");
        }
    }

    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void FastPathIsBitwiseIdenticalForAnyThreadCount(string mode, bool afterRelu)
    {
        // N = 3: with 1 or 2 threads the work is split over samples, with 4 or 8 over planes; both must agree.
        var gc = GctTestData.Case(77, mode, afterRelu, 3, 5, 9, 7);
        var inputs = gc.Inputs.Cast<float>();
        var ps = gc.Parameters.Cast<float>();
        Bitwise.AssertSameForThreadCounts(() => Gct.Run(gc.Config, inputs, ps, RunOptions.Default), 2, 4, 8);
    }

    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void FusedForwardBackwardEqualsSeparatePassesBitwise(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(13, mode, afterRelu, 2, 4, 5, 11);
        var m = GctTestData.Module<float>(gc);
        var x = gc.Inputs.Get("x").Cast<float>();
        var dy = gc.Inputs.Get("y.grad").Cast<float>();
        var y1 = x.ZerosLike();
        var dx1 = x.ZerosLike();
        var fused = GatedChannelTransformationFast.ForwardBackward(m, x, dy, y1, dx1);
        var y2 = x.ZerosLike();
        var dx2 = x.ZerosLike();
        var ws = GatedChannelTransformationFast.Forward(m, x, y2);
        var separate = GatedChannelTransformationFast.Backward(m, x, dy, dx2, ws);
        Bitwise.AssertIdentical(y1, y2, "y");
        Bitwise.AssertIdentical(dx1, dx2, "x.grad");
        Bitwise.AssertIdentical(fused.Alpha, separate.Alpha, "alpha.grad");
        Bitwise.AssertIdentical(fused.Gamma, separate.Gamma, "gamma.grad");
        Bitwise.AssertIdentical(fused.Beta, separate.Beta, "beta.grad");
    }

    [Theory]
    [InlineData("l2", false)]
    [InlineData("l1", false)]
    [InlineData("l1", true)]
    public void EveryVectorPathMatchesTheOracle(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(21, mode, afterRelu, 2, 5, 6, 13);
        var m = GctTestData.Module<float>(gc);
        var x = gc.Inputs.Get("x").Cast<float>();
        var dy = gc.Inputs.Get("y.grad").Cast<float>();
        var m64 = GctTestData.Module<double>(gc);
        var fw = m64.Forward(x.Cast<double>());
        var g64 = m64.Backward(fw, dy.Cast<double>());
        // Each path forced through the one switch (SimdWidth); the norms are reductions with a per-path lane order, so
        // the paths agree with the oracle, not bitwise with each other.
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
        {
            var y = x.ZerosLike();
            var dx = x.ZerosLike();
            var g = SimdWidth.With(path, () => GatedChannelTransformationFast.ForwardBackward(m, x, dy, y, dx));
            Assert.True(GctTestData.RelMaxError(fw.Y, y) <= TolY, $"{path} y");
            Assert.True(GctTestData.RelMaxError(g64.X, dx) <= TolY, $"{path} x.grad");
            Assert.True(GctTestData.RelMaxError(g64.Alpha, g.Alpha) <= TolGrad, $"{path} alpha.grad");
            Assert.True(GctTestData.RelMaxError(g64.Gamma, g.Gamma) <= TolGrad, $"{path} gamma.grad");
            Assert.True(GctTestData.RelMaxError(g64.Beta, g.Beta) <= TolGrad, $"{path} beta.grad");
        }
    }

    [Fact]
    public void ZeroChannelIsFiniteInTheFastPath()
    {
        foreach (var mode in new[] { "l2", "l1" })
        {
            var gc = GctTestData.Case(3, mode, false, 2, 4, 4, 5, zeroChannel: 2);
            var outputs = Gct.Run(gc.Config, gc.Inputs.Cast<float>(), gc.Parameters.Cast<float>(), RunOptions.Default);
            foreach (var (name, t) in outputs) Assert.All(t.Data, v => Assert.True(float.IsFinite(v), $"{mode} {name}"));
        }
    }

    [Fact]
    public void WorkspaceOfAnotherShapeIsRejected()
    {
        var m = new GatedChannelTransformation<float>(3);
        var x = new DenseTensor<float>(2, 3, 4, 4);
        var ws = GatedChannelTransformationFast.Forward(m, x, x.ZerosLike());
        var x2 = new DenseTensor<float>(1, 3, 4, 4);
        Assert.Throws<ArgumentException>(() => GatedChannelTransformationFast.Backward(m, x2, x2, x2.ZerosLike(), ws));
        Assert.Equal("y", Assert.Throws<ShapeMismatchException>(() => GatedChannelTransformationFast.Forward(m, x, x2)).TensorName);
        // Outputs may not share storage with inputs (the backward pass rereads x; the fused pass rereads y.grad).
        Assert.Contains("share storage", Assert.Throws<ArgumentException>(() => GatedChannelTransformationFast.Forward(m, x, x)).Message);
        var dy = x.ZerosLike();
        Assert.Contains("'y.grad' and 'y'", Assert.Throws<ArgumentException>(() => GatedChannelTransformationFast.ForwardBackward(m, x, dy, dy, x.ZerosLike())).Message);
    }
}
