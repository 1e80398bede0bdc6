using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>attention-ref bench se</c>: Squeeze-and-Excitation on [8, 256, 28, 28], r = 16 (hidden 16), sigmoid, avg, bias
/// — the comparison point with libtorch 2.10 (forward 0.40 ms, forward + backward 2.45 ms, float32, 2 cores).
/// float32 runs the fused fast path writing into preallocated outputs (forward; forward+backward = the fused
/// <see cref="SqueezeExcitationFast.ForwardBackward"/>, as <c>attention-ref run</c> uses); float64 runs the oracle.
/// FLOPs counted: forward 2·NCHW (squeeze adds, scale multiplies) + 4·N·C·hidden (two FCs);
/// backward adds 4·NCHW (ds, dx) + 8·N·C·hidden.
/// </summary>
public sealed class SeBench : IBenchSuite
{
    private const int N = 8, C = 256, H = 28, W = 28, Reduction = 16;

    /// <inheritdoc />
    public string Name => "se";

    /// <inheritdoc />
    public string Description => "SE [8, 256, 28, 28], r = 16: forward and forward+backward";

    /// <inheritdoc />
    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        int hidden = C / Reduction;
        var options = new SeOptions(C, hidden);
        var rng = new Random(42);
        var x = Random(rng, 1.0, N, C, H, W);
        var dy = Random(rng, 1.0, N, C, H, W);
        var p = new SeParameters<double>(options, Random(rng, 1 / Math.Sqrt(C), hidden, C), Random(rng, 1 / Math.Sqrt(C), hidden),
            Random(rng, 1 / Math.Sqrt(hidden), C, hidden), Random(rng, 1 / Math.Sqrt(hidden), C));
        string layer = $"se_{N}x{C}x{H}x{W}_r{Reduction}";
        double plane = (double)N * C * H * W, fc = (double)N * C * hidden;
        double fwdFlops = 2 * plane + 4 * fc, bothFlops = fwdFlops + 4 * plane + 8 * fc;

        foreach (var dtype in settings.DTypes)
        {
            if (dtype == "float32")
            {
                var xf = x.Cast<float>();
                var dyf = dy.Cast<float>();
                var pf = new SeParameters<float>(options, p.W1.Cast<float>(), p.B1!.Cast<float>(), p.W2.Cast<float>(), p.B2!.Cast<float>());
                var y = xf.ZerosLike();
                var dx = xf.ZerosLike();
                yield return Measure(settings, layer, dtype, "forward", fwdFlops, () => SqueezeExcitationFast.Forward(options, xf, pf, y));
                yield return Measure(settings, layer, dtype, "forward+backward", bothFlops,
                    () => SqueezeExcitationFast.ForwardBackward(options, xf, pf, dyf, y, dx));
            }
            else if (dtype == "float64")
            {
                yield return Measure(settings, layer, dtype, "forward", fwdFlops, () => SqueezeExcitation.Forward(options, x, p));
                yield return Measure(settings, layer, dtype, "forward+backward", bothFlops,
                    () => SqueezeExcitation.Backward(options, p, SqueezeExcitation.Forward(options, x, p), dy));
            }
            else throw new ArgumentException($"unknown dtype '{dtype}'; expected float32 or float64.");
        }
    }

    private static BenchResult Measure(BenchSettings settings, string layer, string dtype, string pass, double flops, Action action)
    {
        double ms = Compute.WithThreads(settings.Threads, () => BenchTimer.MedianMs(action, settings.MinSeconds));
        return new BenchResult(layer, dtype, pass, ms, flops / (ms * 1e6), settings.Threads);
    }

    private static DenseTensor<double> Random(Random rng, double bound, params int[] shape)
    {
        var t = new DenseTensor<double>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (2 * rng.NextDouble() - 1) * bound;
        return t;
    }
}
