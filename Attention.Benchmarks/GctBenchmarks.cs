using Attention.Reference.Modules;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>
/// GCT l2 on [8, 256, 28, 28] (issue 6). libtorch 2.10 float32 on the 2-core machine: forward 0.65 ms, forward +
/// backward 2.82 ms; the target is at most half of each. Run: <c>dotnet run -c Release --project Attention.Benchmarks
/// -- --filter *Gct*</c>.
/// </summary>
[MemoryDiagnoser]
public class GctBenchmarks
{
    private const int N = 8, C = 256, H = 28, W = 28;
    private GatedChannelTransformation<float> _m32 = null!;
    private GatedChannelTransformation<double> _m64 = null!;
    private DenseTensor<float> _x32 = null!, _dy32 = null!, _y32 = null!, _dx32 = null!;
    private DenseTensor<double> _x64 = null!, _dy64 = null!;
    private readonly GctFastWorkspace _ws = new();

    /// <summary>Random inputs and parameters (fixed seed).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        _m64 = new GatedChannelTransformation<double>(C);
        for (int c = 0; c < C; c++)
        {
            _m64.Alpha.Data[c] = 0.5 + rng.NextDouble();
            _m64.Gamma.Data[c] = rng.NextDouble() * 2 - 1;
            _m64.Beta.Data[c] = rng.NextDouble() - 0.5;
        }
        _m32 = new GatedChannelTransformation<float>(_m64.Alpha.Cast<float>(), _m64.Gamma.Cast<float>(), _m64.Beta.Cast<float>());
        _x64 = new DenseTensor<double>(N, C, H, W);
        _dy64 = new DenseTensor<double>(N, C, H, W);
        for (int i = 0; i < _x64.Length; i++)
        {
            _x64.Data[i] = rng.NextDouble() * 2 - 1;
            _dy64.Data[i] = rng.NextDouble() * 2 - 1;
        }
        _x32 = _x64.Cast<float>();
        _dy32 = _dy64.Cast<float>();
        _y32 = _x32.ZerosLike();
        _dx32 = _x32.ZerosLike();
        GatedChannelTransformationFast.Forward(_m32, _x32, _y32, _ws);
    }

    /// <summary>float32 fast path: y.</summary>
    [Benchmark(Baseline = true)]
    public GctFastWorkspace Float32Forward() => GatedChannelTransformationFast.Forward(_m32, _x32, _y32, _ws);

    /// <summary>float32 fast path: y, x.grad and α, γ, β gradients, fused.</summary>
    [Benchmark]
    public GctGradients<float> Float32ForwardBackward() => GatedChannelTransformationFast.ForwardBackward(_m32, _x32, _dy32, _y32, _dx32, _ws);

    /// <summary>float32 fast path: forward then the separate backward.</summary>
    [Benchmark]
    public GctGradients<float> Float32ForwardThenBackward()
    {
        GatedChannelTransformationFast.Forward(_m32, _x32, _y32, _ws);
        return GatedChannelTransformationFast.Backward(_m32, _x32, _dy32, _dx32, _ws);
    }

    /// <summary>float64 oracle: y.</summary>
    [Benchmark]
    public GctForward<double> Float64Forward() => _m64.Forward(_x64);

    /// <summary>float64 oracle: forward then backward.</summary>
    [Benchmark]
    public GctGradients<double> Float64ForwardBackward() => _m64.Backward(_m64.Forward(_x64), _dy64);
}
