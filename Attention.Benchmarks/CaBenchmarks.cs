using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>Coordinate Attention on [8, 256, 28, 28], mip 8, eval mode: the one CA layer, float32 and float64.</summary>
[MemoryDiagnoser]
public class CaBenchmarks
{
    private const int N = 8, C = 256, H = 28, W = 28, Mip = 8;
    private Network<float> _net = null!;
    private Network<double> _net64 = null!;
    private DenseTensor<float> _x = null!, _dy = null!;
    private DenseTensor<double> _x64 = null!, _dy64 = null!;

    /// <summary>Builds random inputs and parameters.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = 2;
        var rng = new Random(1);
        DenseTensor<double> R(double lo, double hi, params int[] s)
        {
            var t = new DenseTensor<double>(s);
            for (int i = 0; i < t.Length; i++) t.Data[i] = lo + (hi - lo) * rng.NextDouble();
            return t;
        }
        var state = new TensorSet<double>("bench");
        state.Set("conv1.weight", R(-0.06, 0.06, Mip, C, 1, 1));
        state.Set("conv1.bias", R(-0.1, 0.1, Mip));
        state.Set("bn1.weight", R(0.5, 1.5, Mip));
        state.Set("bn1.bias", R(-0.1, 0.1, Mip));
        state.Set("bn1.running_mean", R(-0.1, 0.1, Mip));
        state.Set("bn1.running_var", R(0.5, 1.5, Mip));
        state.Set("conv_h.weight", R(-0.35, 0.35, C, Mip, 1, 1));
        state.Set("conv_h.bias", R(-0.1, 0.1, C));
        state.Set("conv_w.weight", R(-0.35, 0.35, C, Mip, 1, 1));
        state.Set("conv_w.bias", R(-0.1, 0.1, C));
        _net64 = new Network<double>("ca", CoordAtt<double>.CoordAttPy(C, Mip));
        _net64.LoadStateDict(state);
        _net = new Network<float>("ca", CoordAtt<float>.CoordAttPy(C, Mip));
        _net.LoadStateDict(state.Cast<float>());
        _x64 = R(-1, 1, N, C, H, W);
        _dy64 = R(-1, 1, N, C, H, W);
        _x = _x64.Cast<float>();
        _dy = _dy64.Cast<float>();
    }

    /// <summary>Float32 forward.</summary>
    [Benchmark(Baseline = true)]
    public object Float32Forward() => _net.Forward(_x, new Pass<float> { RecordTape = false, Kernels = KernelPath.Fast });

    /// <summary>Float32 forward, then backward.</summary>
    [Benchmark]
    public object Float32ForwardBackward() => _net.Run(_x, _dy, training: false, KernelPath.Fast);

    /// <summary>Float64 forward, then backward.</summary>
    [Benchmark]
    public object Float64ForwardBackward() => _net64.Run(_x64, _dy64, training: false);
}
