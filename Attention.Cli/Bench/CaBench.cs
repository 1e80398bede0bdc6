using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>bench ca</c>: Coordinate Attention on [8, 256, 28, 28] (mip = 8, BatchNorm in eval mode), forward and
/// forward + backward through the one CA layer (<see cref="CoordAtt{T}"/>), float32 and float64 alike. libtorch 2.10 on
/// the 2-core machine, float32: forward 1.78 ms, forward + backward 7.17 ms.
/// </summary>
public sealed class CaBench : IBenchSuite
{
    /// <inheritdoc />
    public string Name => "ca";

    /// <inheritdoc />
    public string Description => "Coordinate Attention [8, 256, 28, 28], eval mode, forward and forward+backward";

    /// <summary>The benchmark shape.</summary>
    public const int N = 8, C = 256, H = 28, W = 28;

    /// <inheritdoc />
    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        const string layer = "ca_8x256x28x28_eval";
        foreach (var dtype in settings.DTypes)
        {
            if (dtype == "float32") foreach (var r in Measure<float>(KernelPath.Fast)) yield return r;
            else if (dtype == "float64") foreach (var r in Measure<double>(KernelPath.Oracle)) yield return r;
            else throw new ArgumentException($"unknown dtype '{dtype}'; expected float32 or float64.");
        }

        IEnumerable<BenchResult> Measure<T>(KernelPath kernels) where T : System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(42);
            const int mip = 8;
            var net = new Network<T>("ca", CoordAtt<T>.CoordAttPy(C, mip));
            var state = new TensorSet<T>("bench");
            state.Set("conv1.weight", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(C), mip, C, 1, 1));
            state.Set("conv1.bias", LayerTimer.Random<T>(rng, 0.1, mip));
            state.Set("bn1.weight", LayerTimer.Random<T>(rng, 1, mip));
            state.Set("bn1.bias", LayerTimer.Random<T>(rng, 0.1, mip));
            state.Set("bn1.running_mean", LayerTimer.Random<T>(rng, 0.1, mip));
            var rv = LayerTimer.Random<T>(rng, 0.5, mip);
            for (int i = 0; i < mip; i++) rv.Data[i] = T.One + T.Abs(rv.Data[i]);
            state.Set("bn1.running_var", rv);
            state.Set("conv_h.weight", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(mip), C, mip, 1, 1));
            state.Set("conv_h.bias", LayerTimer.Random<T>(rng, 0.1, C));
            state.Set("conv_w.weight", LayerTimer.Random<T>(rng, 1 / Math.Sqrt(mip), C, mip, 1, 1));
            state.Set("conv_w.bias", LayerTimer.Random<T>(rng, 0.1, C));
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
