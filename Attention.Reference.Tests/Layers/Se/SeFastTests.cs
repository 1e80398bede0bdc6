using Attention.Reference.Kernels;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.Layers;

namespace Attention.Reference.Tests.Layers.Se;

/// <summary>
/// The one SE layer in float32 (the fast kernels' setting) against the float64 oracle, on both vector paths; the plane
/// kernels it runs against their specification, bit for bit on every path; thread-count determinism.
/// </summary>
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
        var st = SeRun.Forward(o, x, p);
        var g = SeRun.Backward(o, p, st, dy);
        foreach (bool wide in new[] { true, false })
        {
            SimdWidth.With(wide ? SimdPath.Vector512 : SimdPath.Portable, () =>
            {
                var xf = x.Cast<float>();
                var dyf = dy.Cast<float>();
                var pf = SeTestData.ToFloat(o, p);
                var stf = SeRun.Forward(o, xf, pf, KernelPath.Fast);
                var gf = SeRun.Backward(o, pf, stf, dyf);
                string path = SimdWidth.Path.ToString();
                Check($"{path} y", stf.Y, st.Y);
                Check($"{path} s", stf.S, st.S);
                Check($"{path} dx", gf.Dx, g.Dx);
                Check($"{path} dW1", gf.DW1, g.DW1);
                Check($"{path} dW2", gf.DW2, g.DW2);
                if (bias)
                {
                    Check($"{path} db1", gf.DB1!, g.DB1!);
                    Check($"{path} db2", gf.DB2!, g.DB2!);
                }
                else Assert.True(gf.DB1 is null && gf.DB2 is null);
                return 0;
            });
        }
    }

    /// <summary>
    /// Random shapes (odd plane sizes exercise every vector tail), gates, pools, bias, vector paths, thread counts.
    /// Float32 can only be held to the oracle away from the kinks: a draw is discarded (FsCheck precondition) when a
    /// relu input h, a hard-sigmoid input e ∓ 3, or a max-pool plane's top-two gap is within 1e-5 of the magnitude of
    /// the terms that produced it (float32 rounding, about 6e-8 of that magnitude per term, could flip the branch).
    /// y and dx are held to Tolerance·max|e|; the parameter gradients, being batch and channel sums that may cancel, to
    /// Tolerance·max(magnitude of their terms) (<see cref="SeTestData.GradientMagnitudes"/>).
    /// </summary>
    [FsCheck.Xunit.Property(MaxTest = 100)]
    public FsCheck.Property FastMatchesOracleOnRandomShapes(int seed, int a, int b, int c, int d, int e, bool hard, bool max, bool bias, bool wide)
    {
        int n = 1 + Math.Abs(a % 3), ch = 1 + Math.Abs(b % 12), hid = 1 + Math.Abs(c % 5), h = 1 + Math.Abs(d % 11), w = 1 + Math.Abs(e % 13);
        var (o, x, dy, p) = SeTestData.Random(seed, n, ch, hid, h, w, bias, hard ? SeGate.HardSigmoid : SeGate.Sigmoid, max ? SePool.Max : SePool.Avg);
        var st = SeRun.Forward(o, x, p);
        var g = SeRun.Backward(o, p, st, dy);

        const double margin = 1e-5;
        bool wellConditioned = true;
        for (int s = 0; s < n; s++)
            for (int j = 0; j < hid; j++)
            {
                double sum = p.B1 is null ? 0 : Math.Abs(p.B1.Data[j]);
                for (int k = 0; k < ch; k++) sum += Math.Abs(p.W1.Data[j * ch + k] * st.Z.Data[s * ch + k]);
                if (Math.Abs(st.H.Data[s * hid + j]) <= margin * sum) wellConditioned = false;
            }
        if (hard)
            for (int s = 0; s < n; s++)
                for (int k = 0; k < ch; k++)
                {
                    double sum = p.B2 is null ? 0 : Math.Abs(p.B2.Data[k]);
                    for (int j = 0; j < hid; j++) sum += Math.Abs(p.W2.Data[k * hid + j] * st.R.Data[s * hid + j]);
                    double ev = st.E.Data[s * ch + k], m = margin * Math.Max(sum, 3);
                    if (Math.Abs(ev - 3) <= m || Math.Abs(ev + 3) <= m) wellConditioned = false;
                }
        if (max)
            for (int q = 0; q < n * ch; q++)
            {
                var plane = x.Data.AsSpan(q * h * w, h * w).ToArray();
                Array.Sort(plane);
                if (plane.Length > 1 && plane[^1] - plane[^2] <= margin * Math.Abs(plane[^1])) wellConditioned = false;
            }

        return FsCheck.Fluent.Prop.When(wellConditioned, () =>
        {
            var (yf, gf) = SimdWidth.With(wide ? SimdPath.Vector512 : SimdPath.Portable, () => Compute.WithThreads(1 + Math.Abs(seed % 3), () =>
                SeRun.ForwardBackward(o, x.Cast<float>(), SeTestData.ToFloat(o, p), dy.Cast<float>())));
            var mag = SeTestData.GradientMagnitudes(o, p, st, dy);
            void Check(string name, double err) => Assert.True(err <= Tolerance, $"{name}: {err:E2} > {Tolerance:E0}");
            Check("y", SeTestData.ScaledError(yf, st.Y));
            Check("dx", SeTestData.ScaledError(gf.Dx, g.Dx));
            Check("dW1", SeTestData.ErrorOnScale(gf.DW1, g.DW1, mag.DW1));
            Check("dW2", SeTestData.ErrorOnScale(gf.DW2, g.DW2, mag.DW2));
            if (bias)
            {
                Check("db1", SeTestData.ErrorOnScale(gf.DB1!, g.DB1!, mag.DB1));
                Check("db2", SeTestData.ErrorOnScale(gf.DB2!, g.DB2!, mag.DB2));
            }
        });
    }

    /// <summary>
    /// The squeeze (Eq. (se.1)) and the plane dot products (Eq. (se.8)) interleave planes in vector lanes or eight
    /// scalar chains; each plane's sum must still be the plain sequential loop's, bit for bit, on every path, for float
    /// and double, at every plane length around the 16-position blocks and with NaN, ±∞ and ±0 in the data.
    /// </summary>
    [Fact]
    public void PlaneKernelsEqualTheirSequentialSpecificationOnEveryPath()
    {
        var rng = new Random(5);
        int checkedPlanes = 0;
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
            foreach (var (n, c, h, w) in new[] { (1, 16, 4, 4), (2, 16, 5, 7), (1, 32, 1, 17), (3, 7, 3, 3), (2, 48, 28, 28), (1, 16, 1, 15) })
            {
                var x = SeTestData.Normal(rng, n, c, h, w);
                var dy = SeTestData.Normal(rng, n, c, h, w);
                double[] specials = [double.NaN, double.PositiveInfinity, double.NegativeInfinity, 0.0, -0.0, 1e30];
                for (int i = 0; i < x.Length; i += 97) x.Data[i] = specials[i % specials.Length];
                SimdWidth.With(path, () =>
                {
                    Same(x, dy, n * c);
                    Same(x.Cast<float>(), dy.Cast<float>(), n * c);
                    return 0;
                });
                checkedPlanes += 2 * n * c;
            }
        Assert.True(checkedPlanes > 500);

        static void Same<T>(DenseTensor<T> x, DenseTensor<T> dy, int planes) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            int plane = x.Length / planes;
            Check<Attention.Reference.Kernels.ProductTerm<T>, T>(dy.Data, x.Data, planes, plane, "dy·x");
            Check<Attention.Reference.Kernels.ValueTerm<T>, T>(x.Data, x.Data, planes, plane, "x");
            Check<Attention.Reference.Kernels.SquareTerm<T>, T>(x.Data, x.Data, planes, plane, "x²");
            Check<Attention.Reference.Kernels.AbsTerm<T>, T>(x.Data, x.Data, planes, plane, "|x|");
            // The ops on top: ∂s (Eq. (se.8)) and the squeeze (Eq. (se.1): the sum, then one division).
            var ds = new T[planes];
            Attention.Reference.Ops.ChannelScale.PlaneDots(dy, x, ds);
            var spec = Attention.Reference.Kernels.PlaneReduce.SumsSpec<Attention.Reference.Kernels.ProductTerm<T>, T>(dy.Data, x.Data, planes, plane);
            for (int p = 0; p < planes; p++) Bits(spec[p], ds[p], $"ds[{p}]");
            var z = new DenseTensor<T>(planes);
            Attention.Reference.Ops.GlobalPool.AvgForward(x, z);
            var sums = Attention.Reference.Kernels.PlaneReduce.SumsSpec<Attention.Reference.Kernels.ValueTerm<T>, T>(x.Data, x.Data, planes, plane);
            for (int p = 0; p < planes; p++) Bits(sums[p] / T.CreateChecked(plane), z.Data[p], $"z[{p}]");
        }

        static void Check<TTerm, T>(T[] a, T[] b, int planes, int plane, string what)
            where TTerm : struct, Attention.Reference.Kernels.IPlaneTerm<T> where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var sums = new T[planes];
            Attention.Reference.Kernels.PlaneReduce.Sums<TTerm, T>(a, b, planes, plane, sums);
            var spec = Attention.Reference.Kernels.PlaneReduce.SumsSpec<TTerm, T>(a, b, planes, plane);
            for (int p = 0; p < planes; p++) Bits(spec[p], sums[p], $"Σ {what} [{p}]");
        }

        static void Bits<T>(T expected, T actual, string what) where T : System.Numerics.IFloatingPointIeee754<T> =>
            Assert.True(expected.Equals(actual) && T.IsNegative(expected) == T.IsNegative(actual),
                $"{SimdWidth.Path} {typeof(T).Name} {what}: {actual} vs the plain loop's {expected}");
    }

    /// <summary>
    /// The fast kernels' plane sums (<see cref="SumOrder.Blocked"/>: 64 partial sums, a fixed tree, the tail) equal
    /// their plain-loop specification bit for bit on every vector path and thread count, at plane lengths around the
    /// 64-blocks and with NaN, ±∞ and ±0 in the data; the squeeze and ∂s on the fast setting use it, the oracle the chain.
    /// </summary>
    [Fact]
    public void BlockedPlaneSumsEqualTheirSpecificationOnEveryPathAndThreadCount()
    {
        var rng = new Random(8);
        int checkedPlanes = 0;
        foreach (var plane in new[] { 1, 63, 64, 65, 127, 128, 200, 784, 3136 })
        {
            int planes = 19;
            var a = new float[planes * plane];
            var b = new float[planes * plane];
            for (int i = 0; i < a.Length; i++) { a[i] = (float)(rng.NextDouble() * 4 - 2); b[i] = (float)(rng.NextDouble() * 2e3 - 1e3); }
            float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 3e38f];
            for (int i = 5 * plane; i < 6 * plane; i += 1 + plane / 7) b[i] = specials[i % specials.Length];
            for (int i = 9 * plane; i < 10 * plane; i++) b[i] = -0f;
            var productSpec = PlaneReduce.BlockedSpec<ProductTerm<float>>(a, b, planes, plane);
            var squareSpec = PlaneReduce.BlockedSpec<SquareTerm<float>>(b, b, planes, plane);
            foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable })
                foreach (int threads in new[] { 1, 3 })
                {
                    var (product, square) = SimdWidth.With(path, () => Compute.WithThreads(threads, () =>
                    {
                        var p = new float[planes];
                        var q = new float[planes + 2];
                        PlaneReduce.Sums<ProductTerm<float>, float>(a, b, 0, planes, plane, p, SumOrder.Blocked);
                        PlaneReduce.Sums<SquareTerm<float>, float>(b, b, 1, planes - 1, plane, q, SumOrder.Blocked);
                        return (p, q);
                    }));
                    for (int p = 0; p < planes; p++)
                    {
                        Assert.True(BitConverter.SingleToInt32Bits(productSpec[p]) == BitConverter.SingleToInt32Bits(product[p]),
                            $"{path} {threads} threads, plane {plane}: Σ a·b [{p}] {product[p]} vs the specification's {productSpec[p]}");
                        if (p > 0)
                            Assert.True(BitConverter.SingleToInt32Bits(squareSpec[p]) == BitConverter.SingleToInt32Bits(square[p]),
                                $"{path} {threads} threads, plane {plane}: Σ b² [{p}] {square[p]} vs the specification's {squareSpec[p]}");
                    }
                    checkedPlanes += 2 * planes;
                }
            // The order differs from the chain where the plane has whole 64-blocks (else it is the chain).
            var chain = PlaneReduce.SumsSpec<ProductTerm<float>, float>(a, b, planes, plane);
            if (plane < 64) Assert.Equal(chain, productSpec);
        }
        Assert.True(checkedPlanes > 500);

        // The ops: the fast setting's squeeze is the blocked sum divided once; the oracle's the chain.
        var x = new DenseTensor<float>(2, 3, 20, 20);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 10);
        var z = new DenseTensor<float>(2, 3);
        Attention.Reference.Ops.GlobalPool.AvgForward(x, z, new Pass<float> { Kernels = KernelPath.Fast }.SumOrder);
        var blocked = PlaneReduce.BlockedSpec<ValueTerm<float>>(x.Data, x.Data, 6, 400);
        for (int p = 0; p < 6; p++) Assert.Equal(blocked[p] / 400f, z.Data[p]);
        Assert.Equal(SumOrder.Sequential, new Pass<float> { Kernels = KernelPath.Oracle }.SumOrder);
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
        SimdWidth.With(SimdPath.Portable, () =>
        {
            Bitwise.AssertSameForThreadCounts(() => SeTestData.Module.Run(config, in32, p32, RunOptions.Default), 2, 3);
            return 0;
        });
    }

    /// <summary>
    /// A pass given a <see cref="BufferCache{T}"/> returns the previous pass's buffers for y and x.grad (no fresh pages
    /// per call) and the same values as a pass without one.
    /// </summary>
    [Fact]
    public void BufferCacheReusesOutputsWithTheSameValues()
    {
        var (o, x, dy, p) = SeTestData.Random(4, 2, 8, 2, 4, 4, true, SeGate.Sigmoid, SePool.Avg);
        var net = new Attention.Reference.Models.Network<double>("se", SqueezeExcite<double>.Paper(o));
        net.LoadStateDict(p.StateDict());
        var plain = net.Run(x, dy, training: false);
        var cache = new BufferCache<double>();
        DenseTensor<double>? firstY = null, firstDx = null;
        for (int k = 0; k < 2; k++)
        {
            var pass = new Pass<double> { Buffers = cache };
            var y = net.Root.Forward(x, pass);
            net.Root.ZeroGrad();
            var dx = net.Root.Backward(dy, pass);
            Bitwise.AssertIdentical(plain.Tensors.Get("y"), y, "y");
            Bitwise.AssertIdentical(plain.Tensors.Get("x.grad"), dx, "x.grad");
            if (k == 0) (firstY, firstDx) = (y, dx);
            else
            {
                Assert.Same(firstY!.Data, y.Data);
                Assert.Same(firstDx!.Data, dx.Data);
            }
        }
        Assert.NotSame(plain.Tensors.Get("y").Data, firstY!.Data);
    }

    private void Check<TA>(string what, DenseTensor<TA> actual, DenseTensor<double> expected) where TA : System.Numerics.IFloatingPointIeee754<TA>
    {
        double err = SeTestData.ScaledError(actual, expected);
        output.WriteLine($"{what}: max |a − e| / max|e| = {err:E2}");
        Assert.True(err <= Tolerance, $"{what}: scaled error {err:E2} > {Tolerance:E0}");
    }
}
