using Attention.Reference.Layers;
using Attention.Reference.Ops;

namespace Attention.Reference.Tests.Layers;

/// <summary>
/// The activations of the mobile networks against PyTorch 1.13's float64 values, bit for bit, with inputs placed
/// on every kink (±3 for the hard functions, 0 and 6 for ReLU6) to pin the subgradient choices.
/// </summary>
public class ActivationTests
{
    private static readonly double[] X = [-3.5, -3.0, -1.25, 0.0, 0.5, 3.0, 3.5, 6.0];


    private static double FromHex(string s)
    {
        bool neg = s.StartsWith('-');
        s = s.TrimStart('-')[2..];
        var parts = s.Split('p');
        var mant = parts[0].Split('.');
        double v = Convert.ToInt64(mant[0], 16);
        string frac = mant.Length > 1 ? mant[1] : "";
        for (int i = 0; i < frac.Length; i++) v += Convert.ToInt64(frac[i].ToString(), 16) * Math.Pow(16, -(i + 1));
        v = Math.ScaleB(v, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        return neg ? -v : v;
    }

    private static (double[] Y, double[] G) Run(Layer<double> layer, GradConventions conventions = GradConventions.Exact)
    {
        var pass = new Pass<double> { Conventions = conventions };
        var x = new DenseTensor<double>((double[])X.Clone(), X.Length);
        var y = layer.Forward(x, pass);
        var ones = new DenseTensor<double>(X.Length);
        Array.Fill(ones.Data, 1.0);
        return (y.Data, layer.Backward(ones, pass).Data);
    }

    [Fact]
    public void HardswishMatchesPytorchAndItsScalarKinks()
    {
        var (y, g) = Run(Act.Hardswish<double>());
        string[] hex = ["-0x0.0p+0", "-0x0.0p+0", "-0x1.7555555555555p-2", "0x0.0p+0", "0x1.2aaaaaaaaaaabp-2", "0x1.8p+1", "0x1.cp+1", "0x1.8p+2"];
        Assert.Equal(hex.Select(FromHex), y);
        // PyTorch 1.13 (float64, scalar path): 0, −0.5 at −3, …, 1.5 at +3 (its vector path gives 1.0 there).
        Assert.Equal([0.0, -0.5, 0.08333333333333331, 0.5, 0.6666666666666666, 1.5, 1.0, 1.0], g);
    }

    [Fact]
    public void HardsigmoidMatchesPytorchAndTheLibtorchConventionReproducesItsSixth()
    {
        var (y, g) = Run(Act.Hardsigmoid<double>());
        string[] hex = ["0x0.0p+0", "0x0.0p+0", "0x1.2aaaaaaaaaaabp-2", "0x1.0p-1", "0x1.2aaaaaaaaaaabp-1", "0x1.0p+0", "0x1.0p+0", "0x1.0p+0"];
        Assert.Equal(hex.Select(FromHex), y);
        double sixth = 1.0 / 6.0;
        Assert.Equal([0.0, 0.0, sixth, sixth, sixth, 0.0, 0.0, 0.0], g);
        var (_, gt) = Run(Act.Hardsigmoid<double>(), GradConventions.Libtorch);
        Assert.Equal([0.0, 0.0, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.0, 0.0, 0.0], gt);
    }

    [Fact]
    public void SiluAndRelu6MatchPytorch()
    {
        var (y, g) = Run(Act.Silu<double>());
        string[] hex = ["-0x1.a4385b19317e2p-4", "-0x1.236272d6c3f34p-3", "-0x1.1d0e61a958c85p-2", "0x0.0p+0", "0x1.3eb2fd4d34391p-2",
            "0x1.6dc9d8d293c0dp+1", "0x1.b2de3d273674p+1", "0x1.7f0cee669c421p+2"];
        Assert.Equal(hex.Select(FromHex), y);
        double[] expected = [-0.07027335282771814, -0.08810410601516962, 0.00631915508468757, 0.5, 0.7399611873026519,
            1.0881041060151693, 1.0702733528277182, 1.0123264325915249];
        for (int i = 0; i < g.Length; i++) Assert.Equal(expected[i], g[i], 1e-16);
        var (y6, g6) = Run(Act.Relu6<double>());
        Assert.Equal([0.0, 0.0, 0.0, 0.0, 0.5, 3.0, 3.5, 6.0], y6);
        Assert.Equal([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0], g6); // 0 at both kinks, 0 and 6
    }

    [Fact]
    public void SmoothPiecesAgreeWithCentralDifferences()
    {
        foreach (var (f, df) in new (Func<double, double>, Func<double, double>)[]
                 {
                     (Activations.Hardswish, Activations.HardswishGrad), (Activations.Silu, Activations.SiluGrad),
                     (Activations.Hardsigmoid, Activations.HardsigmoidGrad), (v => Math.Tanh(v), v => 1 - Math.Tanh(v) * Math.Tanh(v)),
                 })
            foreach (double v in new[] { -4.1, -2.2, -0.7, 0.3, 1.9, 2.9, 4.4 })
            {
                double h = 1e-6, numeric = (f(v + h) - f(v - h)) / (2 * h);
                Assert.True(Math.Abs(numeric - df(v)) < 1e-8, $"at {v}: analytic {df(v)}, numeric {numeric}");
            }
    }
}
