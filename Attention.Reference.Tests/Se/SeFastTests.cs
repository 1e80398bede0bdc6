using Attention.Reference.Cases;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;
using Attention.Reference.Tests.Support;
using Xunit.Abstractions;

namespace Attention.Reference.Tests.Se;

/// <summary>The fused float32 path against the float64 oracle, on both vector paths; thread-count determinism.</summary>
public sealed class SeFastTests(ITestOutputHelper output)
{
    /// <summary>
    /// Float32 tolerance on each tensor's scale: |a − e| ≤ 1e-5·max|e|. Float32 rounding of x alone gives ~6e-8; the
    /// plane sums (≤ 784 terms) and the FC sums add a few 1e-7; we saw at most 4.1e-7 (printed below), so 1e-5 is the library-wide float32 default, not a loosened bound.
    /// </summary>
    private const double Tolerance = 1e-5;

    public static TheoryData<int, int, int, int, int, bool, SeGate, SePool> Variants() => new()
    {
        { 2, 16, 4, 7, 9, true, SeGate.Sigmoid, SePool.Avg },
        { 2, 16, 4, 7, 9, false, SeGate.Sigmoid, SePool.Max },
        { 3, 24, 3, 5, 5, true, SeGate.HardSigmoid, SePool.Avg },
        { 3, 24, 3, 5, 5, false, SeGate.HardSigmoid, SePool.Max },
        { 2, 64, 4, 28, 28, true, SeGate.Sigmoid, SePool.Avg },
        { 1, 5, 2, 1, 3, true, SeGate.Sigmoid, SePool.Avg },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void FastMatchesOracle(int n, int c, int hid, int h, int w, bool bias, SeGate gate, SePool pool)
    {
        var (o, x, dy, p) = SeTestData.Random(n * 1000 + c, n, c, hid, h, w, bias, gate, pool, weightScale: 2);
        var st = SqueezeExcitation.Forward(o, x, p);
        var g = SqueezeExcitation.Backward(o, p, st, dy);
        foreach (bool wide in new[] { true, false })
        {
            bool saved = SeKernels.UseVector512;
            try
            {
                SeKernels.UseVector512 = wide && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
                var xf = x.Cast<float>();
                var dyf = dy.Cast<float>();
                var pf = SeTestData.ToFloat(o, p);
                var stf = SqueezeExcitationFast.Forward(o, xf, pf);
                var gf = SqueezeExcitationFast.Backward(o, pf, stf, dyf);
                var (yf, gff) = SqueezeExcitationFast.ForwardBackward(o, xf, pf, dyf);
                string path = SeKernels.UseVector512 ? "Vector512" : $"Vector<float>({System.Numerics.Vector<float>.Count})";
                Check($"{path} y", stf.Y, st.Y);
                Check($"{path} y (fused)", yf, st.Y);
                Check($"{path} s", stf.S, st.S);
                foreach (var (label, fast) in new[] { ("separate", gf), ("fused", gff) })
                {
                    Check($"{path} {label} dx", fast.Dx, g.Dx);
                    Check($"{path} {label} dW1", fast.DW1, g.DW1);
                    Check($"{path} {label} dW2", fast.DW2, g.DW2);
                    if (bias)
                    {
                        Check($"{path} {label} db1", fast.DB1!, g.DB1!);
                        Check($"{path} {label} db2", fast.DB2!, g.DB2!);
                    }
                    else Assert.True(fast.DB1 is null && fast.DB2 is null);
                }
            }
            finally { SeKernels.UseVector512 = saved; }
        }
    }

    [Fact]
    public void CaseModuleRunsTheFastPathForFloat32()
    {
        var c = SeTestData.Module.Generate(3).First();
        var r64 = SeTestData.Module.Run(c.Config, c.Inputs, c.Parameters, RunOptions.Default);
        var r32 = SeTestData.Module.Run(c.Config, c.Inputs.Cast<float>(), c.Parameters.Cast<float>(), RunOptions.Default);
        Assert.Equal(r64.Names, r32.Names);
        foreach (var (name, t) in r64) Check("case " + name, r32.Get(name), t);
    }

    [Fact]
    public void OracleIsBitwiseIdenticalForAnyThreadCount()
    {
        foreach (var gc in SeTestData.Module.Generate(11))
            Bitwise.AssertSameForThreadCounts(() => SeTestData.Module.Run(gc.Config, gc.Inputs, gc.Parameters, new RunOptions { Trace = null }), 2, 3, 8);
        var (o, x, dy, p) = SeTestData.Random(9, 2, 64, 4, 12, 12, true, SeGate.Sigmoid, SePool.Avg);
        var (config, inputs, ps) = SeTestData.AsCase(o, x, dy, p);
        Bitwise.AssertSameForThreadCounts(() => SeTestData.Module.Run(config, inputs, ps, RunOptions.Default), 2, 3, 8);
    }

    [Theory]
    [InlineData(SePool.Avg)]
    [InlineData(SePool.Max)]
    public void FastIsBitwiseIdenticalForAnyThreadCount(SePool pool)
    {
        var (o, x, dy, p) = SeTestData.Random(9, 2, 64, 4, 12, 13, true, SeGate.Sigmoid, pool);
        var (config, inputs, ps) = SeTestData.AsCase(o, x, dy, p);
        var in32 = inputs.Cast<float>();
        var p32 = ps.Cast<float>();
        Bitwise.AssertSameForThreadCounts(() => SeTestData.Module.Run(config, in32, p32, RunOptions.Default), 2, 3, 8);
        var fwd = new TensorSet<float>("x only");
        fwd.Set("x", in32.Get("x"));
        Bitwise.AssertSameForThreadCounts(() => SeTestData.Module.Run(config, fwd, p32, RunOptions.Default), 2, 3, 8);
    }

    [Fact]
    public void FastWritesIntoGivenOutputsAndRejectsAliasing()
    {
        var (o, x, dy, p) = SeTestData.Random(4, 2, 8, 2, 4, 4, true, SeGate.Sigmoid, SePool.Avg);
        var xf = x.Cast<float>();
        var pf = SeTestData.ToFloat(o, p);
        var y = xf.ZerosLike();
        var st = SqueezeExcitationFast.Forward(o, xf, pf, y);
        Assert.Same(y, st.Y);
        Assert.Throws<ArgumentException>(() => SqueezeExcitationFast.Forward(o, xf, pf, xf));
        Assert.Equal("y", Assert.Throws<ShapeMismatchException>(() => SqueezeExcitationFast.Forward(o, xf, pf, new DenseTensor<float>(2, 8, 4, 3))).TensorName);
    }

    private void Check<TA>(string what, DenseTensor<TA> actual, DenseTensor<double> expected) where TA : System.Numerics.IFloatingPointIeee754<TA>
    {
        double err = SeTestData.ScaledError(actual, expected);
        output.WriteLine($"{what}: max |a − e| / max|e| = {err:E2}");
        Assert.True(err <= Tolerance, $"{what}: scaled error {err:E2} > {Tolerance:E0}");
    }
}
