using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>
/// Coordinate Attention on [8, 256, 28, 28] (mip 8), BatchNorm in eval mode. libtorch 2.10 on the 2-core machine,
/// float32: forward 1.78 ms, forward + backward 7.17 ms (target ≤ 0.5× those).
/// </summary>
[MemoryDiagnoser]
public class CaBenchmarks
{
    private DenseTensor<float> _x = null!, _g = null!, _y = null!, _dx = null!;
    private CoordinateAttentionParameters<float> _p = null!;
    private DenseTensor<double> _x64 = null!, _g64 = null!;
    private CoordinateAttentionParameters<double> _p64 = null!;

    /// <summary>Threads for the parallel loops.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Builds the seeded inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = Threads;
        (_x, _g, _p) = Make<float>();
        (_x64, _g64, _p64) = Make<double>();
        _y = _x.ZerosLike();
        _dx = _x.ZerosLike();
    }

    /// <summary>Seeded random input, gradient and parameters (the same recipe as <c>attention-ref bench ca</c>).</summary>
    private static (DenseTensor<T> X, DenseTensor<T> G, CoordinateAttentionParameters<T> P) Make<T>() where T : IFloatingPointIeee754<T>
    {
        const int n = 8, c = 256, h = 28, w = 28;
        var rng = new Random(2021);
        int mip = CoordinateAttention.DefaultMip(c);
        DenseTensor<T> R(double scale, double offset, params int[] shape)
        {
            var t = new DenseTensor<T>(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = T.CreateChecked(offset + scale * (rng.NextDouble() * 2 - 1));
            return t;
        }
        var p = new CoordinateAttentionParameters<T>
        {
            Conv1Weight = R(1.0 / Math.Sqrt(c), 0, mip, c), Conv1Bias = R(0.1, 0, mip),
            BnWeight = R(0.2, 1, mip), BnBias = R(0.2, 0, mip), BnRunningMean = R(0.1, 0, mip), BnRunningVar = R(0.2, 1, mip),
            ConvHWeight = R(1.0 / Math.Sqrt(mip), 0, c, mip), ConvHBias = R(0.1, 0, c),
            ConvWWeight = R(1.0 / Math.Sqrt(mip), 0, c, mip), ConvWBias = R(0.1, 0, c),
        };
        return (R(1, 0, n, c, h, w), R(1, 0, n, c, h, w), p);
    }

    /// <summary>Float32 forward into a reused output buffer.</summary>
    [Benchmark(Baseline = true)]
    public DenseTensor<float> Float32Forward() => CoordinateAttentionFast.Forward(_x, _p, training: false, output: _y).Y;

    /// <summary>Float32 forward + backward into reused buffers.</summary>
    [Benchmark]
    public DenseTensor<float> Float32ForwardBackward() =>
        CoordinateAttentionFast.Backward(CoordinateAttentionFast.Forward(_x, _p, training: false, output: _y), _g, _dx).X;

    /// <summary>Float32 forward allocating its output.</summary>
    [Benchmark]
    public DenseTensor<float> Float32ForwardAlloc() => CoordinateAttentionFast.Forward(_x, _p, training: false).Y;

    /// <summary>Float32 forward + backward allocating the outputs.</summary>
    [Benchmark]
    public DenseTensor<float> Float32ForwardBackwardAlloc() =>
        CoordinateAttentionFast.Backward(CoordinateAttentionFast.Forward(_x, _p, training: false), _g).X;

    /// <summary>The float64 oracle, forward.</summary>
    [Benchmark]
    public DenseTensor<double> Float64Forward() => CoordinateAttention.Forward(_x64, _p64, training: false).Y;

    /// <summary>The float64 oracle, forward + backward.</summary>
    [Benchmark]
    public DenseTensor<double> Float64ForwardBackward() =>
        CoordinateAttention.Backward(CoordinateAttention.Forward(_x64, _p64, training: false), _g64).X;
}
