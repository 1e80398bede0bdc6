using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>attention-ref bench gct</c>: GCT on [8, 256, 28, 28], l2 (the reference shape; libtorch 2.10 float32 on
/// the 2-core machine: forward 0.65 ms, forward + backward 2.82 ms). Both dtypes run the one GCT layer
/// (<see cref="GctLayer{T}"/>) as <c>attention-ref run</c> does: an inference forward, and a recording forward then the
/// backward (y, x.grad and the parameter gradients). float32 runs the fast setting (blocked plane sums), float64 the oracle.
/// </summary>
public sealed class GctBench : IBenchSuite
{
    private const int N = 8, C = 256, H = 28, W = 28;

    /// <inheritdoc />
    public string Name => "gct";

    /// <inheritdoc />
    public string Description => "GCT l2 on [8, 256, 28, 28]: forward, forward+backward";

    /// <inheritdoc />
    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string layer = $"gct_l2_{N}x{C}x{H}x{W}";
        // FLOPs are not reported: GCT is memory-bound (a few operations per element).
        foreach (string dtype in settings.DTypes)
        {
            if (dtype == "float32") foreach (var r in Measure<float>(KernelPath.Fast)) yield return r;
            else if (dtype == "float64") foreach (var r in Measure<double>(KernelPath.Oracle)) yield return r;
            else throw new ArgumentException($"unknown dtype '{dtype}'; expected float32 or float64.");
        }

        IEnumerable<BenchResult> Measure<T>(KernelPath kernels) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(42);
            var net = new Network<T>("gct", new GctLayer<T>(C));
            var state = new TensorSet<T>("bench");
            var alpha = new DenseTensor<T>(1, C, 1, 1);
            var gamma = new DenseTensor<T>(1, C, 1, 1);
            var beta = new DenseTensor<T>(1, C, 1, 1);
            for (int c = 0; c < C; c++)
            {
                alpha.Data[c] = T.CreateChecked(0.5 + rng.NextDouble());
                gamma.Data[c] = T.CreateChecked(rng.NextDouble() * 2 - 1);
                beta.Data[c] = T.CreateChecked(rng.NextDouble() - 0.5);
            }
            state.Set("alpha", alpha);
            state.Set("gamma", gamma);
            state.Set("beta", beta);
            net.LoadStateDict(state);
            var x = LayerTimer.Random<T>(rng, 1.0, N, C, H, W);
            var dy = LayerTimer.Random<T>(rng, 1.0, N, C, H, W);
            string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
            yield return new BenchResult(layer, dtype, "forward", LayerTimer.Forward(net.Root, x, kernels, settings), null, settings.Threads);
            yield return new BenchResult(layer, dtype, "forward+backward", LayerTimer.ForwardBackward(net.Root, x, dy, kernels, settings), null,
                settings.Threads);
        }
    }
}
