using Attention.Reference.Kernels;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers.Gct;

/// <summary>The float32 GCT layer against the float64 oracle (the same code), and its determinism on every path.</summary>
public sealed class GctFastTests(ITestOutputHelper output)
{
    private static readonly ModelFactory Gct = ModelZoo.Get("gct");

    // Relative to the tensor's max |e|. y and x.grad are elementwise in the plane sums (float32, sequential chains of up
    // to 784 terms) and the per-channel math in float32; the parameter gradients add the Σ ∂y·x plane sums of N planes.
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
    public void EveryVectorPathMatchesTheOracle(string mode, bool afterRelu)
    {
        var gc = GctTestData.Case(21, mode, afterRelu, 2, 5, 6, 13);
        var m = GctTestData.Module<float>(gc);
        var x = gc.Inputs.Get("x").Cast<float>();
        var dy = gc.Inputs.Get("y.grad").Cast<float>();
        var m64 = GctTestData.Module<double>(gc);
        var fw = m64.Forward(x.Cast<double>());
        var g64 = m64.Backward(fw, dy.Cast<double>());
        // Each path forced through the one switch (SimdWidth): every reduction is one sequential chain per plane and every
        // elementwise pass is lane-independent, so the paths give the same bits and agree with the oracle to rounding.
        GctGradients<float>? first = null;
        DenseTensor<float>? firstY = null;
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
        {
            var (y, g) = SimdWidth.With(path, () =>
            {
                var f = m.Forward(x);
                return (f.Y, m.Backward(f, dy));
            });
            Assert.True(GctTestData.RelMaxError(fw.Y, y) <= TolY, $"{path} y");
            Assert.True(GctTestData.RelMaxError(g64.X, g.X) <= TolY, $"{path} x.grad");
            Assert.True(GctTestData.RelMaxError(g64.Alpha, g.Alpha) <= TolGrad, $"{path} alpha.grad");
            Assert.True(GctTestData.RelMaxError(g64.Gamma, g.Gamma) <= TolGrad, $"{path} gamma.grad");
            Assert.True(GctTestData.RelMaxError(g64.Beta, g.Beta) <= TolGrad, $"{path} beta.grad");
            if (first is null) (first, firstY) = (g, y);
            else
            {
                Bitwise.AssertIdentical(firstY!, y, $"{path} y");
                Bitwise.AssertIdentical(first.X, g.X, $"{path} x.grad");
                Bitwise.AssertIdentical(first.Alpha, g.Alpha, $"{path} alpha.grad");
            }
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
    public void GivenOutputsOfAnotherShapeAreRejected()
    {
        var m = new GctModule<float>(3);
        var x = new DenseTensor<float>(2, 3, 4, 4);
        var x2 = new DenseTensor<float>(1, 3, 4, 4);
        Assert.Equal("y", Assert.Throws<ShapeMismatchException>(
            () => Reference.Ops.Gct.Forward(x, m.Alpha, m.Gamma, m.Beta, y: x2)).TensorName);
        var fw = m.Forward(x);
        Assert.Equal("x.grad", Assert.Throws<ShapeMismatchException>(() => Reference.Ops.Gct.Backward(fw, x.ZerosLike(), x2)).TensorName);
        Assert.Equal("y.grad", Assert.Throws<ShapeMismatchException>(() => Reference.Ops.Gct.Backward(fw, x2)).TensorName);
    }
}
