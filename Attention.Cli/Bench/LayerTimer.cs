using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>
/// Times a layer tree the way the networks call it: an inference forward (no tape), and a forward with its tape followed
/// by the backward (x.grad and every parameter gradient). The passes share one <see cref="BufferCache{T}"/>, as a
/// training loop would: the layers' outputs and input gradients are the previous call's buffers, not fresh pages.
/// </summary>
internal static class LayerTimer
{
    /// <summary>Median ms of one inference forward.</summary>
    public static double Forward<T>(Layer<T> root, DenseTensor<T> x, KernelPath kernels, BenchSettings settings)
        where T : IFloatingPointIeee754<T> =>
        Compute.WithThreads(settings.Threads, () =>
        {
            var cache = new BufferCache<T>();
            return BenchTimer.MedianMs(
                () => root.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels, Buffers = cache }), settings.MinSeconds);
        });

    /// <summary>Median ms of one forward (recording) and its backward.</summary>
    public static double ForwardBackward<T>(Layer<T> root, DenseTensor<T> x, DenseTensor<T> dy, KernelPath kernels,
        BenchSettings settings) where T : IFloatingPointIeee754<T> =>
        Compute.WithThreads(settings.Threads, () =>
        {
            var cache = new BufferCache<T>();
            return BenchTimer.MedianMs(() =>
            {
                var pass = new Pass<T> { Kernels = kernels, Buffers = cache };
                root.Forward(x, pass);
                root.ZeroGrad();
                root.Backward(dy, pass);
            }, settings.MinSeconds);
        });

    /// <summary>Uniform values in (−bound, bound).</summary>
    public static DenseTensor<T> Random<T>(Random rng, double bound, params int[] shape) where T : IFloatingPointIeee754<T>
    {
        var t = new DenseTensor<T>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked((2 * rng.NextDouble() - 1) * bound);
        return t;
    }
}
