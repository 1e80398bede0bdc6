using Attention.Reference.Ops;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MathNet.Numerics.LinearAlgebra;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Tests.Kernels.Conv;

/// <summary>Identities a convolution must satisfy whatever its kernel: linearity in x and in w; a 1x1 conv is a matrix product.</summary>
public class ConvAlgebraTests
{
    private static DenseTensor<double> Combine(double a, DenseTensor<double> u, double b, DenseTensor<double> v)
    {
        var r = u.ZerosLike();
        for (int i = 0; i < r.Length; i++) r.Data[i] = a * u.Data[i] + b * v.Data[i];
        return r;
    }

    /// <summary>|lhs − rhs| ≤ 1e-12 · (terms' scale) element-wise, where the scale is the conv of |x| with |w|.</summary>
    private static bool Close(DenseTensor<double> lhs, DenseTensor<double> rhs, DenseTensor<double> scale)
    {
        for (int i = 0; i < lhs.Length; i++)
            if (!(Math.Abs(lhs.Data[i] - rhs.Data[i]) <= 1e-12 * (1 + scale.Data[i]))) return false;
        return true;
    }

    [Property(MaxTest = 60)]
    public Property ConvIsLinearInTheInput() => Prop.ForAll(ConvTestData.Arb, pr =>
    {
        var (x1, w, _, _) = pr.Data();
        var x2 = ConvTestData.Uniform(new Random(pr.Seed + 1), x1.ShapeArray());
        const double a = 0.75, b = -1.5;
        var lhs = Conv2d.Forward(Combine(a, x1, b, x2), w, null, pr.G);
        var rhs = Combine(a, Conv2d.Forward(x1, w, null, pr.G), b, Conv2d.Forward(x2, w, null, pr.G));
        var scale = Conv2dSpec.Forward(Combine(Math.Abs(a), ConvTestData.Abs(x1), Math.Abs(b), ConvTestData.Abs(x2)), ConvTestData.Abs(w), null, pr.G);
        return Close(lhs, rhs, scale).Label(pr.ToString());
    });

    [Property(MaxTest = 60)]
    public Property ConvIsLinearInTheWeight() => Prop.ForAll(ConvTestData.Arb, pr =>
    {
        var (x, w1, _, _) = pr.Data();
        var w2 = ConvTestData.Uniform(new Random(pr.Seed + 2), w1.ShapeArray());
        const double a = -0.5, b = 2.0;
        var lhs = Conv2d.Forward(x, Combine(a, w1, b, w2), null, pr.G);
        var rhs = Combine(a, Conv2d.Forward(x, w1, null, pr.G), b, Conv2d.Forward(x, w2, null, pr.G));
        var scale = Conv2dSpec.Forward(ConvTestData.Abs(x), Combine(Math.Abs(a), ConvTestData.Abs(w1), Math.Abs(b), ConvTestData.Abs(w2)), null, pr.G);
        return Close(lhs, rhs, scale).Label(pr.ToString());
    });

    private static readonly Gen<(int N, int I, int O, int H, int W, int Seed)> PointwiseShapes =
        from n in Gen.Choose(1, 2)
        from i in Gen.Choose(1, 37)
        from o in Gen.Choose(1, 41)
        from h in Gen.Choose(1, 9)
        from w in Gen.Choose(1, 19)
        from seed in Gen.Choose(0, int.MaxValue)
        select (n, i, o, h, w, seed);

    [Property(MaxTest = 40)]
    public Property PointwiseConvIsAMatrixProduct() => Prop.ForAll(PointwiseShapes.ToArbitrary(), s =>
    {
        var rng = new Random(s.Seed);
        var g = new Conv2dGeometry(s.I, s.O, (1, 1), (1, 1), (0, 0), (1, 1), 1);
        var x = ConvTestData.Uniform(rng, s.N, s.I, s.H, s.W);
        var w = ConvTestData.Uniform(rng, s.O, s.I, 1, 1);
        var y = Conv2d.Forward(x, w, null, g);
        var wm = Matrix<double>.Build.Dense(s.O, s.I, (o, i) => w.Data[o * s.I + i]);
        int p = s.H * s.W;
        for (int n = 0; n < s.N; n++)
        {
            var xm = Matrix<double>.Build.Dense(s.I, p, (i, j) => x.Data[(n * s.I + i) * p + j]);
            var ym = wm * xm; // Y = W X, an independent BLAS-style product
            for (int o = 0; o < s.O; o++)
                for (int j = 0; j < p; j++)
                    if (!(Math.Abs(ym[o, j] - y.Data[(n * s.O + o) * p + j]) <= 1e-13 * s.I)) return false.Label($"{s} at n={n} o={o} j={j}");
        }
        return true.ToProperty();
    });
}
