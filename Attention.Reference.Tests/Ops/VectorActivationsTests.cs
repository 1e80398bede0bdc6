using Attention.Reference.Kernels;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Ops;

/// <summary>
/// The inference epilogues' vector activations (Ops/VectorActivations on the ISimd engine): the piecewise-linear ones
/// bit for bit the scalar formulas, Sigmoid and SiLU within a stated ulp bound of the float formula with a correctly
/// rounded exp, and all of them the same bits on every vector width and for every split of the span.
/// </summary>
public class VectorActivationsTests
{
    private static readonly SimdPath[] Paths = [SimdPath.Vector512, SimdPath.Vector256, SimdPath.Portable];

    private static float[] Specials() =>
    [
        0f, -0f, 3f, -3f, 6f, -6f, 2.9999998f, 3.0000002f, -2.9999998f, -3.0000002f, 5.9999995f, 6.0000005f,
        float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, float.MaxValue,
        float.MinValue, 1e-38f, -1e-38f, 88.5f, -88.5f, 88.73f, -88.73f, 87.3f, -87.3f, 100f, -100f, 17.5f, -17.5f,
    ];

    private static float[] Values(int seed, int count)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 24 - 12);
        var s = Specials();
        for (int i = 0; i < Math.Min(count, s.Length); i++) v[(i * 7) % count] = s[i];
        return v;
    }

    private static void Apply<T>(string kind, T[] values, SimdPath path) where T : System.Numerics.IFloatingPointIeee754<T> =>
        Assert.True(SimdWidth.With(path, () => VectorActivations.TryApply<T>(kind, values)));

    [Theory]
    [InlineData("ReLU")]
    [InlineData("ReLU6")]
    [InlineData("Hardswish")]
    [InlineData("Hardsigmoid")]
    public void PiecewiseLinearActivationsAreTheScalarFormulasBitForBit(string kind)
    {
        Func<double, double> scalar64 = kind switch
        {
            "ReLU" => v => Activations.Relu(v),
            "ReLU6" => v => Activations.Relu6(v),
            "Hardswish" => v => Activations.Hardswish(v),
            _ => v => Activations.HardSigmoid(v),
        };
        Func<float, float> scalar32 = kind switch
        {
            "ReLU" => v => Activations.Relu(v),
            "ReLU6" => v => Activations.Relu6(v),
            "Hardswish" => v => Activations.Hardswish(v),
            _ => v => Activations.HardSigmoid(v),
        };
        foreach (var path in Paths)
            for (int length = 0; length <= 70; length += 7)
            {
                var x = Values(length + 1, Math.Max(length, 1))[..length];
                var y = (float[])x.Clone();
                Apply(kind, y, path);
                for (int i = 0; i < length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(scalar32(x[i])) == BitConverter.SingleToInt32Bits(y[i]),
                        $"{kind} {path} x = {x[i]:R}: {y[i]:R}, scalar {scalar32(x[i]):R}");
                var x64 = x.Select(v => (double)v).ToArray();
                var y64 = (double[])x64.Clone();
                Apply(kind, y64, path);
                for (int i = 0; i < length; i++)
                    Assert.Equal(BitConverter.DoubleToInt64Bits(scalar64(x64[i])), BitConverter.DoubleToInt64Bits(y64[i]));
            }
    }

    [Theory]
    [InlineData("Sigmoid")]
    [InlineData("SiLU")]
    public void SigmoidAndSiluAreWithinFourUlpOfTheFormulaWithACorrectlyRoundedExp(string kind)
    {
        // Dense over [-110, 110] (both overflow sides of e^-v), random values and the specials; the reference is the
        // scalar formula in float with e^-v correctly rounded (Math.Exp in double, rounded once), as MathF computes it.
        var xs = new List<float>(Specials());
        for (float v = -110f; v <= 110f; v += 0.00731f) xs.Add(v);
        var x = xs.ToArray();
        var y = (float[])x.Clone();
        Apply(kind, y, SimdPath.Vector256);
        long worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float e = (float)Math.Exp(-(double)x[i]);
            float expected = kind == "Sigmoid" ? 1f / (1f + e) : x[i] / (1f + e);
            if (float.IsNaN(expected)) { Assert.True(float.IsNaN(y[i]), $"{kind}({x[i]:R}) = {y[i]:R}, expected NaN"); continue; }
            long ulp = Ulps(expected, y[i]);
            Assert.True(ulp <= 4, $"{kind}({x[i]:R}) = {y[i]:R}, the formula gives {expected:R} ({ulp} ulp)");
            worst = Math.Max(worst, ulp);
        }
        Assert.True(worst > 0); // an approximation: the bound is tight enough to mean something (measured: 4)
    }

    [Theory]
    [InlineData("ReLU")]
    [InlineData("Hardswish")]
    [InlineData("Sigmoid")]
    [InlineData("SiLU")]
    public void EveryWidthAndEverySplitGivesTheSameBits(string kind)
    {
        var x = Values(7, 1000);
        float[]? first = null;
        var rng = new Random(11);
        foreach (var path in Paths)
        {
            var whole = (float[])x.Clone();
            Apply(kind, whole, path);
            first ??= whole;
            Assert.Equal(first, whole);
            // In pieces of random lengths (as a kernel's epilogue sees its row segments): the same bits.
            var pieces = (float[])x.Clone();
            for (int at = 0; at < pieces.Length;)
            {
                int len = Math.Min(pieces.Length - at, rng.Next(1, 40));
                SimdWidth.With(path, () => VectorActivations.TryApply<float>(kind, pieces.AsSpan(at, len)));
                at += len;
            }
            Assert.Equal(first, pieces);
        }
    }

    [Fact]
    public void FunctionsWithoutAVectorFormAreDeclined()
    {
        Assert.False(VectorActivations.TryApply<float>("Tanh", new float[3]));
        Assert.False(VectorActivations.TryApply<double>("Sigmoid", new double[3])); // float64 keeps the exact formula
        Assert.Null(VectorActivations.Find<double>("SiLU"));
    }

    private static long Ulps(float a, float b)
    {
        if (a == b) return 0;
        static long Key(float f)
        {
            int i = BitConverter.SingleToInt32Bits(f);
            return i < 0 ? (long)int.MinValue - i : i;
        }
        return Math.Abs(Key(a) - Key(b));
    }
}
