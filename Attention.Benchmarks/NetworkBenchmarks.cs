using Attention.Reference.Models;
using Attention.Reference.Tensors;
using BenchmarkDotNet.Attributes;

namespace Attention.Benchmarks;

/// <summary>
/// Whole networks through the compiled float32 inference plan, batch 1, 224 × 224, random weights (the same as
/// <c>attention-ref bench net NAME --dtype float32</c>, pass forward). MemoryDiagnoser shows what a steady-state
/// forward still allocates.
/// </summary>
[MemoryDiagnoser]
public class NetworkBenchmarks
{
    private InferencePlan<float>? _plan;
    private DenseTensor<float>? _x;
    private DenseTensor<float>? _y;

    /// <summary>The model.</summary>
    [Params("resnet50", "seresnet50", "mobilenet_v3_large", "efficientnet_b0", "mbv2_ca")]
    public string Model { get; set; } = "mobilenet_v3_large";

    /// <summary>Builds the plan and warms it.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Compute.MaxThreads = 2;
        var oracle = ModelZoo.Create<double>(Model);
        var net = ModelZoo.Create<float>(Model);
        net.LoadStateDict(RandomWeights.StateDict(oracle, 1).Cast<float>());
        _plan = InferencePlan<float>.Compile(net);
        var rng = new Random(2);
        _x = new DenseTensor<float>(1, 3, 224, 224);
        for (int i = 0; i < _x.Length; i++) _x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = _plan.Forward(_x);
        _plan.Forward(_x, _y);
    }

    /// <summary>One forward pass, the logits written into a preallocated tensor.</summary>
    [Benchmark]
    public void Forward() => _plan!.Forward(_x!, _y!);
}
