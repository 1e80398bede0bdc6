using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>attention-ref bench se</c>: Squeeze-and-Excitation on [8, 256, 28, 28], r = 16 (hidden 16), sigmoid, avg, bias
/// — the comparison point with libtorch 2.10 (forward 0.40 ms, forward + backward 2.45 ms, float32, 2 cores).
/// Both dtypes run the one SE layer (<see cref="SqueezeExcite{T}.Paper"/>) as <c>attention-ref run</c> does: float32
/// on the fast kernels, float64 on the oracle's (for SE the same code; float32's plane sums in the blocked order). FLOPs counted: forward 2·NCHW
/// (squeeze adds, scale multiplies) + 4·N·C·hidden (two FCs); backward adds 4·NCHW (ds, dx) + 8·N·C·hidden.
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
        string layer = $"se_{N}x{C}x{H}x{W}_r{Reduction}";
        double plane = (double)N * C * H * W, fc = (double)N * C * hidden;
        double fwdFlops = 2 * plane + 4 * fc, bothFlops = fwdFlops + 4 * plane + 8 * fc;
        foreach (var dtype in settings.DTypes)
        {
            if (dtype == "float32") foreach (var r in Measure<float>(options, KernelPath.Fast)) yield return r;
            else if (dtype == "float64") foreach (var r in Measure<double>(options, KernelPath.Oracle)) yield return r;
            else throw new ArgumentException($"unknown dtype '{dtype}'; expected float32 or float64.");
        }

        IEnumerable<BenchResult> Measure<T>(SeOptions o, KernelPath kernels) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(42);
            var x = LayerTimer.Random<T>(rng, 1.0, N, C, H, W);
            var dy = LayerTimer.Random<T>(rng, 1.0, N, C, H, W);
            var net = new Network<T>("se", SqueezeExcite<T>.Paper(o));
            var state = new TensorSet<T>("bench");
            state.Set("fc1.weight", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(C), hidden, C));
            state.Set("fc1.bias", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(C), hidden));
            state.Set("fc2.weight", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(hidden), C, hidden));
            state.Set("fc2.bias", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(hidden), C));
            net.LoadStateDict(state);
            string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
            double f = LayerTimer.Forward(net.Root, x, kernels, settings);
            yield return new BenchResult(layer, dtype, "forward", f, fwdFlops / (f * 1e6), settings.Threads);
            double b = LayerTimer.ForwardBackward(net.Root, x, dy, kernels, settings);
            yield return new BenchResult(layer, dtype, "forward+backward", b, bothFlops / (b * 1e6), settings.Threads);
        }
    }
}
