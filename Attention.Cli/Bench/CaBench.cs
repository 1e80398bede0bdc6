using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// <c>bench ca</c>: Coordinate Attention on [8, 256, 28, 28] (mip = 8, BatchNorm in eval mode), forward and
/// forward + backward; float32 runs the fast path, float64 the oracle. libtorch 2.10 on the 2-core machine, float32:
/// forward 1.78 ms, forward + backward 7.17 ms.
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
        // "ca_8x256x28x28_eval": float32 writes y and x.grad into buffers reused across calls (a training loop's steady
        // state; libtorch's allocator also hands back recycled memory). "…_alloc": fresh outputs on every call, which in
        // .NET costs page faults on a new 6.4 MB array each time. float64 (the oracle) always allocates.
        const string layer = "ca_8x256x28x28_eval";
        foreach (var dtype in settings.DTypes)
        {
            var rows = new List<BenchResult>();
            int saved = Compute.MaxThreads;
            Compute.MaxThreads = settings.Threads;
            try
            {
                if (dtype == "float32")
                {
                    var (x, g, p) = Make<float>();
                    var y = x.ZerosLike();
                    var dx = x.ZerosLike();
                    rows.Add(new(layer, dtype, "forward",
                        BenchTimer.MedianMs(() => CoordinateAttentionFast.Forward(x, p, training: false, output: y), settings.MinSeconds), null, settings.Threads));
                    rows.Add(new(layer, dtype, "forward+backward",
                        BenchTimer.MedianMs(() => CoordinateAttentionFast.Backward(CoordinateAttentionFast.Forward(x, p, training: false, output: y), g, dx), settings.MinSeconds), null, settings.Threads));
                    rows.Add(new(layer + "_alloc", dtype, "forward",
                        BenchTimer.MedianMs(() => CoordinateAttentionFast.Forward(x, p, training: false), settings.MinSeconds), null, settings.Threads));
                    rows.Add(new(layer + "_alloc", dtype, "forward+backward",
                        BenchTimer.MedianMs(() => CoordinateAttentionFast.Backward(CoordinateAttentionFast.Forward(x, p, training: false), g), settings.MinSeconds), null, settings.Threads));
                }
                else if (dtype == "float64")
                {
                    var (x, g, p) = Make<double>();
                    rows.Add(new(layer + "_alloc", dtype, "forward",
                        BenchTimer.MedianMs(() => CoordinateAttention.Forward(x, p, training: false), settings.MinSeconds), null, settings.Threads));
                    rows.Add(new(layer + "_alloc", dtype, "forward+backward",
                        BenchTimer.MedianMs(() => CoordinateAttention.Backward(CoordinateAttention.Forward(x, p, training: false), g), settings.MinSeconds), null, settings.Threads));
                }
                else throw new ArgumentException($"unknown dtype '{dtype}'; expected float32 or float64.");
            }
            finally
            {
                Compute.MaxThreads = saved;
            }
            foreach (var r in rows) yield return r;
        }
    }

    /// <summary>Seeded random input, upstream gradient and parameters for the benchmark shape.</summary>
    public static (DenseTensor<T> X, DenseTensor<T> G, CoordinateAttentionParameters<T> P) Make<T>() where T : IFloatingPointIeee754<T>
    {
        var rng = new Random(2021);
        int mip = CoordinateAttention.DefaultMip(C);
        DenseTensor<T> R(double scale, double offset, params int[] shape)
        {
            var t = new DenseTensor<T>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked(offset + scale * (rng.NextDouble() * 2 - 1));
            return t;
        }
        var p = new CoordinateAttentionParameters<T>
        {
            Conv1Weight = R(1.0 / Math.Sqrt(C), 0, mip, C), Conv1Bias = R(0.1, 0, mip),
            BnWeight = R(0.2, 1, mip), BnBias = R(0.2, 0, mip), BnRunningMean = R(0.1, 0, mip), BnRunningVar = R(0.2, 1, mip),
            ConvHWeight = R(1.0 / Math.Sqrt(mip), 0, C, mip), ConvHBias = R(0.1, 0, C),
            ConvWWeight = R(1.0 / Math.Sqrt(mip), 0, C, mip), ConvWBias = R(0.1, 0, C),
        };
        return (R(1, 0, N, C, H, W), R(1, 0, N, C, H, W), p);
    }
}
