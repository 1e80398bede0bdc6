using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>attention-ref bench gct</c>: GCT on [8, 256, 28, 28], l2 (the reference shape; libtorch 2.10 float32 on
/// the 2-core machine: forward 0.65 ms, forward + backward 2.82 ms). float32 runs the fused fast path
/// (<see cref="GatedChannelTransformationFast"/>), float64 the oracle. "forward+backward" is y, x.grad and the
/// parameter gradients from (x, y.grad): fused in float32, forward then backward in float64.
/// </summary>
public sealed class GctBench : IBenchSuite
{
    private const int N = 8, C = 256, H = 28, W = 28;

    /// <inheritdoc />
    public string Name => "gct";

    /// <inheritdoc />
    public string Description => "GCT l2 on [8, 256, 28, 28]: forward, backward, forward+backward";

    /// <inheritdoc />
    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string layer = $"gct_l2_{N}x{C}x{H}x{W}";
        var rng = new Random(42);
        // FLOPs are not reported: GCT is memory-bound (a few operations per element).
        foreach (string dtype in settings.DTypes)
        {
            if (dtype == "float32")
            {
                var m = Module<float>(rng);
                var x = Random<float>(rng);
                var dy = Random<float>(rng);
                var y = x.ZerosLike();
                var dx = x.ZerosLike();
                var ws = new GctFastWorkspace();
                yield return new(layer, dtype, "forward",
                    BenchTimer.MedianMs(() => GatedChannelTransformationFast.Forward(m, x, y, ws), settings.MinSeconds), null, settings.Threads);
                GatedChannelTransformationFast.Forward(m, x, y, ws);
                yield return new(layer, dtype, "backward",
                    BenchTimer.MedianMs(() => GatedChannelTransformationFast.Backward(m, x, dy, dx, ws), settings.MinSeconds), null, settings.Threads);
                yield return new(layer, dtype, "forward+backward",
                    BenchTimer.MedianMs(() => GatedChannelTransformationFast.ForwardBackward(m, x, dy, y, dx, ws), settings.MinSeconds), null, settings.Threads);
            }
            else if (dtype == "float64")
            {
                var m = Module<double>(rng);
                var x = Random<double>(rng);
                var dy = Random<double>(rng);
                yield return new(layer, dtype, "forward", BenchTimer.MedianMs(() => m.Forward(x), settings.MinSeconds), null, settings.Threads);
                var fw = m.Forward(x);
                yield return new(layer, dtype, "backward", BenchTimer.MedianMs(() => m.Backward(fw, dy), settings.MinSeconds), null, settings.Threads);
                yield return new(layer, dtype, "forward+backward",
                    BenchTimer.MedianMs(() => m.Backward(m.Forward(x), dy), settings.MinSeconds), null, settings.Threads);
            }
        }
    }

    private static GatedChannelTransformation<T> Module<T>(Random rng) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var m = new GatedChannelTransformation<T>(C);
        for (int c = 0; c < C; c++)
        {
            m.Alpha.Data[c] = T.CreateChecked(0.5 + rng.NextDouble());
            m.Gamma.Data[c] = T.CreateChecked(rng.NextDouble() * 2 - 1);
            m.Beta.Data[c] = T.CreateChecked(rng.NextDouble() - 0.5);
        }
        return m;
    }

    private static DenseTensor<T> Random<T>(Random rng) where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var t = new DenseTensor<T>(N, C, H, W);
        for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);
        return t;
    }
}
