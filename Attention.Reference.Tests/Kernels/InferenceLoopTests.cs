using Attention.Reference.Layers;
using Attention.Reference.Ops;
using Attention.Reference.Kernels;
using FsCheck.Fluent;

namespace Attention.Reference.Tests.Kernels;

/// <summary>
/// The loops an inference plan runs between convolutions — the worker team's chunked indices, the squeeze, SE's scale
/// and the residual sum, the lane-wise linear layer — against the plain scalar loops they replace, bit for bit.
/// </summary>
public sealed class InferenceLoopTests
{
    private struct Mark : IForBody
    {
        public int[] Hits;

        public readonly void Invoke(int i) => Interlocked.Increment(ref Hits[i]);
    }

    [Fact]
    public void ChunkedWorkerLoopsRunEveryIndexExactlyOnce()
    {
        // Each thread takes its own share, then helps with the others'; after 5 threads, loops of 2 and 3 run with
        // helpers whose number is beyond the loop's shares (they only help).
        foreach (int threads in new[] { 1, 2, 3, 5, 2, 3 })
            foreach (int count in new[] { 0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4097 })
            {
                var body = new Mark { Hits = new int[count] };
                Compute.WithThreads(threads, () => { Compute.For(count, body); return 0; });
                Assert.All(body.Hits, h => Assert.Equal(1, h));
            }
    }

    private struct Throw : IForBody
    {
        public int[] Hits;
        public int Bad;

        public readonly void Invoke(int i)
        {
            Interlocked.Increment(ref Hits[i]);
            if (i == Bad) throw new InvalidOperationException($"index {i}");
        }
    }

    [Fact]
    public void AnExceptionInOneShareStopsTheLoopAndReachesTheCaller()
    {
        foreach (int threads in new[] { 1, 2, 3 })
            foreach (int bad in new[] { 0, 500, 999 })
            {
                var body = new Throw { Hits = new int[1000], Bad = bad };
                var e = Assert.Throws<InvalidOperationException>(
                    () => Compute.WithThreads(threads, () => { Compute.For(1000, body); return 0; }));
                Assert.Equal($"index {bad}", e.Message);
                Assert.All(body.Hits, h => Assert.InRange(h, 0, 1));
                // On one thread nothing after the failing index runs: the loop stopped handing out work.
                if (threads == 1) Assert.All(body.Hits.Skip(bad + 1), h => Assert.Equal(0, h));
                // The team is usable afterwards.
                var mark = new Mark { Hits = new int[77] };
                Compute.WithThreads(threads, () => { Compute.For(77, mark); return 0; });
                Assert.All(mark.Hits, h => Assert.Equal(1, h));
            }
    }

    private static float[] Values(Random rng, int length)
    {
        // Magnitudes over 2^±12, so that any other summation order or a fused multiply-add changes the bits.
        var v = new float[length];
        for (int i = 0; i < length; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-12, 13)));
        return v;
    }

    [FsCheck.Xunit.Property(MaxTest = 100)]
    public FsCheck.Property Squeeze_is_the_sequential_sum_of_each_plane_divided_once() => Prop.ForAll(
        Gen.Choose(0, int.MaxValue).ToArbitrary(), seed =>
        {
            var rng = new Random(seed);
            int n = rng.Next(1, 3), c = rng.Next(1, 21), h = rng.Next(1, 9), w = rng.Next(1, 9);
            var x = new DenseTensor<float>(Values(rng, n * c * h * w), n, c, h, w);
            var z = Compute.WithThreads(rng.Next(1, 4), () => GlobalPool.AvgForward(x));
            for (int p = 0; p < n * c; p++)
            {
                float sum = 0;
                for (int i = 0; i < h * w; i++) sum += x.Data[p * h * w + i];
                Assert.Equal(BitConverter.SingleToInt32Bits(sum / (h * w)), BitConverter.SingleToInt32Bits(z.Data[p]));
            }
        });

    [Theory]
    [InlineData(1, 16, 4, 4)]
    [InlineData(1, 32, 7, 7)]
    [InlineData(2, 24, 14, 14)]
    [InlineData(1, 48, 5, 9)]
    [InlineData(1, 16, 56, 56)]
    public void SqueezeOfSixteenPlanesAtOnceIsTheSequentialSum(int n, int c, int h, int w)
    {
        // The Vector512 path sums 16 planes through register transposes; on every path the bits are the scalar chain's.
        var rng = new Random(n * 1000 + c * 10 + h);
        var x = new DenseTensor<float>(Values(rng, n * c * h * w), n, c, h, w);
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Portable })
            foreach (int threads in new[] { 1, 2 })
            {
                var z = SimdWidth.With(path, () => Compute.WithThreads(threads, () => GlobalPool.AvgForward(x)));
                for (int p = 0; p < n * c; p++)
                {
                    float sum = 0;
                    for (int i = 0; i < h * w; i++) sum += x.Data[p * h * w + i];
                    Assert.Equal(BitConverter.SingleToInt32Bits(sum / (h * w)), BitConverter.SingleToInt32Bits(z.Data[p]));
                }
            }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void SpanArithmeticIsTheScalarLoopBitForBit(int width) => SimdWidth.With((SimdPath)width, () =>
    {
        var rng = new Random(7);
        for (int length = 0; length <= 70; length++)
        {
            var h = Values(rng, length);
            var s = Values(rng, length);
            if (length > 3) (h[1], h[2], s[3]) = (float.NaN, float.NegativeInfinity, -0f);
            float g = (float)(rng.NextDouble() + 0.25);
            var scaleAdd = (float[])h.Clone();
            var add = (float[])h.Clone();
            var scaled = new float[length];
            SpanArithmetic.ScaleAdd<float>(scaleAdd, g, s);
            SpanArithmetic.Add<float>(add, s);
            SpanArithmetic.Scale<float>(h, g, scaled);
            for (int i = 0; i < length; i++)
            {
                float product = h[i] * g;
                Assert.Equal(BitConverter.SingleToInt32Bits(product + s[i]), BitConverter.SingleToInt32Bits(scaleAdd[i]));
                Assert.Equal(BitConverter.SingleToInt32Bits(h[i] + s[i]), BitConverter.SingleToInt32Bits(add[i]));
                Assert.Equal(BitConverter.SingleToInt32Bits(product), BitConverter.SingleToInt32Bits(scaled[i]));
            }
            var constant = new float[length];
            SpanArithmetic.ScaleAddConstant<float>(h, g, 0.375f, constant);
            for (int i = 0; i < length; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(h[i] * g + 0.375f), BitConverter.SingleToInt32Bits(constant[i]));
        }
        return 0;
    });

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public FsCheck.Property Planned_linear_layer_keeps_each_dot_product_sequential() => Prop.ForAll(
        Gen.Choose(0, int.MaxValue).ToArbitrary(), seed =>
        {
            var rng = new Random(seed);
            int inF = rng.Next(1, 90), outF = rng.Next(1, 90), n = rng.Next(1, 4);
            bool bias = rng.Next(2) == 0, convForm = rng.Next(2) == 0;
            var layer = new Linear<float>(inF, outF, bias, convForm);
            Values(rng, inF * outF).CopyTo(layer.Weight.Value.Data, 0);
            if (layer.Bias is { } b) Values(rng, outF).CopyTo(b.Value.Data, 0);
            int[] shape = convForm ? [n, inF, 1, 1] : [n, inF];
            var x = new DenseTensor<float>(Values(rng, n * inF), shape);
            var pass = new Pass<float> { RecordTape = false, Kernels = KernelPath.Fast };
            var eager = layer.Forward(x, pass).Clone();
            layer.Freeze();
            var planned = Compute.WithThreads(rng.Next(1, 4), () => layer.Forward(x, pass));
            for (int img = 0; img < n; img++)
                for (int o = 0; o < outF; o++)
                {
                    float acc = 0;
                    for (int i = 0; i < inF; i++) acc += layer.Weight.Value.Data[o * inF + i] * x.Data[img * inF + i];
                    if (bias) acc += layer.Bias!.Value.Data[o];
                    int at = img * outF + o;
                    Assert.Equal(BitConverter.SingleToInt32Bits(acc), BitConverter.SingleToInt32Bits(eager.Data[at]));
                    Assert.Equal(BitConverter.SingleToInt32Bits(acc), BitConverter.SingleToInt32Bits(planned.Data[at]));
                }
        });
}
