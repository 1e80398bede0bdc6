using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>
/// SE on [8, 256, 28, 28], r = 16 (the libtorch comparison: forward 0.40 ms, forward + backward 2.45 ms,
/// float32, 2 cores): the one SE layer as a case runs it, float32 and the float64 oracle.
/// </summary>
[MemoryDiagnoser]
public class SeBenchmarks
{
    private Network<float> _net = null!;
    private Network<double> _net64 = null!;
    private DenseTensor<float> _x = null!, _dy = null!;
    private DenseTensor<double> _x64 = null!, _dy64 = null!;

    /// <summary>Threads for the parallel loops.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Builds random inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = Threads;
        const int n = 8, c = 256, h = 28, w = 28, hid = 16;
        var options = new SeOptions(c, hid);
        var rng = new Random(1);
        DenseTensor<double> R(double b, params int[] s)
        {
            var t = new DenseTensor<double>(s);
            for (int i = 0; i < t.Length; i++) t.Data[i] = (2 * rng.NextDouble() - 1) * b;
            return t;
        }
        _x64 = R(1, n, c, h, w);
        _dy64 = R(1, n, c, h, w);
        var state = new TensorSet<double>("bench");
        state.Set("fc1.weight", R(0.06, hid, c));
        state.Set("fc1.bias", R(0.06, hid));
        state.Set("fc2.weight", R(0.25, c, hid));
        state.Set("fc2.bias", R(0.25, c));
        _net64 = new Network<double>("se", SqueezeExcite<double>.Paper(options));
        _net64.LoadStateDict(state);
        _net = new Network<float>("se", SqueezeExcite<float>.Paper(options));
        _net.LoadStateDict(state.Cast<float>());
        _x = _x64.Cast<float>();
        _dy = _dy64.Cast<float>();
    }

    /// <summary>Float32 forward.</summary>
    [Benchmark(Baseline = true)]
    public object ForwardF32() => _net.Forward(_x, new Pass<float> { RecordTape = false, Kernels = KernelPath.Fast });

    /// <summary>Float32 forward, then backward.</summary>
    [Benchmark]
    public object ForwardBackwardF32() => _net.Run(_x, _dy, training: false, KernelPath.Fast);

    /// <summary>Float64 oracle forward, then backward.</summary>
    [Benchmark]
    public object ForwardBackwardF64Oracle() => _net64.Run(_x64, _dy64, training: false);
}
